/**
 * redis-server is SIGKILLed in the middle of a rack's recovery and started
 * again on its data: the planner resumes the incident from what Redis kept,
 * the recovery completes on the devices with no action done twice, and the
 * planner's fencing token never goes back. Once on a planner elected at
 * start, once after a planner failover (the lease token is then 2).
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
    .flatMap((s) => s.lines.flatMap((l) => (l.includes('elected planner for the site') ? [JSON.parse(l) as { time: number; fencingToken: number }] : [])))
    .sort((a, b) => a.time - b.time)
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
  assert.ok(tokens.every((token, i) => i === 0 || token >= (tokens[i - 1] ?? 0)), `tokens went back: ${tokens.join(' → ')}`);
}

const slowDevices = { size: 'tiny', executors: 2, lab: { powerDelayMs: 800, bootDelayMs: 1_500 } } as const;

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
    await system.services.get('planner')?.kill();
    const planner2 = system.startService('planner', 'planner-2');
    await planner2.waitForLog((l) => l.includes('planning for the site'), 60_000);
    await crashRedisMidRecovery(system, t);
    assert.ok(Math.min(...electedTokens(system).slice(1)) >= 2, `after the failover: ${electedTokens(system).join(' → ')}`);
  } finally {
    await system.stop();
  }
});
