/**
 * What an incident has done to the fleet, as fleet-ledger entries: its failed
 * hosts are down, their servers down until a target runs them, each finished
 * target places its server (and makes its host a home or a hypervisor), a
 * target host given up as dead is quarantined, and when the incident ends
 * what did not come back is unrecovered with a reason.
 * A drill only borrows its hosts and gives them back. A pure function of the
 * incident's context, so saving it again after a crash or a resume writes
 * nothing new.
 */
import type { HostStatus, ServerPlacement } from '@firebreak/shared';
import type { IncidentContext } from './incident.machine.ts';

export interface LedgerChangeOfIncident {
  servers: Map<string, ServerPlacement>;
  hosts: Map<string, HostStatus>;
  /** Hosts a finished drill borrowed: each goes back to what it was before (its history says). */
  giveBack: string[];
}

/**
 * `finalState` is the incident's final state once it has one, else null.
 * `statusOf` gives a host's status now, for a hypervisor that already carries VMs.
 */
export function ledgerChangeOf(context: IncidentContext, finalState: string | null, statusOf: (host: string) => HostStatus | undefined): LedgerChangeOfIncident {
  if (context.trigger === 'drill') return drillChangeOf(context, finalState);
  const servers = new Map<string, ServerPlacement>();
  const hosts = new Map<string, HostStatus>(context.hosts.map((h) => [h, { role: 'down' }]));
  const reasons = new Map(context.unrecovered.map((u) => [u.server, u.reason]));
  for (const [server, host] of Object.entries(context.serverHosts)) {
    if (finalState === null) servers.set(server, { state: 'down', host });
    else servers.set(server, { state: 'unrecovered', host, reason: reasons.get(server) ?? `the incident ended ${finalState} without recovering it` });
  }
  // A target host given up as dead keeps nobody's work until an operator looks at it.
  for (const [host, reason] of Object.entries(context.abandoned)) hosts.set(host, { role: 'quarantined', reason: `failed as a recovery target in incident ${context.incidentId}: ${reason}` });
  const vmsDoneOn = new Map<string, string[]>();
  for (const { target, status } of Object.values(context.targets)) {
    if (status !== 'done') continue;
    if (target.mode === 'bare-metal') {
      servers.set(target.server, { state: 'bare-metal', host: target.host });
      hosts.set(target.host, { role: 'home', server: target.server });
    } else if (target.mode === 'vm') {
      servers.set(target.server, { state: 'vm', hypervisor: target.hypervisor });
      vmsDoneOn.set(target.hypervisor, [...(vmsDoneOn.get(target.hypervisor) ?? []), target.server]);
    }
  }
  for (const { target, status } of Object.values(context.targets)) {
    if (status !== 'done' || target.mode !== 'hypervisor') continue;
    const now = statusOf(target.host);
    const carried = now?.role === 'hypervisor' ? now.servers : [];
    hosts.set(target.host, {
      role: 'hypervisor',
      servers: [...new Set([...carried, ...(vmsDoneOn.get(target.host) ?? [])])].sort(),
      converted: now?.role === 'hypervisor' ? now.converted : !target.standing,
    });
  }
  return { servers, hosts, giveBack: [] };
}

/** A drill's servers never left production: it only borrows hosts while it runs, and gives them back at its end. */
function drillChangeOf(context: IncidentContext, finalState: string | null): LedgerChangeOfIncident {
  const drill = context.drillId ?? context.incidentId;
  if (finalState !== null) return { servers: new Map(), hosts: new Map(), giveBack: [...context.claimed] };
  return { servers: new Map(), hosts: new Map(context.claimed.map((h) => [h, { role: 'borrowed', drill }])), giveBack: [] };
}
