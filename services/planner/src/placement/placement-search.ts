/**
 * The placement search, on one mutable state with an undo journal so a move
 * that does not work out is rolled back:
 *
 * 1. tier by tier, servers take what costs nothing (room on a hypervisor, a
 *    free spare, best fit), then the rest their cheapest option: converting a
 *    host, relocating or exchanging a placed server, preempting work (a
 *    preempted host becomes a hypervisor when it takes several servers);
 * 2. repair: release preempted and converted hosts whose servers fit
 *    elsewhere, consolidate preempted hosts into one new hypervisor;
 * 3. when servers are still left over (PlacementSearch.improve), a seeded
 *    ruin-and-recreate search, then best fit after the fact.
 *
 * Costs follow the objective: a placement that costs nothing beats one that
 * converts a host, which beats one that preempts work. Free hosts sit in
 * pools of identical hosts per compatibility class, so finding the best host
 * is a scan over a few dozen pools, not over every host.
 */
import { compareIds, fitsBareMetal, fitsVmAlone, type HostOffer, type PlacementContext, type ServerNeed } from './placement-context.ts';
import { bareMetalWaste, compareScores, hypervisorWaste, workloadImportance } from './plan-score.ts';
import type { PlanScore } from './placement-types.ts';
import { mulberry32 } from '@firebreak/shared';

export interface SearchStrategy {
  /** Give bare-metal servers hosts that cannot become hypervisors first, keeping those for conversions. */
  saveConvertible: boolean;
  /** Within a tier, place small servers first (more servers fit when capacity is short). */
  smallFirst: boolean;
  /**
   * Put VM-eligible servers on hypervisors first, converting free hosts that
   * cost no preemption, and keep physical hosts for bare-metal-only servers:
   * when hosts run short this recovers more, at the price of conversions.
   */
  packVms: boolean;
}

export interface HostState {
  offer: HostOffer;
  mode: 'free' | 'bm' | 'hv';
  /** Turned into a hypervisor by this plan (existing hypervisors are 'hv' without it). */
  converted: boolean;
  occupant: ServerState | undefined;
  vms: ServerState[];
  usedCpus: number;
  usedMemoryGiB: number;
  /** Anti-affinity groups present on the host, with how many members. */
  groups: Map<string, number>;
  pool: Pool | undefined;
  /** Whether the host sits in its pool now. */
  inPool: boolean;
}

export interface ServerState {
  need: ServerNeed;
  rank: number;
  host: HostState | undefined;
  mode: 'bm' | 'vm' | undefined;
}

interface Pool {
  classKey: string;
  /** 0 = costs nothing to use; 1 = preempts a workload. */
  preempt: number;
  importance: number;
  convertible: boolean;
  sample: HostOffer;
  /** Sorted by id, descending: the smallest id is last and taken first. */
  hosts: HostState[];
}

type Cost = readonly [preempt: number, importance: number, conversions: number];

type VmOption =
  | { kind: 'vm-open'; host: HostState; cost: Cost; fit: number }
  | { kind: 'vm-convert-free'; host: HostState; cost: Cost; fit: number }
  | { kind: 'vm-convert-occupied'; host: HostState; cost: Cost; fit: number };
type BmOption =
  | { kind: 'bm-free'; host: HostState; cost: Cost; fit: number }
  /** Bare metal on an occupied host whose occupant moves first, to a VM or to another free host. */
  | { kind: 'bm-relocate'; host: HostState; move: VmOption | FreeBm; cost: Cost; fit: number };
type FreeBm = Extract<BmOption, { kind: 'bm-free' }>;
/**
 * A VM on a hypervisor after one of its VMs leaves for bare metal: onto a
 * free host, or onto an occupied one whose occupant takes its place as a VM.
 */
type ExchangeOption = { kind: 'vm-exchange'; host: HostState; out: ServerState; to: HostState; back: ServerState | undefined; cost: Cost; fit: number };
type Option = VmOption | BmOption | ExchangeOption;

const free: Cost = [0, 0, 0];
/** Shared by every host without anti-affinity members until one arrives; never written to. */
const noGroups: Map<string, number> = new Map();
/** How many occupied hosts a relocation looks at per server, best fit first; bounds the search on big fleets. */
const relocationWidth = 16;
/** Candidate checks one exchange search may make; bounds the search on big fleets. */
const exchangeBudget = 20_000;
/** Consolidations tried per round (largest free capable hosts first), and rounds at most. */
const consolidationWidth = 6;
const consolidationRounds = 8;
/** Ruin-and-recreate attempts at most, and in a row without improvement. */
const ruinAttempts = 400;
const ruinPatience = 100;

function compareCost(a: Cost, b: Cost): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

function better(a: Option, b: Option | undefined): boolean {
  if (b === undefined) return true;
  return compareCost(a.cost, b.cost) < 0 || (compareCost(a.cost, b.cost) === 0 && (a.fit < b.fit || (a.fit === b.fit && compareIds(a.host.offer.id, b.host.offer.id) < 0)));
}

function hostCost(offer: HostOffer, conversions: number): Cost {
  return offer.workload ? [1, workloadImportance(offer.workload.priority), conversions] : [0, 0, conversions];
}

export class PlacementSearch {
  readonly hosts: HostState[];
  readonly servers: ServerState[];
  private readonly poolsByClass = new Map<string, Pool[]>();
  private readonly occupiedByClass = new Map<string, Set<HostState>>();
  private readonly hypervisorsByClass = new Map<string, Set<HostState>>();
  private readonly journal: (() => void)[] = [];
  private journaling = false;

  constructor(
    private readonly ctx: PlacementContext,
    private readonly strategy: SearchStrategy,
  ) {
    this.hosts = ctx.hosts.map((offer) => this.initialHost(offer));
    for (const host of [...this.hosts].reverse()) if (host.mode === 'free') this.addToPool(host);
    const order = [...ctx.servers].sort((a, b) => this.compareServers(a, b));
    this.servers = order.map((need, rank) => ({ need, rank, host: undefined, mode: undefined }));
  }

  /** Runs the whole search and leaves the result in `hosts` and `servers`. */
  run(): void {
    // Tier by tier, so a less critical server never takes what a more critical one could have had at a cost.
    const left: ServerState[] = [];
    for (let tier = 0; tier <= 3; tier++) {
      const pending = this.greedyFree(this.servers.filter((s) => s.need.tier === tier));
      left.push(...this.placePending(pending));
    }
    this.releaseAndRetry(left);
    this.polish();
  }

  /** Searches further when servers are left over; worth it only on the best of the strategies' results. */
  improve(): void {
    if (!this.servers.some((s) => s.host === undefined)) return;
    if (this.ruinAndRecreate()) {
      this.releaseAndRetry(this.servers.filter((s) => s.host === undefined));
      this.polish();
    }
  }

  private releaseAndRetry(pending: ServerState[]): ServerState[] {
    let left = pending;
    for (let round = 0; round < 3; round++) {
      const released = this.releaseCostlyHosts();
      const retried = this.placePending(left);
      const progress = released || retried.length < left.length;
      left = retried;
      if (!progress) break;
    }
    return left;
  }

  /** The objective of the current state (see PlanScore), computed from scratch. */
  score(): PlanScore {
    const recovered: [number, number, number, number] = [0, 0, 0, 0];
    for (const s of this.servers) if (s.host !== undefined) recovered[s.need.tier] = (recovered[s.need.tier] ?? 0) + 1;
    let preemptions = 0;
    let preemptedImportance = 0;
    let conversions = 0;
    let waste = 0;
    for (const h of this.hosts) {
      if (h.mode === 'free' || (h.mode === 'hv' && !h.converted)) continue;
      if (h.offer.workload) {
        preemptions++;
        preemptedImportance += workloadImportance(h.offer.workload.priority);
      }
      if (h.converted) {
        conversions++;
        waste += hypervisorWaste(h.offer, h.vms.map((v) => v.need));
      } else if (h.occupant) {
        waste += bareMetalWaste(h.occupant.need, h.offer);
      }
    }
    return { recovered, preemptions, preemptedImportance, conversions, waste };
  }

  /**
   * Large-neighbourhood search for servers the greedy left over: empty a few
   * hosts around one of them, place it first and the displaced servers after,
   * and keep the result only when the whole objective improves. Seeded, so
   * deterministic; bounded by a number of attempts, not by time.
   */
  private ruinAndRecreate(): boolean {
    const next = mulberry32(0x5eed);
    let best = this.score();
    let improved = false;
    let stale = 0;
    for (let attempt = 0; attempt < ruinAttempts && stale < ruinPatience; attempt++) {
      const unplaced = this.servers.filter((s) => s.host === undefined);
      if (unplaced.length === 0) break;
      // Most critical first, but every unplaced server gets its turns.
      const target = unplaced[Math.floor(next() ** 2 * unplaced.length)] as ServerState;
      const classes = new Set(this.ctx.compatibleClasses(target.need));
      const anchors = this.hosts.filter(
        (h) =>
          classes.has(h.offer.classKey) &&
          (fitsBareMetal(target.need, h.offer) || (h.mode === 'hv' ? target.need.cpus <= h.offer.maxVmCpus && !target.need.bareMetalOnly : fitsVmAlone(target.need, h.offer))),
      );
      const used = anchors.length > 0 ? this.hosts.filter((h) => classes.has(h.offer.classKey) && (h.occupant !== undefined || h.vms.length > 0)) : [];
      if (anchors.length === 0) {
        stale++;
        continue;
      }
      const ruined = new Set<HostState>([anchors[Math.floor(next() * anchors.length)] as HostState]);
      const extra = 1 + Math.floor(next() * 3);
      for (let k = 0; k < extra && used.length > 0; k++) ruined.add(used[Math.floor(next() * used.length)] as HostState);
      const accepted = this.transaction(() => {
        const displaced: ServerState[] = [];
        for (const host of ruined) displaced.push(...this.vacate(host));
        this.placePending([target]);
        this.placePending(displaced.sort((a, b) => a.rank - b.rank));
        // The other leftovers only get the cheap options: trying every move for each of them would dominate the search.
        this.greedyFree(unplaced.filter((s) => s !== target));
        const score = this.score();
        if (compareScores(score, best) >= 0) return undefined;
        best = score;
        return true;
      });
      if (accepted) {
        improved = true;
        stale = 0;
      } else {
        stale++;
      }
    }
    return improved;
  }

  // ---- ordering -------------------------------------------------------------------------------

  private compareServers(a: ServerNeed, b: ServerNeed): number {
    if (a.tier !== b.tier) return a.tier - b.tier;
    if (a.bareMetalOnly !== b.bareMetalOnly) return a.bareMetalOnly ? -1 : 1;
    const size = this.strategy.smallFirst ? 1 : -1;
    if (a.memoryGiB !== b.memoryGiB) return size * (a.memoryGiB - b.memoryGiB);
    if (a.cpus !== b.cpus) return size * (a.cpus - b.cpus);
    return compareIds(a.id, b.id);
  }

  // ---- state primitives (each journals its inverse) -------------------------------------------

  private initialHost(offer: HostOffer): HostState {
    const existing = offer.kind === 'hypervisor';
    const groups = offer.groups.length === 0 ? noGroups : new Map<string, number>(offer.groups.map((g) => [g, 1]));
    const host: HostState = {
      offer,
      mode: existing ? 'hv' : 'free',
      converted: false,
      occupant: undefined,
      vms: [],
      usedCpus: offer.usedCpus,
      usedMemoryGiB: offer.usedMemoryGiB,
      groups,
      pool: undefined,
      inPool: false,
    };
    if (existing) this.indexSet(this.hypervisorsByClass, host, true);
    return host;
  }

  private record(undo: () => void): void {
    if (this.journaling) this.journal.push(undo);
  }

  private transaction<T>(attempt: () => T | undefined): T | undefined {
    const outer = this.journaling;
    const mark = this.journal.length;
    this.journaling = true;
    let result: T | undefined;
    try {
      result = attempt();
    } finally {
      if (result === undefined) {
        // Undoing must not journal the undo steps themselves.
        this.journaling = false;
        while (this.journal.length > mark) (this.journal.pop() as () => void)();
      }
      if (!outer) this.journal.length = mark;
      this.journaling = outer;
    }
    return result;
  }

  private indexSet(index: Map<string, Set<HostState>>, host: HostState, add: boolean): void {
    let set = index.get(host.offer.classKey);
    if (set === undefined) index.set(host.offer.classKey, (set = new Set()));
    if (add) set.add(host);
    else set.delete(host);
  }

  private poolFor(host: HostState): Pool {
    if (host.pool) return host.pool;
    const offer = host.offer;
    const convertible = offer.conversionImage !== undefined;
    const preempt = offer.workload ? 1 : 0;
    const importance = offer.workload ? workloadImportance(offer.workload.priority) : 0;
    let pools = this.poolsByClass.get(offer.classKey);
    if (pools === undefined) this.poolsByClass.set(offer.classKey, (pools = []));
    let pool = pools.find(
      (p) => p.preempt === preempt && p.importance === importance && p.convertible === convertible && p.sample.cpus === offer.cpus && p.sample.memoryGiB === offer.memoryGiB,
    );
    if (pool === undefined) {
      pool = { classKey: offer.classKey, preempt, importance, convertible, sample: offer, hosts: [] };
      pools.push(pool);
    }
    host.pool = pool;
    return pool;
  }

  private addToPool(host: HostState): void {
    const pool = this.poolFor(host);
    const list = pool.hosts;
    // Descending by id; most inserts come in that order and land at the end.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareIds((list[mid] as HostState).offer.id, host.offer.id) > 0) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, host);
    host.inPool = true;
    this.record(() => this.removeFromPool(host));
  }

  private removeFromPool(host: HostState): void {
    const list = (host.pool as Pool).hosts;
    const at = list.lastIndexOf(host);
    if (at >= 0) list.splice(at, 1);
    host.inPool = false;
    this.record(() => this.addToPool(host));
  }

  private setMode(host: HostState, mode: HostState['mode'], converted: boolean): void {
    const before = { mode: host.mode, converted: host.converted };
    if (host.mode === 'bm') this.indexSet(this.occupiedByClass, host, false);
    if (host.mode === 'hv') this.indexSet(this.hypervisorsByClass, host, false);
    host.mode = mode;
    host.converted = converted;
    if (mode === 'bm') this.indexSet(this.occupiedByClass, host, true);
    if (mode === 'hv') this.indexSet(this.hypervisorsByClass, host, true);
    this.record(() => this.setMode(host, before.mode, before.converted));
  }

  private attachBm(server: ServerState, host: HostState): void {
    host.occupant = server;
    server.host = host;
    server.mode = 'bm';
    this.record(() => this.detach(server));
  }

  private attachVm(server: ServerState, host: HostState): void {
    host.vms.push(server);
    host.usedCpus += server.need.cpus;
    host.usedMemoryGiB += server.need.memoryGiB;
    const group = server.need.group;
    if (group !== undefined) {
      if (host.groups === noGroups) host.groups = new Map();
      host.groups.set(group, (host.groups.get(group) ?? 0) + 1);
    }
    server.host = host;
    server.mode = 'vm';
    this.record(() => this.detach(server));
  }

  private detach(server: ServerState): void {
    const host = server.host as HostState;
    const mode = server.mode;
    if (mode === 'bm') {
      host.occupant = undefined;
    } else {
      host.vms.splice(host.vms.indexOf(server), 1);
      host.usedCpus -= server.need.cpus;
      host.usedMemoryGiB -= server.need.memoryGiB;
      const group = server.need.group;
      if (group !== undefined) {
        const left = (host.groups.get(group) ?? 1) - 1;
        if (left === 0) host.groups.delete(group);
        else host.groups.set(group, left);
      }
    }
    server.host = undefined;
    server.mode = undefined;
    this.record(() => (mode === 'bm' ? this.attachBm(server, host) : this.attachVm(server, host)));
  }

  // ---- composite moves -------------------------------------------------------------------------

  private placeBareMetal(server: ServerState, host: HostState): void {
    if (host.inPool) this.removeFromPool(host);
    this.setMode(host, 'bm', false);
    this.attachBm(server, host);
  }

  private convert(host: HostState): void {
    if (host.inPool) this.removeFromPool(host);
    const occupant = host.occupant;
    if (occupant) this.detach(occupant);
    this.setMode(host, 'hv', true);
    if (occupant) this.attachVm(occupant, host);
  }

  /** Empties a host the plan took and gives it back to its pool. */
  private vacate(host: HostState): ServerState[] {
    const servers = host.occupant ? [host.occupant] : [...host.vms];
    for (const s of servers) this.detach(s);
    if (host.offer.kind !== 'hypervisor') {
      this.setMode(host, 'free', false);
      this.addToPool(host);
    }
    return servers;
  }

  private apply(server: ServerState, option: Option): void {
    switch (option.kind) {
      case 'vm-open':
        this.attachVm(server, option.host);
        return;
      case 'vm-convert-free':
      case 'vm-convert-occupied':
        this.convert(option.host);
        this.attachVm(server, option.host);
        return;
      case 'bm-free':
        this.placeBareMetal(server, option.host);
        return;
      case 'bm-relocate': {
        const occupant = option.host.occupant as ServerState;
        this.detach(occupant);
        this.apply(occupant, option.move);
        this.attachBm(server, option.host);
        return;
      }
      case 'vm-exchange': {
        this.detach(option.out);
        if (option.back) {
          this.detach(option.back);
          this.attachVm(option.back, option.host);
          this.attachBm(option.out, option.to);
        } else {
          this.placeBareMetal(option.out, option.to);
        }
        this.attachVm(server, option.host);
        return;
      }
    }
  }

  // ---- option search ---------------------------------------------------------------------------

  private canAddVm(host: HostState, need: ServerNeed, alsoCpus = 0, alsoMemory = 0): boolean {
    const offer = host.offer;
    return (
      need.cpus <= offer.maxVmCpus &&
      host.usedCpus + alsoCpus + need.cpus <= offer.vmCpuCapacity &&
      host.usedMemoryGiB + alsoMemory + need.memoryGiB <= offer.vmMemoryCapacity &&
      (need.group === undefined || !host.groups.has(need.group))
    );
  }

  /** The cheapest way to run `need` as a VM, leaving `exclude` alone. */
  private bestVm(need: ServerNeed, exclude?: HostState, zeroCostOnly = false, maxPreempt = 1): VmOption | undefined {
    if (need.bareMetalOnly) return undefined;
    let best: VmOption | undefined;
    for (const classKey of this.ctx.compatibleClasses(need)) {
      for (const host of this.hypervisorsByClass.get(classKey) ?? []) {
        if (host === exclude || !this.canAddVm(host, need)) continue;
        // Best fit: the hypervisor left with the least memory, then CPU.
        const fit = host.offer.vmMemoryCapacity - host.usedMemoryGiB - need.memoryGiB + (host.offer.vmCpuCapacity - host.usedCpus - need.cpus) / 1e6;
        const option: VmOption = { kind: 'vm-open', host, cost: free, fit };
        if (better(option, best)) best = option;
      }
      if (zeroCostOnly) continue;
      for (const host of this.occupiedByClass.get(classKey) ?? []) {
        const occupant = host.occupant as ServerState;
        if (host === exclude || host.offer.conversionImage === undefined || occupant.need.bareMetalOnly) continue;
        if (!fitsVmAlone(occupant.need, host.offer)) continue;
        if (need.group !== undefined && occupant.need.group === need.group) continue;
        if (!this.canAddVm(host, need, occupant.need.cpus, occupant.need.memoryGiB)) continue;
        // A new hypervisor should leave the most room for more VMs.
        const fit = -(host.offer.vmMemoryCapacity - occupant.need.memoryGiB - need.memoryGiB);
        const option: VmOption = { kind: 'vm-convert-occupied', host, cost: [0, 0, 1], fit };
        if (better(option, best)) best = option;
      }
      for (const pool of this.poolsByClass.get(classKey) ?? []) {
        const host = pool.hosts[pool.hosts.length - 1];
        if (!pool.convertible || pool.preempt > maxPreempt || host === undefined || host === exclude || !fitsVmAlone(need, pool.sample)) continue;
        const option: VmOption = { kind: 'vm-convert-free', host, cost: hostCost(pool.sample, 1), fit: -pool.sample.vmMemoryCapacity };
        if (better(option, best)) best = option;
      }
    }
    return best;
  }

  /** The cheapest free host for `need` as bare metal; `maxPreempt` 0 keeps to hosts that cost nothing. */
  private bestBareMetal(need: ServerNeed, maxPreempt: number, exclude?: HostState): BmOption | undefined {
    let best: BmOption | undefined;
    for (const classKey of this.ctx.compatibleClasses(need)) {
      for (const pool of this.poolsByClass.get(classKey) ?? []) {
        if (pool.preempt > maxPreempt || !fitsBareMetal(need, pool.sample)) continue;
        let host = pool.hosts[pool.hosts.length - 1];
        if (host === exclude) host = pool.hosts[pool.hosts.length - 2];
        if (host === undefined) continue;
        const keep = this.strategy.saveConvertible && pool.convertible ? 1 : 0;
        const option: BmOption = { kind: 'bm-free', host, cost: hostCost(pool.sample, 0), fit: keep * 10 + bareMetalWaste(need, pool.sample) };
        if (better(option, best)) best = option;
      }
    }
    return best;
  }

  /** Bare metal on a host whose current occupant can move to a VM. */
  private bestRelocation(need: ServerNeed): BmOption | undefined {
    const hosts: HostState[] = [];
    for (const classKey of this.ctx.compatibleClasses(need)) {
      for (const host of this.occupiedByClass.get(classKey) ?? []) {
        const occupant = host.occupant as ServerState;
        if (occupant.need !== need && fitsBareMetal(need, host.offer)) hosts.push(host);
      }
    }
    hosts.sort((a, b) => bareMetalWaste(need, a.offer) - bareMetalWaste(need, b.offer) || compareIds(a.offer.id, b.offer.id));
    let best: BmOption | undefined;
    for (const host of hosts.slice(0, relocationWidth)) {
      const occupant = (host.occupant as ServerState).need;
      const toVm = this.bestVm(occupant, host);
      const toBm = this.bestBareMetal(occupant, 1, host) as FreeBm | undefined;
      const move = toBm && better(toBm, toVm) ? toBm : toVm;
      if (move === undefined) continue;
      const option: BmOption = { kind: 'bm-relocate', host, move, cost: move.cost, fit: bareMetalWaste(need, host.offer) };
      if (better(option, best)) best = option;
    }
    return best;
  }

  /** Room for `need` on a hypervisor, made by sending one of its VMs to bare metal. */
  private bestExchange(need: ServerNeed): ExchangeOption | undefined {
    if (need.bareMetalOnly) return undefined;
    let budget = exchangeBudget;
    let best: ExchangeOption | undefined;
    for (const classKey of this.ctx.compatibleClasses(need)) {
      for (const host of this.hypervisorsByClass.get(classKey) ?? []) {
        const offer = host.offer;
        if (need.cpus > offer.maxVmCpus) continue;
        for (const out of host.vms) {
          if (budget-- <= 0) return best;
          const o = out.need;
          const cpus = host.usedCpus - o.cpus + need.cpus;
          const memory = host.usedMemoryGiB - o.memoryGiB + need.memoryGiB;
          if (cpus > offer.vmCpuCapacity || memory > offer.vmMemoryCapacity) continue;
          const groupsLeft = (g: string | undefined): number => (g === undefined ? 0 : (host.groups.get(g) ?? 0) - (o.group === g ? 1 : 0));
          if (groupsLeft(need.group) > 0) continue;
          const fit = offer.vmMemoryCapacity - memory;
          const toFree = this.bestBareMetal(o, 1);
          if (toFree) {
            const option: ExchangeOption = { kind: 'vm-exchange', host, out, to: toFree.host, back: undefined, cost: toFree.cost, fit };
            if (better(option, best)) best = option;
          }
          if (best && compareCost(best.cost, free) === 0) continue;
          for (const toClass of this.ctx.compatibleClasses(o)) {
            for (const to of this.occupiedByClass.get(toClass) ?? []) {
              if (budget-- <= 0) return best;
              const back = (to.occupant as ServerState).need;
              if (back.bareMetalOnly || !fitsBareMetal(o, to.offer) || !this.ctx.compatibleClasses(back).includes(offer.classKey)) continue;
              if (back.cpus > offer.maxVmCpus || cpus + back.cpus > offer.vmCpuCapacity || memory + back.memoryGiB > offer.vmMemoryCapacity) continue;
              if (back.group !== undefined && (groupsLeft(back.group) > 0 || back.group === need.group)) continue;
              const option: ExchangeOption = { kind: 'vm-exchange', host, out, to, back: to.occupant, cost: free, fit: fit - back.memoryGiB };
              if (better(option, best)) best = option;
            }
          }
        }
      }
    }
    return best;
  }

  // ---- phases ----------------------------------------------------------------------------------

  /** Places what costs nothing, in priority order; returns the rest. */
  private greedyFree(servers: readonly ServerState[]): ServerState[] {
    const pending: ServerState[] = [];
    for (const server of servers) {
      const vm = this.strategy.packVms ? this.bestVm(server.need, undefined, false, 0) : this.bestVm(server.need, undefined, true);
      const option = vm ?? this.bestBareMetal(server.need, 0);
      if (option) this.apply(server, option);
      else pending.push(server);
    }
    return pending;
  }

  /** Places pending servers, in priority order, by their cheapest option; returns those left. */
  private placePending(pending: readonly ServerState[]): ServerState[] {
    const left: ServerState[] = [];
    for (const server of pending.filter((s) => s.host === undefined)) {
      let best: Option | undefined = this.bestVm(server.need);
      const bm = this.bestBareMetal(server.need, 1);
      if (bm && better(bm, best)) best = bm;
      if (best === undefined || compareCost(best.cost, free) > 0) {
        const relocation = this.bestRelocation(server.need);
        if (relocation && better(relocation, best)) best = relocation;
      }
      if (best === undefined || compareCost(best.cost, free) > 0) {
        const exchange = this.bestExchange(server.need);
        if (exchange && better(exchange, best)) best = exchange;
      }
      if (best !== undefined && best.cost[0] > 0 && best.kind !== 'vm-convert-free') {
        // Preempting one host for a hypervisor that takes this and more waiting servers beats preempting one per server.
        const vm = this.bestVm(server.need);
        if (vm && vm.cost[0] > 0 && this.absorbs(vm.host, server, this.servers.slice(server.rank + 1)) >= 2) best = vm;
      }
      if (best) this.apply(server, best);
      else left.push(server);
    }
    return left;
  }

  /** How many of `server` and the servers after it would fit on a new hypervisor on `host`. */
  private absorbs(host: HostState, server: ServerState, later: readonly ServerState[]): number {
    const offer = host.offer;
    let cpus = 0;
    let memory = 0;
    let count = 0;
    const groups = new Set<string>();
    for (const s of [server, ...later]) {
      const need = s.need;
      if (s.host !== undefined || need.bareMetalOnly || !this.ctx.compatibleClasses(need).includes(offer.classKey)) continue;
      if (need.cpus > offer.maxVmCpus || cpus + need.cpus > offer.vmCpuCapacity || memory + need.memoryGiB > offer.vmMemoryCapacity) continue;
      if (need.group !== undefined && groups.has(need.group)) continue;
      cpus += need.cpus;
      memory += need.memoryGiB;
      if (need.group !== undefined) groups.add(need.group);
      if (++count >= 2) return count;
    }
    return count;
  }

  /** Re-homes servers at no cost, largest first; undefined (and rolled back by the caller) when one cannot move. */
  private rehomeFree(servers: readonly ServerState[], exclude: HostState, allowConversions = false): true | undefined {
    const order = [...servers].sort((a, b) => b.need.memoryGiB - a.need.memoryGiB || b.need.cpus - a.need.cpus || a.rank - b.rank);
    for (const server of order) {
      let option: Option | undefined = this.bestVm(server.need, exclude, true) ?? this.bestBareMetal(server.need, 0, exclude);
      if (option === undefined && allowConversions) option = this.bestVm(server.need, exclude, false, 0);
      if (option === undefined) return undefined;
      this.apply(server, option);
    }
    return true;
  }

  /**
   * Gives back hosts that cost something when what runs on them fits
   * elsewhere at no cost: repurposable hosts (most important work first), then
   * converted hosts (fewest VMs first), turning a hypervisor with one VM back
   * into that server's bare-metal host when it fits.
   */
  private releaseCostlyHosts(): boolean {
    let changed = this.consolidate();
    const preempted = this.hosts
      .filter((h) => h.offer.workload !== undefined && h.mode !== 'free')
      .sort((a, b) => (a.offer.workload?.priority ?? 0) - (b.offer.workload?.priority ?? 0) || compareIds(a.offer.id, b.offer.id));
    for (const host of preempted) {
      // At no cost first; else through conversions, which the objective ranks below any preemption.
      const done =
        this.transaction(() => this.rehomeFree(this.vacateInPlace(host), host) && this.returnHost(host)) ??
        this.transaction(() => this.rehomeFree(this.vacateInPlace(host), host, true) && this.returnHost(host));
      if (done) changed = true;
      else if (this.swapToLessImportant(host)) changed = true;
    }
    const converted = this.hosts.filter((h) => h.converted).sort((a, b) => a.vms.length - b.vms.length || compareIds(a.offer.id, b.offer.id));
    for (const host of converted) {
      if (!host.converted) continue;
      const done = this.transaction(() => {
        const servers = this.vacateInPlace(host);
        if (this.rehomeFree(servers, host) && this.returnHost(host)) return true;
        return undefined;
      });
      if (done) {
        changed = true;
        continue;
      }
      const unconverted = this.transaction(() => {
        const servers = this.vacateInPlace(host);
        const bySize = [...servers].sort((a, b) => b.need.memoryGiB - a.need.memoryGiB || b.need.cpus - a.need.cpus || a.rank - b.rank);
        const stay = bySize.find((s) => fitsBareMetal(s.need, host.offer));
        if (stay === undefined) return undefined;
        this.setMode(host, 'bm', false);
        this.attachBm(stay, host);
        return this.rehomeFree(
          servers.filter((s) => s !== stay),
          host,
        );
      });
      if (unconverted) changed = true;
    }
    return changed;
  }

  /**
   * Converts one free capable host, the largest first, and empties
   * preempted hosts into it: one new hypervisor can stand in for several
   * preempted hosts. Kept only when the whole objective improves.
   */
  private consolidate(): boolean {
    let changed = false;
    for (let round = 0; round < consolidationRounds; round++) {
      const preempted = (): HostState[] =>
        this.hosts
          .filter((h) => h.offer.workload !== undefined && h.mode !== 'free')
          .sort((a, b) => (a.offer.workload?.priority ?? 0) - (b.offer.workload?.priority ?? 0) || a.vms.length - b.vms.length || compareIds(a.offer.id, b.offer.id));
      if (preempted().length === 0) return changed;
      const free = [...this.poolsByClass.values()]
        .flat()
        .filter((pool) => pool.convertible && pool.hosts.length > 0)
        .sort((a, b) => a.preempt - b.preempt || b.sample.vmMemoryCapacity - a.sample.vmMemoryCapacity || a.importance - b.importance || compareIds(a.sample.id, b.sample.id))
        .slice(0, consolidationWidth)
        .map((pool) => pool.hosts[pool.hosts.length - 1] as HostState);
      // A capable host running a server on bare metal can become a hypervisor too: the server stays as a VM,
      // or, when it must run on bare metal, moves to another free host first.
      const room = (h: HostState): number => h.offer.vmMemoryCapacity - (h.occupant && fitsVmAlone(h.occupant.need, h.offer) ? h.occupant.need.memoryGiB : 0);
      const occupied = [...this.occupiedByClass.values()]
        .flatMap((set) => [...set])
        .filter((h) => h.offer.conversionImage !== undefined && h.occupant !== undefined)
        .sort((a, b) => room(b) - room(a) || compareIds(a.offer.id, b.offer.id))
        .slice(0, consolidationWidth);
      const before = this.score();
      let improved = false;
      for (const target of [...free, ...occupied]) {
        const done = this.transaction(() => {
          const occupant = target.occupant;
          const displaced = occupant && !fitsVmAlone(occupant.need, target.offer) ? occupant : undefined;
          if (displaced) this.detach(displaced);
          this.convert(target);
          for (const host of preempted()) {
            if (host === target) continue;
            this.transaction(() => this.rehomeFree(this.vacateInPlace(host), host) && this.returnHost(host));
          }
          if (displaced) {
            // Last, so it can take a host the others just left.
            const elsewhere = this.bestBareMetal(displaced.need, 1, target);
            if (elsewhere === undefined) return undefined;
            this.apply(displaced, elsewhere);
          }
          return target.vms.length > 0 && compareScores(this.score(), before) < 0 ? true : undefined;
        });
        if (done) {
          improved = changed = true;
          break;
        }
      }
      if (!improved) return changed;
    }
    return changed;
  }

  /** Detaches everything from a host without returning it to its pool yet, so re-homing cannot pick it. */
  private vacateInPlace(host: HostState): ServerState[] {
    const servers = host.occupant ? [host.occupant] : [...host.vms];
    for (const s of servers) this.detach(s);
    this.setMode(host, 'free', false);
    return servers;
  }

  private returnHost(host: HostState): true {
    this.addToPool(host);
    return true;
  }

  /** Moves what runs on a preempted host to a free host whose work matters less. */
  private swapToLessImportant(host: HostState): boolean {
    const importance = workloadImportance((host.offer.workload as { priority: number }).priority);
    const servers = host.occupant ? [host.occupant] : [...host.vms];
    const mode = host.mode;
    let target: HostState | undefined;
    for (const [classKey, pools] of [...this.poolsByClass.entries()].sort(([a], [b]) => compareIds(a, b))) {
      if (!servers.every((s) => this.ctx.compatibleClasses(s.need).includes(classKey))) continue;
      for (const pool of pools) {
        const candidate = pool.hosts[pool.hosts.length - 1];
        if (candidate === undefined || pool.preempt === 0 || pool.importance >= importance) continue;
        if (target && (target.pool as Pool).importance <= pool.importance) continue;
        const fits =
          mode === 'bm'
            ? fitsBareMetal((servers[0] as ServerState).need, pool.sample)
            : pool.convertible && this.fitsAll(pool.sample, servers.map((s) => s.need));
        if (fits) target = candidate;
      }
    }
    if (target === undefined) return false;
    const to = target;
    return (
      this.transaction(() => {
        this.vacate(host);
        if (mode === 'bm') this.placeBareMetal(servers[0] as ServerState, to);
        else {
          this.removeFromPool(to);
          this.setMode(to, 'hv', true);
          for (const s of servers) this.attachVm(s, to);
        }
        return true;
      }) === true
    );
  }

  private fitsAll(offer: HostOffer, needs: readonly ServerNeed[]): boolean {
    let cpus = 0;
    let memory = 0;
    for (const need of needs) {
      if (need.cpus > offer.maxVmCpus) return false;
      cpus += need.cpus;
      memory += need.memoryGiB;
    }
    return cpus <= offer.vmCpuCapacity && memory <= offer.vmMemoryCapacity;
  }

  /** Best fit after the fact: moves a server or a whole new hypervisor to a free host of the same cost that wastes less. */
  private polish(): void {
    for (const server of this.servers) {
      const host = server.host;
      if (server.mode !== 'bm' || host === undefined) continue;
      const current = bareMetalWaste(server.need, host.offer);
      const [preempt, importance] = hostCost(host.offer, 0);
      let target: HostState | undefined;
      let targetWaste = current - 1e-12;
      for (const classKey of this.ctx.compatibleClasses(server.need)) {
        for (const pool of this.poolsByClass.get(classKey) ?? []) {
          const candidate = pool.hosts[pool.hosts.length - 1];
          if (candidate === undefined || pool.preempt !== preempt || pool.importance !== importance || !fitsBareMetal(server.need, pool.sample)) continue;
          const waste = bareMetalWaste(server.need, pool.sample);
          if (waste < targetWaste || (waste === targetWaste && target && compareIds(candidate.offer.id, target.offer.id) < 0)) {
            target = candidate;
            targetWaste = waste;
          }
        }
      }
      if (target) {
        const to = target;
        this.vacate(host);
        this.placeBareMetal(server, to);
      }
    }
    for (const host of this.hosts.filter((h) => h.converted)) {
      const needs = host.vms.map((s) => s.need);
      const [preempt, importance] = hostCost(host.offer, 0);
      const used = { cpus: host.usedCpus, memory: host.usedMemoryGiB };
      const wasteOn = (offer: HostOffer): number => ((offer.vmCpuCapacity - used.cpus) / offer.vmCpuCapacity + (offer.vmMemoryCapacity - used.memory) / offer.vmMemoryCapacity) / 2;
      let target: HostState | undefined;
      let targetWaste = wasteOn(host.offer) - 1e-12;
      const classes = [...this.poolsByClass.keys()].filter((k) => needs.every((n) => this.ctx.compatibleClasses(n).includes(k))).sort(compareIds);
      for (const classKey of classes) {
        for (const pool of this.poolsByClass.get(classKey) ?? []) {
          const candidate = pool.hosts[pool.hosts.length - 1];
          if (candidate === undefined || !pool.convertible || pool.preempt !== preempt || pool.importance !== importance || !this.fitsAll(pool.sample, needs)) continue;
          const waste = wasteOn(pool.sample);
          if (waste < targetWaste) {
            target = candidate;
            targetWaste = waste;
          }
        }
      }
      if (target) {
        const to = target;
        const servers = this.vacate(host);
        this.removeFromPool(to);
        this.setMode(to, 'hv', true);
        for (const s of servers) this.attachVm(s, to);
      }
    }
  }
}
