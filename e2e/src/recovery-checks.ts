/**
 * What "recovered" means, checked on the devices rather than on Firebreak's
 * own word: each check returns the problems it found (empty when all is
 * well), so a failing test names every server and device that is wrong.
 */
import type { Lab, LabEvent } from '@firebreak/lab';
import type { Inventory, Server } from '@firebreak/shared';
import type { BusObserver } from './bus-observer.ts';

export interface LostServer {
  server: Server;
  /** Where it ran before the failure: a bare-metal host, or a VM's hypervisor. */
  formerHost: string;
}

/** The servers that ran on `hosts`, bare metal or as VMs on them. */
export function serversOn(inventory: Inventory, hosts: readonly string[]): LostServer[] {
  const on = new Set(hosts);
  const servers = new Map(inventory.servers.map((s) => [s.id, s]));
  return (inventory.assignments ?? []).flatMap((a) => {
    const host = a.mode === 'bare-metal' ? a.host : a.hypervisor;
    const server = servers.get(a.server);
    return on.has(host) && server ? [{ server, formerHost: host }] : [];
  });
}

interface BootEntry {
  server: string;
  image: string;
}

async function bootEntry(bootUrl: string, mac: string): Promise<BootEntry | undefined> {
  const res = await fetch(`${bootUrl}/v1/hosts/${encodeURIComponent(mac)}`);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`boot service answered ${res.status} for ${mac}`);
  return (await res.json()) as BootEntry;
}

/**
 * Each server heartbeats again, after `since`, from a host outside `deadHosts`
 * whose switch ports carry its VLANs, whose HBA sees its LUNs and, on bare
 * metal, whose boot entry serves its image; a VM runs on its hypervisor.
 */
export async function checkServersRunElsewhere(
  lab: Lab,
  observer: BusObserver,
  bootUrl: string,
  lost: readonly LostServer[],
  deadHosts: readonly string[],
  since: number,
): Promise<string[]> {
  const problems: string[] = [];
  const hypervisors = lab.hypervisors.hypervisors;
  for (const { server } of lost) {
    const hb = observer.serverHeartbeats.get(server.id);
    if (!hb || hb.at < since) {
      problems.push(`${server.id}: no heartbeat since the failure`);
      continue;
    }
    if (deadHosts.includes(hb.host)) {
      problems.push(`${server.id}: heartbeats from ${hb.host}, one of the failed hosts`);
      continue;
    }
    const asVm = lab.world.runsHypervisor(hb.host) && hypervisors.domains(hb.host).some((d) => d.name === server.id && d.state === 'running');
    for (const vlan of server.vlans) {
      if (!lab.world.hostOnVlan(hb.host, vlan)) problems.push(`${server.id}: ${hb.host}'s switch ports do not carry VLAN ${vlan}`);
    }
    for (const lun of server.luns) {
      if (!lab.world.canSee(hb.host, lun)) problems.push(`${server.id}: ${hb.host}'s HBA does not see LUN ${lun}`);
    }
    if (asVm) continue;
    const mac = lab.world.host(hb.host).host.nics[0]?.mac;
    const entry = mac === undefined ? undefined : await bootEntry(bootUrl, mac);
    if (entry?.server !== server.id || entry.image !== server.image) {
      problems.push(`${server.id}: the boot service serves ${hb.host} ${entry ? `${entry.server}/${entry.image}` : 'nothing'}, not ${server.id}/${server.image}`);
    }
  }
  return problems;
}

/** The events after `sinceSeq` in the lab's ordered log. */
export function eventsSince(lab: Lab, sinceSeq: number): LabEvent[] {
  return lab.recorder.events({ sinceSeq });
}

/** When the host was fenced: powered off by its BMC, or cut off the fabric (a port shut or all its storage revoked). */
function fenceSeq(events: readonly LabEvent[], host: string): number | undefined {
  return events.find(
    (e) =>
      e.host === host &&
      ((e.source === 'bmc' && e.action === 'power-off') ||
        (e.source === 'san' && e.action === 'revoke-all') ||
        (e.source === 'switch' && e.action === 'set-admin' && e.detail?.['admin'] === 'down')),
  )?.seq;
}

/** No LUN of a lost server is granted to any host before the server's former host was fenced. */
export function checkFencedBeforeGrant(events: readonly LabEvent[], lost: readonly LostServer[]): string[] {
  const problems: string[] = [];
  for (const { server, formerHost } of lost) {
    const fenced = fenceSeq(events, formerHost);
    for (const grant of events.filter((e) => e.source === 'san' && e.action === 'grant' && server.luns.includes(String(e.detail?.['lun'])))) {
      if (fenced === undefined || grant.seq < fenced) {
        problems.push(`${server.id}: LUN ${String(grant.detail?.['lun'])} granted to ${grant.host ?? '?'} (event ${grant.seq}) before ${formerHost} was fenced (${fenced ?? 'never'})`);
      }
    }
  }
  return problems;
}

/** Device actions done more than once: a power-on per host, a LUN grant per initiator, a VM start per domain. */
export function checkNoDuplicateActions(events: readonly LabEvent[]): string[] {
  const counts = new Map<string, number>();
  for (const e of events) {
    const key =
      e.source === 'bmc' && e.action === 'power-on'
        ? `${e.host ?? '?'} powered on`
        : e.source === 'san' && e.action === 'grant'
          ? `LUN ${String(e.detail?.['lun'])} granted to ${String(e.detail?.['initiator'])}`
          : e.source === 'vm' && e.action === 'start'
            ? `VM ${String(e.detail?.['domain'])} started on ${e.host ?? '?'}`
            : undefined;
    if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].filter(([, n]) => n > 1).map(([what, n]) => `${what} ${n} times`);
}
