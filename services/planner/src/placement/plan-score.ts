/**
 * The lexicographic objective of a plan. One function computes it from the
 * plan's decisions, so the engine, the tests and the benchmark's exact model
 * score plans the same way.
 */
import { compareIds, type HostOffer, type ServerNeed } from './placement-context.ts';
import type { PlanScore } from './placement-types.ts';

/** Waste differences below this are rounding, not a better plan. */
const wasteEpsilon = 1e-9;

/**
 * Negative when `a` is the better plan, positive when `b` is, 0 when they tie:
 * sorting plans with it puts the best first.
 */
export function compareScores(a: PlanScore, b: PlanScore): number {
  for (let tier = 0; tier < 4; tier++) {
    const diff = (b.recovered[tier] ?? 0) - (a.recovered[tier] ?? 0);
    if (diff !== 0) return diff;
  }
  if (a.preemptions !== b.preemptions) return a.preemptions - b.preemptions;
  if (a.preemptedImportance !== b.preemptedImportance) return a.preemptedImportance - b.preemptedImportance;
  if (a.conversions !== b.conversions) return a.conversions - b.conversions;
  const waste = a.waste - b.waste;
  return Math.abs(waste) <= wasteEpsilon ? 0 : Math.sign(waste);
}

/** Importance of preempted work: priority 9 (least important) weighs 1, priority 0 weighs 10. */
export function workloadImportance(priority: number): number {
  return 10 - priority;
}

/** Unused share of a bare-metal host running this server, averaged over CPU and memory. */
export function bareMetalWaste(need: ServerNeed, offer: HostOffer): number {
  return ((offer.cpus - need.cpus) / offer.cpus + (offer.memoryGiB - need.memoryGiB) / offer.memoryGiB) / 2;
}

/** Unused share of a converted hypervisor running these VMs. */
export function hypervisorWaste(offer: HostOffer, vms: readonly ServerNeed[]): number {
  const cpus = vms.reduce((sum, s) => sum + s.cpus, 0);
  const memory = vms.reduce((sum, s) => sum + s.memoryGiB, 0);
  const cpuShare = offer.vmCpuCapacity > 0 ? (offer.vmCpuCapacity - cpus) / offer.vmCpuCapacity : 1;
  const memShare = offer.vmMemoryCapacity > 0 ? (offer.vmMemoryCapacity - memory) / offer.vmMemoryCapacity : 1;
  return (cpuShare + memShare) / 2;
}

export interface ScoredDecisions {
  bareMetal: readonly { need: ServerNeed; offer: HostOffer }[];
  vms: readonly { need: ServerNeed; offer: HostOffer }[];
  /** Hosts converted by the plan. */
  converted: readonly HostOffer[];
}

/** Scores placements; preemptions follow from the repurposable hosts the plan uses. */
export function scoreDecisions(decisions: ScoredDecisions): PlanScore {
  const recovered: [number, number, number, number] = [0, 0, 0, 0];
  for (const { need } of [...decisions.bareMetal, ...decisions.vms]) recovered[need.tier] = (recovered[need.tier] ?? 0) + 1;

  const used = new Map<string, HostOffer>();
  for (const { offer } of decisions.bareMetal) used.set(offer.id, offer);
  for (const offer of decisions.converted) used.set(offer.id, offer);
  let preemptions = 0;
  let preemptedImportance = 0;
  for (const offer of used.values()) {
    if (offer.workload === undefined) continue;
    preemptions++;
    preemptedImportance += workloadImportance(offer.workload.priority);
  }

  // Summed in id order so the float is the same whatever order the plan was built in.
  const parts: [string, number][] = decisions.bareMetal.map(({ need, offer }) => [offer.id, bareMetalWaste(need, offer)]);
  const vmsByHost = new Map<string, ServerNeed[]>();
  for (const { need, offer } of decisions.vms) vmsByHost.set(offer.id, [...(vmsByHost.get(offer.id) ?? []), need]);
  for (const offer of decisions.converted) parts.push([offer.id, hypervisorWaste(offer, vmsByHost.get(offer.id) ?? [])]);
  parts.sort(([a], [b]) => compareIds(a, b));
  const waste = parts.reduce((sum, [, w]) => sum + w, 0);

  return { recovered, preemptions, preemptedImportance, conversions: decisions.converted.length, waste };
}
