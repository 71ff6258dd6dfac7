/**
 * Placement engine: speed and quality against the exact optimum.
 *
 *   npm run bench -w @firebreak/planner                  # every instance, MILP up to 60 s each
 *   npm run bench -w @firebreak/planner -- --quick       # four small instances, MILP up to 10 s
 *   npx tsx services/planner/bench/placement.bench.ts [--quick] [--runs 7] [--milp-seconds 60] [--json out.json]
 *
 * Each instance is planned by the engine (median of --runs after one warm-up)
 * and solved exactly by HiGHS with the same lexicographic objective. "value"
 * is the tier-weighted recovery (8/4/2/1 per recovered tier-0/1/2/3 server),
 * engine over optimum; "lex" says whether the engine's full objective equals
 * the optimum's or at which level it is behind. Both plans are checked
 * against every hard constraint.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkPlan, compareScores, planPlacement, type Plan, type PlanScore } from '../src/placement/index.ts';
import { instances } from './placement-instances.ts';
import { solveExact } from './placement-milp.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    'milp-seconds': { type: 'string' },
    only: { type: 'string' },
    json: { type: 'string' },
  },
});
const quick = args.quick === true;
const runs = Number(args.runs ?? (quick ? 3 : 7));
const milpSeconds = Number(args['milp-seconds'] ?? (quick ? 10 : 60));

const tierValue = [8, 4, 2, 1];
const value = (score: PlanScore): number => score.recovered.reduce((sum, n, tier) => sum + n * (tierValue[tier] ?? 0), 0);

/** Which level of the objective the engine is behind (or ahead, when the solver stopped early) at. */
function lexVerdict(engine: PlanScore, exact: PlanScore): string {
  const c = compareScores(engine, exact);
  if (c === 0) return 'equal';
  const level =
    engine.recovered.join() !== exact.recovered.join()
      ? 'recovered'
      : engine.preemptions !== exact.preemptions || engine.preemptedImportance !== exact.preemptedImportance
        ? 'preemption'
        : engine.conversions !== exact.conversions
          ? 'conversions'
          : 'waste';
  return c > 0 ? `behind: ${level}` : `ahead: ${level}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function summary(score: PlanScore): string {
  return `${score.recovered.join('/')} p${score.preemptions}(${score.preemptedImportance}) c${score.conversions} w${score.waste.toFixed(2)}`;
}

interface Row {
  instance: string;
  servers: number;
  hosts: number;
  engineMs: number;
  milpMs: number | undefined;
  milpStatus: string;
  valueRatio: number | undefined;
  lex: string;
  engine: string;
  exact: string;
}

const rows: Row[] = [];
const list = instances(quick).filter((i) => args.only === undefined || i.name.includes(args.only));
console.log(`placement bench: ${list.length} instances, engine median of ${runs} runs, MILP limit ${milpSeconds} s${quick ? ' (quick)' : ''}\n`);

for (const { name, input } of list) {
  let plan: Plan = planPlacement(input);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    plan = planPlacement(input);
    times.push(performance.now() - t);
  }
  const problems = checkPlan(input, plan);
  if (problems.length > 0) throw new Error(`engine plan for ${name} breaks constraints:\n  ${problems.slice(0, 10).join('\n  ')}`);

  const exact = await solveExact(input, milpSeconds);
  let valueRatio: number | undefined;
  let lex = '-';
  if (exact.plan) {
    const exactProblems = checkPlan(input, exact.plan);
    if (exactProblems.length > 0) throw new Error(`MILP plan for ${name} breaks constraints:\n  ${exactProblems.slice(0, 10).join('\n  ')}`);
    const best = value(exact.plan.score);
    valueRatio = best === 0 ? 1 : value(plan.score) / best;
    lex = lexVerdict(plan.score, exact.plan.score);
  }
  const row: Row = {
    instance: name,
    servers: new Set(input.servers).size,
    hosts: new Set(input.candidates).size,
    engineMs: median(times),
    milpMs: exact.plan ? exact.ms : undefined,
    milpStatus: `${exact.status} (${exact.columns} cols)`,
    valueRatio,
    lex,
    engine: summary(plan.score),
    exact: exact.plan ? summary(exact.plan.score) : '-',
  };
  rows.push(row);
  console.log(
    `${row.instance}: engine ${row.engineMs.toFixed(2)} ms, MILP ${row.milpMs?.toFixed(0) ?? '-'} ms [${row.milpStatus}], value ${row.valueRatio === undefined ? '-' : (row.valueRatio * 100).toFixed(2) + '%'}, ${row.lex}`,
  );
}

const header = ['instance', 'servers', 'hosts', 'engine ms', 'MILP ms', 'value', 'lex', 'engine t0/t1/t2/t3 p c w', 'MILP t0/t1/t2/t3 p c w', 'MILP status'];
const table = rows.map((r) => [
  r.instance,
  String(r.servers),
  String(r.hosts),
  r.engineMs.toFixed(2),
  r.milpMs === undefined ? '-' : r.milpMs.toFixed(0),
  r.valueRatio === undefined ? '-' : `${(r.valueRatio * 100).toFixed(2)}%`,
  r.lex,
  r.engine,
  r.exact,
  r.milpStatus,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
console.log(`\n${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${table.map(line).join('\n')}`);
console.log('\nvalue = tier-weighted recoveries (8/4/2/1), engine / exact; p = preemptions (importance), c = conversions, w = waste');
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ runs, milpSeconds, rows }, null, 2));
  console.log(`written ${args.json}`);
}
