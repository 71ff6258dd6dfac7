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

/**
 * What placement looks up in an inventory, built once per inventory object
 * (inventories are never changed in place: a new one is a new object). A
 * planner plans many incidents against one inventory; indexing 10,000 hosts
 * on every call would be most of a rack loss's planning time.
 */
interface InventoryIndex {
  hostsById: ReadonlyMap<string, Host>;
  serversById: ReadonlyMap<string, Server>;
  rackIds: ReadonlySet<string>;
  vlanFabric: ReadonlyMap<number, string>;
  /** Storage fabric of each LUN, through its array. */
  lunFabric: ReadonlyMap<string, string>;
  /** The hypervisor image a conversion boots, per architecture (lowest id first). */
  hypervisorImage: ReadonlyMap<string, string>;
  /** Every host that is not production (spare, repurposable, hypervisor), sorted by id: the only ones placement can use. */
  freeable: readonly Host[];
  /** Network fabrics a host's NICs reach, sorted; hosts of one NIC layout share the array. */
  netFabricsOf(host: Host): readonly string[];
  /** Offers of hosts without existing VMs depend only on the host and the policy: kept per policy. */
  offersByPolicy: Map<string, Map<string, HostOffer>>;
}

const indexes = new WeakMap<Inventory, InventoryIndex>();

function indexOf(inv: Inventory): InventoryIndex {
  const cached = indexes.get(inv);
  if (cached !== undefined) return cached;
  const switchFabric = new Map(inv.switches.map((sw) => [sw.id, sw.fabric]));
  const arrayFabric = new Map(inv.storageArrays.map((a) => [a.id, a.fabric]));
  const hypervisorImage = new Map<string, string>();
  for (const image of [...inv.images].sort((a, b) => compareIds(a.id, b.id))) {
    if (image.hypervisor && !hypervisorImage.has(image.arch)) hypervisorImage.set(image.arch, image.id);
  }
  const fabricsByLayout = new Map<string, readonly string[]>();
  const fabricsByHost = new Map<string, readonly string[]>();
  const index: InventoryIndex = {
    hostsById: new Map(inv.hosts.map((h) => [h.id, h])),
    serversById: new Map(inv.servers.map((s) => [s.id, s])),
    rackIds: new Set(inv.racks.map((r) => r.id)),
    vlanFabric: new Map(inv.vlans.map((v) => [v.id, v.fabric])),
    lunFabric: new Map(inv.luns.map((l) => [l.id, arrayFabric.get(l.array) ?? `?array:${l.array}`])),
    hypervisorImage,
    // A production host runs a server of its own; it is not free capacity.
    freeable: inv.hosts.filter((h) => h.role !== 'production').sort((a, b) => compareIds(a.id, b.id)),
    offersByPolicy: new Map(),
    netFabricsOf: (host) => {
      let fabrics = fabricsByHost.get(host.id);
      if (fabrics !== undefined) return fabrics;
      let layout = '';
      for (const nic of host.nics) layout += `${nic.switch}\n`;
      fabrics = fabricsByLayout.get(layout);
      if (fabrics === undefined) {
        fabrics = [...new Set(host.nics.map((n) => switchFabric.get(n.switch)).filter((f) => f !== undefined))].sort(compareIds);
        fabricsByLayout.set(layout, fabrics);
      }
      fabricsByHost.set(host.id, fabrics);
      return fabrics;
    },
  };
  indexes.set(inv, index);
  return index;
}

/** What a host offers under a policy, with what its existing VMs already use. */
function offerOf(host: Host, netFabrics: readonly string[], hypervisorImage: ReadonlyMap<string, string>, policy: PlacementPolicy, vms: readonly Server[]): HostOffer {
  const reserve = policy.hypervisorReserve;
  const hbaFabric = host.hba?.fabric;
  const maxVmCpus = Math.max(0, host.cpus - reserve.cpus);
  const kind: HostKind = host.role as HostKind;
  return {
    id: host.id,
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
    usedCpus: vms.reduce((sum, s) => sum + s.cpus, 0),
    usedMemoryGiB: vms.reduce((sum, s) => sum + s.memoryGiB, 0),
    groups: vms.length === 0 ? noGroups : [...new Set(vms.map((s) => s.antiAffinity).filter((g) => g !== undefined))].sort(compareIds),
  };
}

export function buildPlacementContext(input: PlacementInput): PlacementContext {
  const inv = input.inventory;
  const policy = resolvePolicy(input.policy);
  const existingVms = input.existingVms ?? [];
  const serverIds = [...new Set(input.servers)];
  const candidateIds = new Set(input.candidates);
  const { hostsById, serversById, rackIds, vlanFabric, lunFabric, hypervisorImage, freeable, netFabricsOf, offersByPolicy } = indexOf(inv);
  unknownIds('server', serverIds, serversById);
  unknownIds('candidate host', candidateIds, hostsById);
  unknownIds('failed host', input.failed.hosts, hostsById);
  unknownIds('failed rack', input.failed.racks, rackIds);
  unknownIds('existing VM server', existingVms.map((vm) => vm.server), serversById);
  unknownIds('existing hypervisor', existingVms.map((vm) => vm.hypervisor), hostsById);

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
  const reserve = policy.hypervisorReserve;
  const policyKey = `${policy.vcpuOvercommit}|${reserve.cpus}|${reserve.memoryGiB}`;
  let cachedOffers = offersByPolicy.get(policyKey);
  if (cachedOffers === undefined) offersByPolicy.set(policyKey, (cachedOffers = new Map()));
  // Already sorted by id, and without the production hosts that are most of a big fleet.
  for (const host of freeable) {
    const id = host.id;
    if (!candidateIds.has(id) || failedHosts.has(id) || failedRacks.has(host.rack)) continue;
    const vms = vmsByHypervisor.get(id) ?? [];
    if (vms.length > 0 && host.role !== 'hypervisor') {
      throw new Error(`placement: existing VMs are listed on ${id}, which is a ${host.role} host, not a hypervisor`);
    }
    let offer = vms.length === 0 ? cachedOffers.get(id) : undefined;
    if (offer === undefined) {
      offer = offerOf(host, netFabricsOf(host), hypervisorImage, policy, vms);
      if (vms.length === 0) cachedOffers.set(id, offer);
    }
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
