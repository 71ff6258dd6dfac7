/**
 * The planner and an executor are killed (SIGKILL, no goodbye) in the middle
 * of a recovery. A new planner takes the site's lease, resumes the incident
 * from its snapshot and finishes it; the surviving executor and a new one
 * carry out the rest. No device action happens twice.
 */
import { after, before, test } from 'node:test';
import { burnRack, expectRackRecovered } from '../src/rack-burn.ts';
import { waitUntilUnderWay } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  // Slow BMCs and boots, so there is a middle of the recovery to kill in.
  system = await startSystem({ size: 'tiny', executors: 2, lab: { powerDelayMs: 800, bootDelayMs: 1_500 } });
});
after(() => system?.stop());

test('killing the planner and an executor mid-incident still ends in full recovery, with no action done twice', { timeout: 240_000 }, async (t) => {
  const { observer } = system;
  const burned = burnRack(system, 'r2');
  const { dead } = burned;
  const underWay = await waitUntilUnderWay(observer, dead, () => system.logs());
  const killedAt = underWay[0];
  await Promise.all([system.services.get('planner')?.kill(), system.services.get('executor-1')?.kill()]);
  t.diagnostic(`killed planner and executor-1 at ${JSON.stringify(killedAt?.servers.map((s) => `${s.server}:${s.step}`))}`);

  const planner2 = system.startService('planner', 'planner-2');
  system.startService('executor', 'executor-3');
  await planner2.waitForLog((l) => l.includes('resumed open incidents'), 60_000);

  await expectRackRecovered(system, burned, 180_000);
});
