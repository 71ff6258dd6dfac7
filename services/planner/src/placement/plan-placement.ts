/**
 * planPlacement: a pure, deterministic function from the servers to recover
 * and the hosts that may take them to a plan. It runs the search under a
 * couple of strategies and keeps the plan with the best score; ties go to the
 * first strategy, so the same input always gives the same plan.
 */
import { compareIds, type HostOffer, buildPlacementContext, type PlacementContext } from './placement-context.ts';
import { explainBareMetal, explainConversion, explainPreemption, explainVm, describeServer } from './explain.ts';
import { compareScores, scoreDecisions } from './plan-score.ts';
import { PlacementSearch, type HostState, type SearchStrategy } from './placement-search.ts';
import type { Placement, PlacementInput, Plan, PlanScore } from './placement-types.ts';
import { classifyUnplaced } from './unplaced-reason.ts';

const strategies: readonly SearchStrategy[] = [
  { saveConvertible: true, smallFirst: false, packVms: false },
  { saveConvertible: false, smallFirst: false, packVms: false },
];
/** Tried only when hosts run short: packing VMs, and small servers first, can recover more and preempt less. */
const shortageStrategies: readonly SearchStrategy[] = [
  { saveConvertible: true, smallFirst: false, packVms: true },
  { saveConvertible: true, smallFirst: true, packVms: true },
  { saveConvertible: true, smallFirst: true, packVms: false },
];

function scoreOf(search: PlacementSearch): PlanScore {
  const bareMetal: { need: PlacementSearch['servers'][number]['need']; offer: HostOffer }[] = [];
  const vms: typeof bareMetal = [];
  for (const s of search.servers) {
    if (s.host === undefined) continue;
    (s.mode === 'bm' ? bareMetal : vms).push({ need: s.need, offer: s.host.offer });
  }
  return scoreDecisions({ bareMetal, vms, converted: search.hosts.filter((h) => h.converted).map((h) => h.offer) });
}

function runSearch(ctx: PlacementContext, strategy: SearchStrategy): { search: PlacementSearch; score: PlanScore } {
  const search = new PlacementSearch(ctx, strategy);
  search.run();
  return { search, score: scoreOf(search) };
}

export function planPlacement(input: PlacementInput): Plan {
  const ctx = buildPlacementContext(input);
  let best = bestOf(ctx, strategies);
  // Hosts ran short: servers are left over, or work had to be preempted that conversions might spare.
  if (best.score.preemptions > 0 || best.search.servers.some((s) => s.host === undefined)) {
    const shortage = bestOf(ctx, shortageStrategies);
    if (compareScores(shortage.score, best.score) < 0) best = shortage;
    best.search.improve();
    best = { search: best.search, score: scoreOf(best.search) };
  }
  return toPlan(ctx, best.search, best.score);
}

function bestOf(ctx: PlacementContext, list: readonly SearchStrategy[]): { search: PlacementSearch; score: PlanScore } {
  let best: { search: PlacementSearch; score: PlanScore } | undefined;
  for (const strategy of list) {
    const result = runSearch(ctx, strategy);
    if (best === undefined || compareScores(result.score, best.score) < 0) best = result;
  }
  if (best === undefined) throw new Error('placement: no search strategy configured');
  return best;
}

function toPlan(ctx: PlacementContext, search: PlacementSearch, score: PlanScore): Plan {
  const byPriority = [...search.servers].sort((a, b) => a.need.tier - b.need.tier || compareIds(a.need.id, b.need.id));
  const assignments: Placement[] = [];
  const unplaced: Plan['unplaced'] = [];
  for (const s of byPriority) {
    const host = s.host;
    if (host === undefined) {
      const verdict = classifyUnplaced(ctx, s.need, search.hosts);
      unplaced.push({ server: s.need.id, reason: verdict.reason, explanation: `${describeServer(s.need)} not recovered: ${verdict.detail}` });
    } else if (s.mode === 'bm') {
      assignments.push({ server: s.need.id, mode: 'bare-metal', host: host.offer.id, explanation: explainBareMetal(s.need, host.offer) });
    } else {
      assignments.push({ server: s.need.id, mode: 'vm', hypervisor: host.offer.id, explanation: explainVm(s.need, host) });
    }
  }
  const used = search.hosts.filter((h) => h.mode !== 'free' && (h.converted || h.mode === 'bm'));
  const preemptions = used
    .filter((h): h is HostState & { offer: { workload: { name: string; priority: number } } } => h.offer.workload !== undefined)
    .map((h) => ({ host: h.offer.id, workload: h.offer.workload.name, priority: h.offer.workload.priority, explanation: explainPreemption(h) }));
  const conversions = used
    .filter((h) => h.converted)
    .map((h) => {
      const image = h.offer.conversionImage as string;
      return { host: h.offer.id, image, explanation: explainConversion(h, image) };
    });
  return { assignments, preemptions, conversions, unplaced, score };
}
