/**
 * redis-server is SIGKILLed in the middle of a rack's recovery and started
 * again on its data: the planner resumes the incident from what Redis kept,
 * the recovery completes on the devices with no action done twice, and the
 * planner's fencing token never goes back. A standby planner runs beside the
 * leader throughout. Once on the planner elected at start, once after the
 * leader died and the standby took over (the lease token is then 2).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStore } from '@firebreak/shared';
import { burnRack, expectRackRecovered } from '../src/rack-burn.ts';
import { waitUntilUnderWay } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

/** Tokens planners logged on winning the site's lease, in the order they won. */
function electedTokens(system: RunningSystem): number[] {
  return [...system.services.values()]
    .filter((s) => s.name.startsWith('planner'))
    .flatMap((s) => s.lines.flatMap((l) => (l.includes('elected planner for the site') ? [JSON.parse(l) as { time: string; fencingToken: number }] : [])))
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
    .map((e) => e.fencingToken);
}

async function crashRedisMidRecovery(system: RunningSystem, t: { diagnostic(message: string): void }): Promise<void> {
  const { observer } = system;
  const burned = burnRack(system, 'r2');
  const { dead, lost } = burned;
  const underWay = await waitUntilUnderWay(observer, dead, () => system.logs());
  t.diagnostic(`killing redis at ${JSON.stringify(underWay[0]?.servers.map((s) => `${s.server}:${s.step}`))}`);
  await system.crashRedis(1_500);

  await expectRackRecovered(system, burned, 180_000);

  // Redis kept what it was told: every lost server's placement is where it heartbeats from.
  const store = createStore(system.redisUrl);
  try {
    for (const { server } of lost) {
      const host = observer.serverHeartbeats.get(server.id)?.host;
      const placement = (await store.ledger.server(server.id))?.placement;
      assert.ok(placement && (placement.state === 'bare-metal' ? placement.host : placement.state === 'vm' ? placement.hypervisor : '') === host, `${server.id}: ledger ${JSON.stringify(placement)}, heartbeats from ${host}`);
    }
  } finally {
    await store.close();
  }
  const tokens = electedTokens(system);
  t.diagnostic(`planner lease tokens: ${tokens.join(' → ')}`);
  assert.ok(tokens.every((token, i) => i === 0 || token >= (tokens[i - 1] ?? 0)), `tokens went back: ${tokens.join(' → ')}\n${system.logs(400)}`);
}

// Two planners (leader and standby) and two executors, as deployed; devices slow enough to have a middle to crash in.
const slowDevices = { size: 'tiny', executors: 2, planners: 2, lab: { powerDelayMs: 800, bootDelayMs: 1_500 } } as const;

test('redis killed and restarted mid-recovery: the recovery completes', { timeout: 300_000 }, async (t) => {
  const system = await startSystem(slowDevices);
  try {
    await crashRedisMidRecovery(system, t);
  } finally {
    await system.stop();
  }
});

test('redis killed and restarted mid-recovery after a planner failover: the recovery completes and the token stays at 2 or more', { timeout: 300_000 }, async (t) => {
  const system = await startSystem(slowDevices);
  try {
    // The leader dies; the standby, running beside it all along, takes the lease.
    const planners = [...system.services.values()].filter((s) => s.name.startsWith('planner'));
    const leader = planners.find((p) => p.lines.some((l) => l.includes('planning for the site')));
    const standby = planners.find((p) => p !== leader);
    assert.ok(leader && standby, 'a leader and a standby');
    await leader.kill();
    await standby.waitForLog((l) => l.includes('planning for the site'), 60_000);
    await crashRedisMidRecovery(system, t);
    assert.ok(Math.min(...electedTokens(system).slice(1)) >= 2, `after the failover: ${electedTokens(system).join(' → ')}`);
  } finally {
    await system.stop();
  }
});
