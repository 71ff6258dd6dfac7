/**
 * Drills leave no trace, and production comes first. Each scenario takes a
 * snapshot of every device the lab holds (every host's power, every port's
 * admin state, PVID and VLAN lists, every LUN, clone and mask, every VM, and
 * every boot entry) before the drill, and after its cleanup requires the same
 * snapshot — except where a real failure during the drill rightly changed
 * production, which is judged by the recovery checks. One difference is a
 * known gap, kept apart and marked todo below: what a borrowed bare-metal host
 * installed on its own disk (its image, server and drill flag) is not wiped.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { topics, type IncidentProgress } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { diffSystemDeviceSnapshots, takeDeviceSnapshot, type SystemDeviceSnapshot } from '../src/device-snapshot.ts';
import { burnRack } from '../src/rack-burn.ts';
import { checkServersRunElsewhere } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: 'tiny', executors: 2, planners: 2 });
});
after(() => system?.stop());

/** A borrowed host's disk keeps what the drill installed on it: the one trace cleanup cannot remove yet. */
const isDiskTrace = (line: string): boolean => /^host \S+ (image|server|drill): /.test(line);
const diskTraces: string[] = [];

/** Waits (devices land changes late) until every device but a borrowed host's disk is as before, then fails listing what is not. */
async function expectNoTrace(before: SystemDeviceSnapshot, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let lines: string[];
  for (;;) {
    lines = diffSystemDeviceSnapshots(before, await takeDeviceSnapshot(system));
    if (lines.every(isDiskTrace) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  diskTraces.push(...lines.filter(isDiskTrace).map((l) => `${what}: ${l}`));
  const left = lines.filter((l) => !isDiskTrace(l));
  assert.deepEqual(left, [], `${what}: ${left.length} device difference(s) from before`);
}

async function startDrill(rack: string, maxDurationSeconds = 600): Promise<string> {
  const drillId = `e2e-${rack}-${randomUUID().slice(0, 8)}`;
  await system.bus.publish(topics.drillStart, { drillId, scope: { domain: { kind: 'rack', id: rack, site: 'site1' } }, requestedBy: 'e2e', requestedAt: Date.now(), maxDurationSeconds });
  return drillId;
}

const progressOf = (drillId: string): IncidentProgress | undefined => system.observer.incidents.get(`drill-${drillId}`)?.at(-1);
const isFinal = (p: IncidentProgress | undefined): boolean => p !== undefined && ['recovered', 'degraded', 'failed'].includes(p.phase);

async function untilUp(drillId: string): Promise<void> {
  await waitFor(`drill ${drillId} to have a server up`, () => progressOf(drillId)?.servers.some((s) => s.step === 'done') === true, 120_000).catch((err: unknown) =>
    assert.fail(`${(err as Error).message}: ${JSON.stringify(progressOf(drillId))}\n${system.logs()}`),
  );
}

async function stopDrill(drillId: string): Promise<IncidentProgress> {
  await system.bus.publish(topics.drillStop, { drillId, requestedBy: 'e2e', requestedAt: Date.now() });
  return untilEnded(drillId);
}

async function untilEnded(drillId: string): Promise<IncidentProgress> {
  await waitFor(`drill ${drillId} to end`, () => isFinal(progressOf(drillId)), 120_000).catch((err: unknown) =>
    assert.fail(`${(err as Error).message}: ${JSON.stringify(progressOf(drillId))}\n${system.logs()}`),
  );
  return progressOf(drillId) as IncidentProgress;
}

test('a drill stopped while it recovers puts every device back as it was', { timeout: 240_000 }, async () => {
  const before = await takeDeviceSnapshot(system);
  const drillId = await startDrill('r1');
  // Stopped mid-way: as soon as any rehearsed server has a step under way.
  await waitFor('the drill under way', () => progressOf(drillId)?.servers.some((s) => s.step !== 'unplaced' && s.step !== 'pending') === true, 60_000);
  const final = await stopDrill(drillId);
  assert.equal(final.cleanup?.complete, true, JSON.stringify(final.cleanup));
  await expectNoTrace(before, 'after a drill stopped mid-recovery');
});

test('two drills in a row each put every device back as it was', { timeout: 300_000 }, async () => {
  for (const rack of ['r2', 'r2']) {
    const before = await takeDeviceSnapshot(system);
    const drillId = await startDrill(rack);
    await untilUp(drillId);
    const final = await stopDrill(drillId);
    assert.equal(final.cleanup?.complete, true, JSON.stringify(final.cleanup));
    await expectNoTrace(before, `after drill ${drillId} of ${rack}`);
  }
});

test('what a borrowed host installed on its own disk is wiped at cleanup', { todo: 'needs a wipe image booted at cleanup (README, Drills)' }, () => {
  assert.deepEqual(diskTraces, []);
});

test('the drilled rack burning during its drill: the drill stops and gives its hosts back, and every server of the rack is recovered', { timeout: 300_000 }, async () => {
  const drillId = await startDrill('r3');
  await untilUp(drillId);
  const burned = burnRack(system, 'r3');
  const drill = await untilEnded(drillId);
  assert.equal(drill.cleanup?.complete, true, JSON.stringify(drill.cleanup));
  // The capacity the drill held comes back when it ends: a server the first plan could not place is planned again then.
  const { observer, lab } = system;
  await waitFor('every server of r3 heartbeating from a new host', () => burned.lost.every(({ server }) => {
    const at = observer.serverHeartbeats.get(server.id);
    return at !== undefined && at.at > burned.burnedAt && !burned.dead.includes(at.host);
  }), 180_000).catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, burned.lost, burned.dead, burned.burnedAt), []);
});
