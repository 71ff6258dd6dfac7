/**
 * Turns a placement input into flat records the engine (and the benchmark's
 * exact model) work on: the servers with what they need, the usable hosts
 * with what they offer, and compatibility classes so a server is matched
 * against a handful of classes instead of every host.
 */
import type { Host, Inventory, Server } from '@firebreak/shared';
import { defaultPolicy, type PlacementInput, type PlacementPolicy } from './placement-types.ts';

export interface ServerNeed {
  id: string;
  server: Server;
  tier: number;
  cpus: number;
  memoryGiB: number;
  bareMetalOnly: boolean;
  group: string | undefined;
  arch: string;
  /** Network fabrics of the server's VLANs, sorted; an unknown VLAN shows as a fabric no host reaches. */
  netFabrics: readonly string[];
  /** Storage fabrics of the server's LUNs' arrays, sorted; empty when it has no LUN. */
  storageFabrics: readonly string[];
  needKey: string;
}

export type HostKind = 'spare' | 'repurposable' | 'hypervisor';

export interface HostOffer {
  id: string;
  host: Host;
  kind: HostKind;
  arch: string;
  cpus: number;
  memoryGiB: number;
  netFabrics: readonly string[];
  hbaFabric: string | undefined;
  classKey: string;
  /** Work that must be preempted to use the host at all. */
  workload: { name: string; priority: number } | undefined;
  /** The hypervisor image a conversion would boot; set only when the host may be converted. */
  conversionImage: string | undefined;
  /** vCPUs a hypervisor on this host offers, after its reserve and with overcommit. */
  vmCpuCapacity: number;
  vmMemoryCapacity: number;
  /** One VM may not have more vCPUs than the host has CPUs left after the reserve. */
  maxVmCpus: number;
  /** For existing hypervisors: what their running VMs already use, and those VMs' anti-affinity groups. */
  usedCpus: number;
  usedMemoryGiB: number;
  groups: readonly string[];
}

/** Why a candidate that is otherwise fine for some server is not used; feeds the unplaced reasons. */
export interface SetAside {
  offer: HostOffer;
  why: 'preemption-disallowed';
}

export interface PlacementContext {
  inventory: Inventory;
  policy: PlacementPolicy;
  /** In the order servers were asked for, deduplicated. */
  servers: ServerNeed[];
  /** Usable hosts sorted by id. */
  hosts: HostOffer[];
  /** Candidates dropped by policy, kept to explain unplaced servers. */
  setAside: SetAside[];
  hostsByClass: ReadonlyMap<string, readonly HostOffer[]>;
  /** Host classes whose hosts reach everything a server of this need key needs, sorted. */
  compatibleClasses(need: ServerNeed): readonly string[];
  /** Reachability of any one host (usable or not) for a server: the checks in order of the unplaced reasons. */
  reach(need: ServerNeed, offer: HostOffer): 'arch' | 'vlans' | 'storage' | 'ok';
}

const noGroups: readonly string[] = Object.freeze([]);

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function resolvePolicy(policy: Partial<PlacementPolicy> | undefined): PlacementPolicy {
  const merged: PlacementPolicy = {
    vcpuOvercommit: policy?.vcpuOvercommit ?? defaultPolicy.vcpuOvercommit,
    allowPreemption: policy?.allowPreemption ?? defaultPolicy.allowPreemption,
    hypervisorReserve: { ...defaultPolicy.hypervisorReserve, ...policy?.hypervisorReserve },
  };
  if (!(merged.vcpuOvercommit >= 1) || !Number.isFinite(merged.vcpuOvercommit)) {
    throw new RangeError(`placement policy vcpuOvercommit must be a finite number >= 1, got ${merged.vcpuOvercommit}`);
  }
  const { cpus, memoryGiB } = merged.hypervisorReserve;
  if (!(cpus >= 0) || !(memoryGiB >= 0) || !Number.isFinite(cpus) || !Number.isFinite(memoryGiB)) {
    throw new RangeError(`placement policy hypervisorReserve must be non-negative, got ${cpus} CPUs / ${memoryGiB} GiB`);
  }
  return merged;
}

function unknownIds(kind: string, ids: Iterable<string>, known: ReadonlyMap<string, unknown> | ReadonlySet<string>): void {
  const missing = [...ids].filter((id) => !known.has(id));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '');
    throw new Error(`placement: unknown ${kind} id${missing.length > 1 ? 's' : ''} ${shown} (not in the inventory)`);
  }
}

/** The entries of `items` whose id is in `wanted`, in one pass: cheaper than indexing a whole big inventory per call. */
function pick<T extends { id: string }>(items: readonly T[], wanted: ReadonlySet<string>, alsoWanted: ReadonlySet<string> = new Set()): Map<string, T> {
  const found = new Map<string, T>();
  if (wanted.size === 0 && alsoWanted.size === 0) return found;
  for (const item of items) if (wanted.has(item.id) || alsoWanted.has(item.id)) found.set(item.id, item);
  return found;
}

export function buildPlacementContext(input: PlacementInput): PlacementContext {
  const inv = input.inventory;
  const policy = resolvePolicy(input.policy);
  const existingVms = input.existingVms ?? [];
  const serverIds = [...new Set(input.servers)];
  const candidateIds = new Set(input.candidates);
  const serversById = pick(inv.servers, new Set([...serverIds, ...existingVms.map((vm) => vm.server)]));
  const hostsById = pick(inv.hosts, candidateIds, new Set([...input.failed.hosts, ...existingVms.map((vm) => vm.hypervisor)]));
  const rackIds = new Set(inv.racks.map((r) => r.id));
  unknownIds('server', serverIds, serversById);
  unknownIds('candidate host', candidateIds, hostsById);
  unknownIds('failed host', input.failed.hosts, hostsById);
  unknownIds('failed rack', input.failed.racks, rackIds);
  unknownIds('existing VM server', existingVms.map((vm) => vm.server), serversById);
  unknownIds('existing hypervisor', existingVms.map((vm) => vm.hypervisor), hostsById);

  const switchFabric = new Map(inv.switches.map((sw) => [sw.id, sw.fabric]));
  const vlanFabric = new Map(inv.vlans.map((v) => [v.id, v.fabric]));
  const arrayFabric = new Map(inv.storageArrays.map((a) => [a.id, a.fabric]));
  const lunFabric = new Map(
    [...pick(inv.luns, new Set(serverIds.flatMap((id) => serversById.get(id)?.luns ?? []))).values()].map((l) => [l.id, arrayFabric.get(l.array) ?? `?array:${l.array}`]),
  );
  const hypervisorImage = new Map<string, string>();
  for (const image of [...inv.images].sort((a, b) => compareIds(a.id, b.id))) {
    if (image.hypervisor && !hypervisorImage.has(image.arch)) hypervisorImage.set(image.arch, image.id);
  }

  const servers = serverIds.map((id): ServerNeed => {
    const server = serversById.get(id) as Server;
    const netFabrics = [...new Set(server.vlans.map((v) => vlanFabric.get(v) ?? `?vlan:${v}`))].sort(compareIds);
    const storageFabrics = [...new Set(server.luns.map((l) => lunFabric.get(l) ?? `?lun:${l}`))].sort(compareIds);
    return {
      id,
      server,
      tier: server.priority,
      cpus: server.cpus,
      memoryGiB: server.memoryGiB,
      bareMetalOnly: server.bareMetalOnly,
      group: server.antiAffinity,
      arch: server.arch,
      netFabrics,
      storageFabrics,
      needKey: `${server.arch}|${netFabrics.join(',')}|${storageFabrics.join(',')}`,
    };
  });

  const failedHosts = new Set(input.failed.hosts);
  const failedRacks = new Set(input.failed.racks);
  const vmsByHypervisor = new Map<string, Server[]>();
  for (const vm of existingVms) {
    const list = vmsByHypervisor.get(vm.hypervisor) ?? [];
    list.push(serversById.get(vm.server) as Server);
    vmsByHypervisor.set(vm.hypervisor, list);
  }

  const hosts: HostOffer[] = [];
  const setAside: SetAside[] = [];
  // Filter before sorting and building anything: on a big fleet most candidates are busy production hosts.
  const usable: Host[] = [];
  for (const id of candidateIds) {
    const host = hostsById.get(id) as Host;
    if (failedHosts.has(id) || failedRacks.has(host.rack)) continue;
    // A production host runs a server of its own; it is not free capacity.
    if (host.role === 'production') continue;
    usable.push(host);
  }
  usable.sort((a, b) => compareIds(a.id, b.id));
  // Hosts share a handful of NIC layouts; their fabric lists are shared too.
  const fabricsByLayout = new Map<string, readonly string[]>();
  const reserve = policy.hypervisorReserve;
  for (const host of usable) {
    const id = host.id;
    const vms = vmsByHypervisor.get(id) ?? [];
    if (vms.length > 0 && host.role !== 'hypervisor') {
      throw new Error(`placement: existing VMs are listed on ${id}, which is a ${host.role} host, not a hypervisor`);
    }
    let layout = '';
    for (const nic of host.nics) layout += `${nic.switch}\n`;
    let netFabrics = fabricsByLayout.get(layout);
    if (netFabrics === undefined) {
      netFabrics = [...new Set(host.nics.map((n) => switchFabric.get(n.switch)).filter((f) => f !== undefined))].sort(compareIds);
      fabricsByLayout.set(layout, netFabrics);
    }
    const hbaFabric = host.hba?.fabric;
    const maxVmCpus = Math.max(0, host.cpus - reserve.cpus);
    const kind: HostKind = host.role as HostKind;
    const offer: HostOffer = {
      id,
      host,
      kind,
      arch: host.arch,
      cpus: host.cpus,
      memoryGiB: host.memoryGiB,
      netFabrics,
      hbaFabric,
      classKey: `${host.arch}|${netFabrics.join(',')}|${hbaFabric ?? ''}`,
      workload: kind === 'repurposable' && host.workload ? { name: host.workload.name, priority: host.workload.priority } : undefined,
      conversionImage: kind !== 'hypervisor' && host.hypervisorCapable ? hypervisorImage.get(host.arch) : undefined,
      vmCpuCapacity: maxVmCpus * policy.vcpuOvercommit,
      vmMemoryCapacity: Math.max(0, host.memoryGiB - reserve.memoryGiB),
      maxVmCpus,
      usedCpus: vms.length === 0 ? 0 : vms.reduce((sum, s) => sum + s.cpus, 0),
      usedMemoryGiB: vms.length === 0 ? 0 : vms.reduce((sum, s) => sum + s.memoryGiB, 0),
      groups: vms.length === 0 ? noGroups : [...new Set(vms.map((s) => s.antiAffinity).filter((g) => g !== undefined))].sort(compareIds),
    };
    if (offer.workload && !policy.allowPreemption) setAside.push({ offer, why: 'preemption-disallowed' });
    else hosts.push(offer);
  }

  const hostsByClass = new Map<string, HostOffer[]>();
  for (const offer of hosts) {
    const list = hostsByClass.get(offer.classKey) ?? [];
    list.push(offer);
    hostsByClass.set(offer.classKey, list);
  }
  const classSamples = [...hostsByClass.entries()].sort(([a], [b]) => compareIds(a, b));

  const reach = (need: ServerNeed, offer: HostOffer): 'arch' | 'vlans' | 'storage' | 'ok' => {
    if (need.arch !== offer.arch) return 'arch';
    if (!need.netFabrics.every((f) => offer.netFabrics.includes(f))) return 'vlans';
    if (need.storageFabrics.length > 1) return 'storage';
    if (need.storageFabrics.length === 1 && need.storageFabrics[0] !== offer.hbaFabric) return 'storage';
    return 'ok';
  };
  const compatCache = new Map<string, string[]>();
  const compatibleClasses = (need: ServerNeed): readonly string[] => {
    let classes = compatCache.get(need.needKey);
    if (classes === undefined) {
      classes = classSamples.filter(([, offers]) => reach(need, offers[0] as HostOffer) === 'ok').map(([key]) => key);
      compatCache.set(need.needKey, classes);
    }
    return classes;
  };

  return { inventory: inv, policy, servers, hosts, setAside, hostsByClass, compatibleClasses, reach };
}

/** Whether the server fits on the host as bare metal. */
export function fitsBareMetal(need: ServerNeed, offer: HostOffer): boolean {
  return offer.kind !== 'hypervisor' && need.cpus <= offer.cpus && need.memoryGiB <= offer.memoryGiB;
}

/** Whether the server could be a VM on an empty hypervisor on this host (ignoring what already runs there). */
export function fitsVmAlone(need: ServerNeed, offer: HostOffer): boolean {
  return (
    !need.bareMetalOnly &&
    (offer.kind === 'hypervisor' || offer.conversionImage !== undefined) &&
    need.cpus <= offer.maxVmCpus &&
    need.cpus <= offer.vmCpuCapacity &&
    need.memoryGiB <= offer.vmMemoryCapacity
  );
}
