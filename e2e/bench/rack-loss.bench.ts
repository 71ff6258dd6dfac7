/**
 * Orchestration time of a rack loss among 10,000 lab hosts: the whole system
 * (nats-server, redis-server, the lab in this process with zero-latency
 * devices, boot service, detector, planner and executor as processes), one
 * rack of 40 burned per run, timed from the burn to the last recovered
 * server's heartbeat and split as the incident report splits it:
 *   detect  burn → the planner opens the incident (includes the detection window)
 *   fence   → every dead host fenced (the report's fenceMs, from detection)
 *   plan    → placement done (planMs, after the fence)
 *   execute → the last recovered server heartbeats from its new host
 * Target: at most 2 s beyond the detection window (heartbeat interval × missed).
 * Figures are medians over the runs (a different rack each run).
 *
 *   npm run bench -w @firebreak/e2e -- [--runs 3] [--size 10k]
 */
import { parseArgs } from 'node:util';
import type { IncidentProgress } from '@firebreak/shared';
import { serversOn } from '../src/recovery-checks.ts';
import { startSystem } from '../src/system.ts';

const TARGET_BEYOND_WINDOW_MS = 2_000;
const INTERVAL_MS = 1_000;
const MISSED = 3;

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, size: { type: 'string', default: '10k' } } });
const runs = Number(values.runs);
const size = values.size as '10k' | 'row' | 'rack' | 'tiny';
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive whole number, got "${values.runs}"`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

console.log(`starting Firebreak against a ${size} lab (heartbeat ${INTERVAL_MS} ms, ${MISSED} missed → ${INTERVAL_MS * MISSED} ms detection window) …`);
const startedAt = Date.now();
const system = await startSystem({
  size,
  observeHeartbeats: false,
  lab: { powerDelayMs: 0, bootDelayMs: 0, heartbeatPeriodMs: INTERVAL_MS },
  env: { FB_HB_INTERVAL_MS: String(INTERVAL_MS), FB_HB_MISSED: String(MISSED), FB_READINESS_INTERVAL_MS: '0' },
});
console.log(`up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${system.lab.inventory.hosts.length} hosts, ${system.lab.inventory.servers.length} servers`);

interface Split {
  total: number;
  detect: number;
  fence: number;
  plan: number;
  execute: number;
  servers: number;
}
const splits: Split[] = [];
try {
  // Racks with the most servers, a different one each run.
  const racks = system.lab.inventory.racks
    .map((r) => ({ id: r.id, hosts: system.lab.inventory.hosts.filter((h) => h.rack === r.id).map((h) => h.id) }))
    .map((r) => ({ ...r, servers: serversOn(system.lab.inventory, r.hosts).length }))
    .sort((a, b) => b.servers - a.servers)
    .slice(0, runs);
  for (const rack of racks) {
    // Settle: the previous recovery's hosts are heartbeating and the detector is idle.
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS));
    const burnAt = Date.now();
    const dead = system.lab.faults.burnRack(rack.id);
    const final: IncidentProgress = await system.observer.waitForOutcome(`rack ${rack.id}`, (p) => p.hosts.some((h) => dead.includes(h)), 120_000);
    const report = final.report ?? [];
    const recovered = report.filter((r) => r.outcome === 'recovered');
    const detectedAt = final.openedAt;
    const lastHeartbeat = Math.max(...recovered.map((r) => detectedAt + (r.heartbeatMs ?? 0)));
    const fence = Math.max(...report.map((r) => r.fenceMs ?? 0));
    const plan = Math.max(...report.map((r) => r.planMs ?? 0));
    const split: Split = {
      total: lastHeartbeat - burnAt,
      detect: detectedAt - burnAt,
      fence,
      plan,
      execute: lastHeartbeat - detectedAt - fence - plan,
      servers: recovered.length,
    };
    splits.push(split);
    console.log(
      `rack ${rack.id}: ${final.phase}, ${split.servers}/${report.length} servers back in ${split.total} ms ` +
        `(detect ${split.detect}, fence ${split.fence}, plan ${split.plan}, execute ${split.execute})`,
    );
  }
} finally {
  await system.stop();
}

const m = (key: keyof Split): number => median(splits.map((s) => s[key]));
const beyond = m('total') - INTERVAL_MS * MISSED;
console.log(
  `median of ${splits.length}: burn → last heartbeat ${m('total')} ms = detect ${m('detect')} + fence ${m('fence')} + plan ${m('plan')} + execute ${m('execute')}; ` +
    `${beyond} ms beyond the ${INTERVAL_MS * MISSED} ms detection window (target ≤ ${TARGET_BEYOND_WINDOW_MS}: ${beyond <= TARGET_BEYOND_WINDOW_MS ? 'met' : 'NOT met'}); ` +
    `${m('total') - m('detect')} ms from detection to the last heartbeat`,
);
