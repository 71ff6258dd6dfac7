/**
 * What "recovered" means, checked on the devices rather than on Firebreak's
 * own word: each check returns the problems it found (empty when all is
 * well), so a failing test names every server and device that is wrong.
 */
import assert from 'node:assert/strict';
import type { Lab, LabEvent } from '@firebreak/lab';
import type { IncidentProgress, Inventory, Server } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
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
 * every NIC of which carries exactly its VLANs (nicProblems), whose HBA sees
 * its LUNs and, on bare metal, whose boot entry serves its image; a VM runs on
 * its hypervisor.
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
  const byHost = new Map<string, { vm: boolean; servers: Server[] }>();
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
    const on = byHost.get(hb.host) ?? { vm: asVm, servers: [] };
    on.servers.push(server);
    byHost.set(hb.host, on);
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
  for (const [host, on] of byHost) problems.push(...nicProblems(lab, host, on.servers, on.vm));
  return problems;
}

const vlanList = (vlans: Iterable<number>): string => `[${[...vlans].sort((a, b) => a - b).join(', ')}]`;

/** Where the lab runs a server's production instance now: bare metal on a host, or a running VM on a hypervisor. */
function runningOn(lab: Lab, serverId: string): { host: string; vm: boolean } | undefined {
  for (const rt of lab.world.allHosts()) {
    if (rt.server === serverId && !rt.drill && rt.power === 'on' && rt.phase === 'running') return { host: rt.host.id, vm: false };
  }
  for (const rt of lab.world.allHosts()) {
    const id = rt.host.id;
    if (lab.world.runsHypervisor(id) && lab.hypervisors.hypervisors.domains(id).some((d) => d.name === serverId && d.state === 'running' && !d.spec.drill)) return { host: id, vm: true };
  }
  return undefined;
}

/**
 * What is wrong with the NICs of `hostId`, which runs `servers` (as VMs when
 * `vm`): each must be up and carry exactly their VLANs, its PVID one of them
 * and the only VLAN sent untagged. A hypervisor's NICs must carry every VLAN
 * of the VMs asked about, and nothing beyond the VLANs of the VMs defined on
 * it and those the inventory assigns it. Read from the lab's switch state,
 * which its SNMP agents serve.
 */
function nicProblems(lab: Lab, hostId: string, servers: readonly Server[], vm: boolean): string[] {
  const required = new Set(servers.flatMap((s) => s.vlans));
  const allowed = new Set(required);
  if (vm) {
    for (const d of lab.hypervisors.hypervisors.domains(hostId)) for (const v of d.spec.vlans) allowed.add(v);
    for (const a of lab.inventory.assignments ?? []) {
      if (a.mode === 'vm' && a.hypervisor === hostId) for (const v of lab.world.server(a.server)?.vlans ?? []) allowed.add(v);
    }
  }
  const who = `${servers.map((s) => s.id).join(', ')} on ${hostId}${vm ? ' (as VMs)' : ''}`;
  const wanted = vm && allowed.size > required.size ? `every VLAN of ${vlanList(required)}, nothing outside ${vlanList(allowed)}` : `exactly ${vlanList(required)}`;
  const problems: string[] = [];
  for (const nic of lab.world.host(hostId).host.nics) {
    const port = lab.world.port(nic.switch, nic.port);
    const wrong: string[] = [];
    if (port.oper !== 'up') wrong.push(`link ${port.oper} (admin ${port.admin})`);
    const missing = [...required].filter((v) => !port.egress.has(v));
    const extra = [...port.egress].filter((v) => !allowed.has(v));
    if (missing.length > 0 || extra.length > 0) {
      wrong.push(`carries ${vlanList(port.egress)}, wanted ${wanted}${missing.length > 0 ? `; missing ${vlanList(missing)}` : ''}${extra.length > 0 ? `; extra ${vlanList(extra)}` : ''}`);
    }
    const untagged = [...port.untagged];
    if (!port.egress.has(port.pvid) || !allowed.has(port.pvid) || untagged.length !== 1 || untagged[0] !== port.pvid) {
      wrong.push(`PVID ${port.pvid}, untagged ${vlanList(untagged)}: wanted the PVID one of its VLANs and the only one untagged`);
    }
    if (wrong.length > 0) problems.push(`${who}: NIC ${nic.mac} (switch ${nic.switch} port ${nic.port}) ${wrong.join('; ')}`);
  }
  return problems;
}

/**
 * Every NIC of the host each of `servers` runs on now, as the lab (not
 * Firebreak) says, carries exactly that server's VLANs (nicProblems). Not for
 * drills: their instances run on drill VLANs.
 */
export function checkEveryNicCarriesItsVlans(lab: Lab, servers: Iterable<Server | LostServer>): string[] {
  const problems: string[] = [];
  const byHost = new Map<string, { vm: boolean; servers: Server[] }>();
  for (const entry of servers) {
    const server = 'server' in entry ? entry.server : entry;
    const where = runningOn(lab, server.id);
    if (where === undefined) {
      problems.push(`${server.id}: the lab runs it on no host (no bare-metal host booted it, no hypervisor runs its VM)`);
      continue;
    }
    const on = byHost.get(where.host) ?? { vm: where.vm, servers: [] };
    on.servers.push(server);
    byHost.set(where.host, on);
  }
  for (const [hostId, on] of byHost) problems.push(...nicProblems(lab, hostId, on.servers, on.vm));
  return problems;
}

/**
 * Throws, listing every wrong NIC, unless each NIC of every recovered host
 * carries exactly its server's VLANs (checkEveryNicCarriesItsVlans). Call it
 * after each recovery with the servers recovered (`serversOn(...)` of the
 * burned hosts, or the servers themselves).
 */
export function expectEveryNicCarriesItsVlans(lab: Lab, servers: Iterable<Server | LostServer>): void {
  const problems = checkEveryNicCarriesItsVlans(lab, servers);
  if (problems.length > 0) assert.fail(`${problems.length} NIC(s) or server(s) not carrying their servers' VLANs, read from the lab's switches:\n  ${problems.join('\n  ')}`);
}

/** The events after `sinceSeq` in the lab's ordered log. */
export function eventsSince(lab: Lab, sinceSeq: number): LabEvent[] {
  return lab.recorder.events({ sinceSeq });
}

/**
 * Whether `host` could no longer write to `lun` by event `seq`: its access to
 * the LUN was revoked on the SAN, or it was off (its last power change before
 * `seq` was to off) and its BMC was told to power it off or, for a host that
 * died with its BMC still answering, reported it off.
 */
function fencedFrom(events: readonly LabEvent[], host: string, lun: string, seq: number): boolean {
  const before = events.filter((e) => e.seq < seq && e.host === host);
  const revoked = before.some(
    (e) =>
      (e.source === 'san' && e.action === 'revoke' && e.detail?.['lun'] === lun) ||
      (e.source === 'san' && e.action === 'revoke-all' && Array.isArray(e.detail?.['luns']) && (e.detail['luns'] as unknown[]).includes(lun)),
  );
  if (revoked) return true;
  const askedOff = before.some((e) => e.source === 'bmc' && e.action === 'power-off');
  const lastPower = before.filter((e) => e.source === 'host' && (e.action === 'powered-on' || e.action === 'powered-off')).at(-1);
  if (lastPower?.action !== 'powered-off') return false;
  // A host that died while its BMC kept answering was already off: the BMC's "Off" is the fence, no reset is sent.
  const diedWithBmcAnswering = before.some((e) => e.source === 'fault' && e.action === 'kill-host') && !before.some((e) => e.source === 'fault' && e.action === 'bmc-unreachable');
  return askedOff || diedWithBmcAnswering;
}

/** No LUN of a lost server is granted to any host before the server's former host was fenced from that LUN. */
export function checkFencedBeforeGrant(events: readonly LabEvent[], lost: readonly LostServer[]): string[] {
  const problems: string[] = [];
  for (const { server, formerHost } of lost) {
    for (const grant of events.filter((e) => e.source === 'san' && e.action === 'grant' && server.luns.includes(String(e.detail?.['lun'])))) {
      const lun = String(grant.detail?.['lun']);
      if (!fencedFrom(events, formerHost, lun, grant.seq)) {
        problems.push(`${server.id}: LUN ${lun} granted to ${grant.host ?? '?'} (event ${grant.seq}) while ${formerHost} was neither revoked from it nor powered off by its BMC`);
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

/**
 * Waits until the incident for `dead` is in the middle of its recovery: a
 * server past its storage step, so a fault injected now lands mid-way.
 * Resolves with the newest progress; the error carries what was seen.
 */
export async function waitUntilUnderWay(observer: BusObserver, dead: readonly string[], logs: () => string): Promise<IncidentProgress[]> {
  const latest = (): IncidentProgress[] => observer.incidentsFor(dead).flatMap((id) => observer.incidents.get(id)?.at(-1) ?? []);
  try {
    await waitFor(
      'a server of the incident to be under way',
      () => latest().some((p) => p.phase === 'recovering' && p.servers.some((s) => s.step !== 'pending' && s.step !== 'storage')),
      90_000,
    );
  } catch {
    throw new Error(`the incident never got under way: ${JSON.stringify(latest())}\n${logs()}`);
  }
  return latest();
}
