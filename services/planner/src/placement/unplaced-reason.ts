/**
 * Why a server stays down: the checks run from the most basic (no host of
 * its architecture) to the most circumstantial (capacity went elsewhere), and
 * the first that holds is the reason, so an operator is pointed at what would
 * actually have to change.
 */
import { compareIds, fitsBareMetal, fitsVmAlone, type HostOffer, type PlacementContext, type ServerNeed } from './placement-context.ts';
import type { HostState } from './placement-search.ts';
import { UnplacedReason } from './placement-types.ts';

export interface UnplacedVerdict {
  reason: UnplacedReason;
  /** The end of the one-line explanation, after "<server> not recovered: ". */
  detail: string;
}

function list(ids: readonly string[], max = 3): string {
  return ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')} and ${ids.length - max} more`;
}

function fitsVmIgnoringPolicy(need: ServerNeed, offer: HostOffer): boolean {
  return need.cpus <= offer.maxVmCpus && need.memoryGiB <= offer.vmMemoryCapacity;
}

export function classifyUnplaced(ctx: PlacementContext, need: ServerNeed, hosts: readonly HostState[]): UnplacedVerdict {
  const offers = [...ctx.hosts, ...ctx.setAside.map((s) => s.offer)];
  const stages = offers.map((offer) => ctx.reach(need, offer));
  const reachable = offers.filter((_, i) => stages[i] === 'ok');
  if (reachable.length === 0) {
    if (!stages.some((s) => s !== 'arch')) {
      return { reason: UnplacedReason.noMatchingArch, detail: `no usable host is ${need.arch}` };
    }
    if (!stages.some((s) => s === 'storage' || s === 'ok')) {
      return { reason: UnplacedReason.unreachableVlans, detail: `no ${need.arch} host reaches VLAN fabric${need.netFabrics.length > 1 ? 's' : ''} ${need.netFabrics.join(', ')}` };
    }
    const storage =
      need.storageFabrics.length > 1
        ? `its LUNs span storage fabrics ${need.storageFabrics.join(', ')} and a host has one HBA fabric`
        : `no host reaching its VLANs has an HBA on storage fabric ${need.storageFabrics.join(', ')}`;
    return { reason: UnplacedReason.unreachableStorage, detail: storage };
  }

  const fitting = reachable.filter((o) => fitsBareMetal(need, o) || fitsVmAlone(need, o));
  if (fitting.length === 0) {
    const asVm = need.bareMetalOnly ? reachable.filter((o) => fitsVmAlone({ ...need, bareMetalOnly: false }, o)) : [];
    if (asVm.length > 0) {
      return { reason: UnplacedReason.bareMetalOnlyNoHost, detail: `it must run on bare metal and only hypervisor ${list(asVm.map((o) => o.id))} could hold it` };
    }
    const largest = [...reachable].sort((a, b) => b.memoryGiB - a.memoryGiB || b.cpus - a.cpus || compareIds(a.id, b.id))[0] as HostOffer;
    return { reason: UnplacedReason.tooLarge, detail: `no reachable host is big enough${need.bareMetalOnly ? ' for bare metal' : ''} (largest ${largest.id}: ${largest.cpus} CPUs/${largest.memoryGiB} GiB)` };
  }
  const setAside = new Set(ctx.setAside.map((s) => s.offer));
  if (fitting.every((o) => setAside.has(o))) {
    return { reason: UnplacedReason.preemptionDisallowed, detail: `only repurposable hosts could take it (${list(fitting.map((o) => o.id))}) and the policy forbids preemption` };
  }

  const compatible = new Set(ctx.compatibleClasses(need));
  const roomy = hosts.filter(
    (h) =>
      h.mode === 'hv' &&
      compatible.has(h.offer.classKey) &&
      need.cpus <= h.offer.maxVmCpus &&
      h.usedCpus + need.cpus <= h.offer.vmCpuCapacity &&
      h.usedMemoryGiB + need.memoryGiB <= h.offer.vmMemoryCapacity,
  );
  if (need.bareMetalOnly && roomy.length > 0) {
    return { reason: UnplacedReason.bareMetalOnlyNoHost, detail: `it must run on bare metal, no fitting physical host is left, and hypervisor ${list(roomy.map((h) => h.offer.id))} still has room` };
  }
  if (!need.bareMetalOnly && roomy.length > 0 && need.group !== undefined && roomy.every((h) => h.groups.has(need.group as string))) {
    return { reason: UnplacedReason.antiAffinity, detail: `hypervisors with room (${list(roomy.map((h) => h.offer.id))}) already run a member of anti-affinity group ${need.group}` };
  }
  const imageless = need.bareMetalOnly
    ? []
    : reachable.filter((o) => o.kind !== 'hypervisor' && o.host.hypervisorCapable && o.conversionImage === undefined && fitsVmIgnoringPolicy(need, o));
  if (imageless.length > 0) {
    return { reason: UnplacedReason.noHypervisorImage, detail: `converting ${list(imageless.map((o) => o.id))} to a hypervisor would make room, but the inventory has no ${need.arch} hypervisor image` };
  }
  return { reason: UnplacedReason.noCapacity, detail: `every compatible host is taken by servers of tier ${need.tier} or more critical` };
}
