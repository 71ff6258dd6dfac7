/**
 * The planner and an executor are killed (SIGKILL, no goodbye) in the middle
 * of a recovery. A new planner takes the site's lease, resumes the incident
 * from its snapshot and finishes it; the surviving executor and a new one
 * carry out the rest. No device action happens twice.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkFencedBeforeGrant, checkNoDuplicateActions, checkServersRunElsewhere, eventsSince, serversOn, waitUntilUnderWay } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  // Slow BMCs and boots, so there is a middle of the recovery to kill in.
  system = await startSystem({ size: 'tiny', executors: 2, lab: { powerDelayMs: 800, bootDelayMs: 1_500 } });
});
after(() => system?.stop());

test('killing the planner and an executor mid-incident still ends in full recovery, with no action done twice', { timeout: 240_000 }, async (t) => {
  const { lab, observer } = system;
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const burnedAt = Date.now();
  const dead = lab.faults.burnRack('r2');
  const lost = serversOn(lab.inventory, dead);

  const underWay = await waitUntilUnderWay(observer, dead, () => system.logs());
  const killedAt = underWay[0];
  await Promise.all([system.services.get('planner')?.kill(), system.services.get('executor-1')?.kill()]);
  t.diagnostic(`killed planner and executor-1 at ${JSON.stringify(killedAt?.servers.map((s) => `${s.server}:${s.step}`))}`);

  const planner2 = system.startService('planner', 'planner-2');
  system.startService('executor', 'executor-3');
  await planner2.waitForLog((l) => l.includes('resumed open incidents'), 60_000);

  const final = await observer
    .waitForOutcome('the resumed incident', (p) => p.hosts.some((h) => dead.includes(h)), 180_000)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.equal(final.phase, 'recovered', `${JSON.stringify(final.servers)}\n${system.logs()}`);

  const events = eventsSince(lab, sinceSeq);
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, lost, dead, burnedAt), []);
  assert.deepEqual(checkFencedBeforeGrant(events, lost), []);
  assert.deepEqual(checkNoDuplicateActions(events), []);
});
