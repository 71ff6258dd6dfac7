/**
 * The placement problem as an exact MILP for HiGHS, to measure the engine
 * against the optimum. Same input semantics (the engine's context), same
 * lexicographic objective, solved stage by stage: maximise tier-weighted
 * recoveries, then minimise preemptions (count, then importance), then
 * conversions, then waste, each stage pinning the previous optimum.
 *
 * Identical hosts (same compatibility class, size, cost and convertibility)
 * are one type with a multiplicity: bare metal is a count per type, and each
 * type has as many hypervisor "bins" as it could usefully convert (never more
 * than its hosts or the VM-eligible servers that fit it). That keeps the
 * model exact but small: servers × types, not servers × hosts.
 */
import highsModule, { type Highs } from 'highs';
import { buildPlacementContext, compareIds, fitsBareMetal, fitsVmAlone, type HostOffer, type ServerNeed } from '../src/placement/placement-context.ts';
import { bareMetalWaste, scoreDecisions, workloadImportance } from '../src/placement/plan-score.ts';
import type { Placement, PlacementInput, Plan } from '../src/placement/placement-types.ts';

// The package's typings describe its CommonJS build; under ESM its default export is the loader itself.
const loadHighs = highsModule as unknown as () => Promise<Highs>;

interface HostType {
  sample: HostOffer;
  hosts: HostOffer[];
  /** Standing hypervisors: bins without a conversion. */
  existing: boolean;
  bins: number;
}

interface Column {
  /** bm/vm/conv: a decision; placed: a server is recovered; used: hosts of a type taken. */
  kind: 'bm' | 'vm' | 'conv' | 'placed' | 'used';
  server?: ServerNeed;
  type?: HostType;
  bin?: number;
  upper: number;
}

export interface MilpResult {
  /** Every stage proved optimal within the time limit. */
  optimal: boolean;
  status: string;
  ms: number;
  columns: number;
  rows: number;
  plan: Plan | undefined;
}

let highsPromise: Promise<Highs> | undefined;

/**
 * Solves exactly within the time limit. Models above `maxColumns` are not
 * attempted: HiGHS's presolve cannot be interrupted and such a model only
 * fills memory (the 10k-host row loss is about 1.3 million columns).
 */
export function solveExact(input: PlacementInput, timeLimitSeconds: number, maxColumns = 400_000): Promise<MilpResult> {
  const loading = (highsPromise ??= loadHighs());
  return loading.then((highs) => solveWith(highs, input, timeLimitSeconds, maxColumns));
}

function typeKey(o: HostOffer): string {
  return [o.classKey, o.kind, o.workload?.priority ?? '-', o.cpus, o.memoryGiB, o.conversionImage ?? '-', o.usedCpus, o.usedMemoryGiB, o.groups.join(',')].join('|');
}

function solveWith(highs: Highs, input: PlacementInput, timeLimitSeconds: number, maxColumns: number): MilpResult {
  const started = performance.now();
  const ctx = buildPlacementContext(input);
  const servers = [...ctx.servers].sort((a, b) => compareIds(a.id, b.id));
  const compatible = (s: ServerNeed, o: HostOffer): boolean => ctx.compatibleClasses(s).includes(o.classKey);

  const typesByKey = new Map<string, HostType>();
  for (const offer of ctx.hosts) {
    const key = typeKey(offer);
    const type = typesByKey.get(key) ?? { sample: offer, hosts: [], existing: offer.kind === 'hypervisor', bins: 0 };
    type.hosts.push(offer);
    typesByKey.set(key, type);
  }
  const types = [...typesByKey.values()];
  for (const type of types) {
    if (!type.existing && type.sample.conversionImage === undefined) continue;
    const fitting = servers.filter((s) => compatible(s, type.sample) && fitsVmAlone(s, type.sample) && !(s.group !== undefined && type.sample.groups.includes(s.group))).length;
    type.bins = Math.min(type.hosts.length, fitting);
  }

  const columns: Column[] = [];
  const add = (col: Omit<Column, 'upper'> & { upper?: number }): number => columns.push({ upper: 1, ...col }) - 1;
  type Row = { lo: number; hi: number; idx: number[]; val: number[] };
  const rows: Row[] = [];
  const perServer = new Map<ServerNeed, number[]>(servers.map((s) => [s, []]));

  for (const type of types) {
    const bm: number[] = [];
    if (!type.existing) {
      for (const s of servers) {
        if (!compatible(s, type.sample) || !fitsBareMetal(s, type.sample)) continue;
        const col = add({ kind: 'bm', server: s, type });
        bm.push(col);
        perServer.get(s)?.push(col);
      }
    }
    const convs: number[] = [];
    for (let bin = 0; bin < type.bins; bin++) {
      const conv = type.existing ? undefined : add({ kind: 'conv', type, bin });
      if (conv !== undefined) convs.push(conv);
      const vms: number[] = [];
      for (const s of servers) {
        if (!compatible(s, type.sample) || !fitsVmAlone(s, type.sample)) continue;
        if (s.group !== undefined && type.sample.groups.includes(s.group)) continue;
        const col = add({ kind: 'vm', server: s, type, bin });
        vms.push(col);
        perServer.get(s)?.push(col);
      }
      binRows(rows, type.sample, vms, conv, columns);
      // Interchangeable bins fill in order, so the solver does not explore their permutations.
      if (conv !== undefined && bin > 0) rows.push({ lo: 0, hi: Infinity, idx: [convs[bin - 1] as number, conv], val: [1, -1] });
    }
    if (!type.existing && bm.length + convs.length > 0) {
      // Counted through one variable per type, so later stages pin short rows instead of dense ones.
      const used = add({ kind: 'used', type, upper: type.hosts.length });
      rows.push({ lo: 0, hi: 0, idx: [...bm, ...convs, used], val: [...bm, ...convs].map(() => 1).concat(-1) });
    }
  }
  const placedCols = new Map<ServerNeed, number>();
  for (const [s, cols] of perServer) {
    if (cols.length === 0) continue;
    const placed = add({ kind: 'placed', server: s });
    placedCols.set(s, placed);
    rows.push({ lo: 0, hi: 0, idx: [...cols, placed], val: cols.map(() => 1).concat(-1) });
  }

  // Stage objectives, as dense cost vectors.
  const n = columns.length;
  const tierCount = [0, 1, 2, 3].map((t) => servers.filter((s) => s.tier === t).length);
  const tierWeight = [0, 1, 2, 3].map((t) => tierCount.slice(t + 1).reduce((w, count) => w * (count + 1), 1));
  const repurposable = ctx.hosts.filter((h) => h.workload !== undefined).length;
  const preemptWeight = 10 * repurposable + 1;
  const recovered = new Float64Array(n);
  const preempt = new Float64Array(n);
  const conversions = new Float64Array(n);
  const waste = new Float64Array(n);
  columns.forEach((col, j) => {
    if (col.kind === 'placed' && col.server) recovered[j] = tierWeight[col.server.tier] as number;
    const offer = col.type?.sample;
    if (col.kind === 'used' && offer?.workload) preempt[j] = preemptWeight + workloadImportance(offer.workload.priority);
    if (col.kind === 'conv') conversions[j] = 1;
    if (col.kind === 'bm' && col.server && offer) waste[j] = bareMetalWaste(col.server, offer);
    if (col.kind === 'conv') waste[j] = 1;
    if (col.kind === 'vm' && col.server && offer && !col.type?.existing) waste[j] = -(col.server.cpus / offer.vmCpuCapacity + col.server.memoryGiB / offer.vmMemoryCapacity) / 2;
  });

  const stats = { columns: n, rows: rows.length };
  if (n === 0) {
    return { optimal: true, status: 'empty', ms: performance.now() - started, ...stats, plan: toPlan(input, columns, new Float64Array(0)) };
  }
  if (n > maxColumns) return { optimal: false, status: 'too large', ms: performance.now() - started, ...stats, plan: undefined };
  const csr = toCsr(rows);
  const model = highs.createModel({
    numCols: n,
    numRows: rows.length,
    sense: highs.constants.objectiveSense.minimize,
    colCost: new Float64Array(n),
    colLower: new Float64Array(n),
    colUpper: Float64Array.from(columns, (c) => c.upper),
    rowLower: rows.map((r) => (r.lo === -Infinity ? -highs.infinity : r.lo)),
    rowUpper: rows.map((r) => (r.hi === Infinity ? highs.infinity : r.hi)),
    matrix: { format: 'csr', numRows: rows.length, numCols: n, starts: csr.starts, indices: csr.indices, values: csr.values },
    integrality: new Array(n).fill(highs.constants.variableType.integer),
  });
  try {
    const log = process.env.FB_MILP_LOG === '1';
    model.options.set({ output_flag: log, log_to_console: log });
    const stages: { costs: Float64Array; sign: 1 | -1; integral: boolean }[] = [
      { costs: recovered, sign: -1, integral: true },
      { costs: preempt, sign: 1, integral: true },
      { costs: conversions, sign: 1, integral: true },
      { costs: waste, sign: 1, integral: false },
    ];
    let solution: Float64Array | undefined;
    let optimal = true;
    let status = 'optimal';
    const deadline = started + timeLimitSeconds * 1000;
    // HiGHS checks its own time_limit only between some phases; this checks it throughout branch and bound.
    const interrupt = (event: { interrupt(): void }): undefined => {
      if (performance.now() > deadline) event.interrupt();
    };
    const print = (event: { message: string }): undefined => void process.stderr.write(event.message);
    for (const [index, stage] of stages.entries()) {
      const remaining = (deadline - performance.now()) / 1000;
      if (remaining <= 0) {
        optimal = false;
        status = 'time limit';
        break;
      }
      model.zeroAllClocks();
      model.changeColsCost({ kind: 'range', from: 0, to: n - 1 }, stage.costs.map((c) => stage.sign * c));
      model.options.set({ time_limit: remaining, mip_abs_gap: stage.integral ? 0.5 : 1e-7, mip_rel_gap: stage.integral ? 0 : 1e-9 });
      if (solution) model.setSolution({ colValue: solution });
      if (log) model.run({ [highs.constants.callbackType.mipInterrupt]: interrupt, [highs.constants.callbackType.logging]: print });
      else model.run({ [highs.constants.callbackType.mipInterrupt]: interrupt });
      const code = model.getModelStatus();
      if (code !== highs.constants.modelStatus.optimal) {
        optimal = false;
        status = code === highs.constants.modelStatus.timeLimit || code === highs.constants.modelStatus.interrupted ? 'time limit' : `status ${code}`;
        // The incumbent of an interrupted stage is still a valid plan, just not a proven optimum.
        if (model.info.get('primal_solution_status') === 2) solution = Float64Array.from(model.getSolution().colValue);
        break;
      }
      solution = Float64Array.from(model.getSolution().colValue);
      if (index === 0) {
        // Pinned per tier: with the optimum lexicographically largest, "at least as many per tier" means "as many".
        for (let tier = 0; tier < 4; tier++) {
          const idx = servers.filter((s) => s.tier === tier && placedCols.has(s)).map((s) => placedCols.get(s) as number);
          const count = idx.reduce((sum, j) => sum + Math.round((solution as Float64Array)[j] ?? 0), 0);
          if (idx.length > 0) model.addRow(count - 0.5, highs.infinity, { indices: idx, values: idx.map(() => 1) });
        }
        continue;
      }
      if (!stage.integral) continue;
      const value = stage.costs.reduce((sum, c, j) => sum + c * ((solution as Float64Array)[j] ?? 0), 0);
      const idx: number[] = [];
      const val: number[] = [];
      stage.costs.forEach((c, j) => {
        if (c !== 0) {
          idx.push(j);
          val.push(c);
        }
      });
      if (idx.length > 0) model.addRow(-highs.infinity, value + 0.5, { indices: idx, values: val });
    }
    const ms = performance.now() - started;
    return { optimal, status, ms, ...stats, plan: solution ? toPlan(input, columns, solution) : undefined };
  } finally {
    model.dispose();
  }
}

/** Capacity and anti-affinity rows of one hypervisor bin (converted when `conv` is set, standing otherwise). */
function binRows(
  rows: { lo: number; hi: number; idx: number[]; val: number[] }[],
  offer: HostOffer,
  vms: number[],
  conv: number | undefined,
  columns: readonly Column[],
): void {
  if (vms.length === 0) return;
  const need = (j: number): ServerNeed => columns[j]?.server as ServerNeed;
  const capacity = (size: (s: ServerNeed) => number, cap: number, used: number): void => {
    const idx = [...vms];
    const val = vms.map((j) => size(need(j)));
    if (conv === undefined) rows.push({ lo: -Infinity, hi: cap - used, idx, val });
    else rows.push({ lo: -Infinity, hi: 0, idx: [...idx, conv], val: [...val, -cap] });
  };
  capacity((s) => s.cpus, offer.vmCpuCapacity, offer.usedCpus);
  capacity((s) => s.memoryGiB, offer.vmMemoryCapacity, offer.usedMemoryGiB);
  const byGroup = new Map<string, number[]>();
  for (const j of vms) {
    const group = need(j).group;
    if (group !== undefined) byGroup.set(group, [...(byGroup.get(group) ?? []), j]);
  }
  for (const cols of byGroup.values()) if (cols.length > 1) rows.push({ lo: -Infinity, hi: 1, idx: cols, val: cols.map(() => 1) });
}

function toCsr(rows: readonly { idx: number[]; val: number[] }[]): { starts: Int32Array; indices: Int32Array; values: Float64Array } {
  const nnz = rows.reduce((sum, r) => sum + r.idx.length, 0);
  const starts = new Int32Array(rows.length + 1);
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let at = 0;
  rows.forEach((r, i) => {
    starts[i] = at;
    r.idx.forEach((j, k) => {
      indices[at] = j;
      values[at] = r.val[k] as number;
      at++;
    });
  });
  starts[rows.length] = at;
  return { starts, indices, values };
}

/** Turns a solution into a plan with concrete hosts (a type's hosts in id order), scored like the engine's. */
function toPlan(input: PlacementInput, columns: readonly Column[], x: Float64Array): Plan {
  const next = new Map<HostType, number>();
  const take = (type: HostType): HostOffer => {
    const i = next.get(type) ?? 0;
    next.set(type, i + 1);
    return type.hosts[i] as HostOffer;
  };
  const bareMetal: { need: ServerNeed; offer: HostOffer }[] = [];
  const vms: { need: ServerNeed; offer: HostOffer }[] = [];
  const binHost = new Map<string, HostOffer>();
  const converted: HostOffer[] = [];
  const chosen = columns.filter((_, j) => (x[j] ?? 0) > 0.5);
  for (const col of chosen) if (col.kind === 'bm') bareMetal.push({ need: col.server as ServerNeed, offer: take(col.type as HostType) });
  // An interrupted early stage may leave bins converted with nothing on them; they are not part of the plan.
  const filled = new Set(chosen.filter((col) => col.kind === 'vm').map((col) => `${col.type?.sample.id}#${col.bin}`));
  for (const col of chosen) {
    if (col.kind !== 'conv' || !filled.has(`${col.type?.sample.id}#${col.bin}`)) continue;
    const offer = take(col.type as HostType);
    binHost.set(`${col.type?.sample.id}#${col.bin}`, offer);
    converted.push(offer);
  }
  for (const col of chosen) {
    if (col.kind !== 'vm') continue;
    const key = `${col.type?.sample.id}#${col.bin}`;
    let offer = binHost.get(key);
    if (offer === undefined) binHost.set(key, (offer = take(col.type as HostType)));
    vms.push({ need: col.server as ServerNeed, offer });
  }
  const assignments: Placement[] = [
    ...bareMetal.map(({ need, offer }): Placement => ({ server: need.id, mode: 'bare-metal', host: offer.id, explanation: 'exact solver' })),
    ...vms.map(({ need, offer }): Placement => ({ server: need.id, mode: 'vm', hypervisor: offer.id, explanation: 'exact solver' })),
  ];
  const placed = new Set(assignments.map((a) => a.server));
  const used = [...bareMetal.map((b) => b.offer), ...converted];
  return {
    assignments,
    preemptions: used
      .filter((o) => o.workload !== undefined)
      .map((o) => ({ host: o.id, workload: o.workload?.name as string, priority: o.workload?.priority as number, explanation: 'exact solver' })),
    conversions: converted.map((o) => ({ host: o.id, image: o.conversionImage as string, explanation: 'exact solver' })),
    unplaced: [...new Set(input.servers)].filter((id) => !placed.has(id)).map((server) => ({ server, reason: 'no-capacity', explanation: 'exact solver' })),
    score: scoreDecisions({ bareMetal, vms, converted }),
  };
}
