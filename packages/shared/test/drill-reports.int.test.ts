import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DrillReports, drillVerdict, type DrillReport, type DrillRequest, type Store } from '../src/store/index.ts';
import type { IncidentProgress } from '../src/schemas/index.ts';
import { useRedisStores } from './redis-stores.ts';

const { via } = useRedisStores(2, { flushBeforeEach: true });
const s = (i = 0): Store => via(i);

// Requests expire a week past their drill, by the real clock unless a test gives one.
const t0 = Date.now();

function request(drillId: string, over: Partial<DrillRequest> = {}): DrillRequest {
  return { drillId, site: 'site1', scope: { domain: { kind: 'rack', id: 'r2', site: 'site1' } }, requestedBy: 'firebreak-cli:ops@console', requestedAt: t0, maxDurationSeconds: 600, ...over };
}

function report(drillId: string, endedAt: number, over: Partial<DrillReport> = {}): DrillReport {
  return {
    drillId,
    incidentId: `drill-${drillId}`,
    site: 'site1',
    scope: { domain: { kind: 'rack', id: 'r2', site: 'site1' } },
    requestedBy: 'schedule:rack-r2-weekly',
    requestedAt: endedAt - 60_000,
    maxDurationSeconds: 600,
    startedAt: endedAt - 60_000,
    endedAt,
    phase: 'recovered',
    servers: [{ server: 'auth-07', host: 'r3-h07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 4_200, rtoSeconds: 4.2, rtoTargetSeconds: 900 }],
    cleanup: { complete: true, restored: [{ host: 'r3-h07', what: 'host powered off and returned' }], left: [] },
    passed: true,
    ...over,
  };
}

test('store - drill reports: a report is kept, listed newest first per site and across sites, and drops its request', async () => {
  const { drills } = s();
  await drills.recordRequest(request('d1'));
  await drills.recordRequest(request('d2', { site: 'site2', scope: { site: 'site2', hosts: ['x1'] } }));
  assert.deepEqual((await drills.pendingRequests()).map((r) => r.drillId), ['d1', 'd2']);
  assert.deepEqual(await drills.request('d1'), request('d1'));

  await drills.save(report('d1', t0 + 1_000));
  await drills.save(report('d3', t0 + 3_000));
  await drills.save(report('d2', t0 + 2_000, { site: 'site2' }));
  assert.deepEqual((await drills.pendingRequests()).map((r) => r.drillId), [], 'a saved report ends its request');
  assert.equal(await drills.request('d1'), undefined);

  assert.deepEqual((await drills.list({ site: 'site1' })).map((r) => r.drillId), ['d3', 'd1']);
  assert.deepEqual((await s(1).drills.list()).map((r) => r.drillId), ['d3', 'd2', 'd1'], 'every site, newest first');
  assert.deepEqual((await drills.list({ limit: 2 })).map((r) => r.drillId), ['d3', 'd2']);
  assert.deepEqual(await drills.list({ site: 'nowhere' }), []);
  assert.deepEqual(await drills.report('d3'), report('d3', t0 + 3_000));

  // Saved twice (the planner and its successor's catch-up): one entry, the newer content.
  await drills.save(report('d3', t0 + 3_000, { message: 'again' }));
  assert.deepEqual((await drills.list({ site: 'site1' })).map((r) => [r.drillId, r.message]), [['d3', 'again'], ['d1', undefined]]);
});

test('store - drill reports: only the newest reports of each site are kept', async () => {
  const drills = new DrillReports(s().redis, { keepPerSite: 3 });
  for (let i = 0; i < 6; i++) await drills.save(report(`k${i}`, t0 + i * 1_000));
  await drills.save(report('other', t0, { site: 'site2' }));
  assert.deepEqual((await drills.list({ site: 'site1' })).map((r) => r.drillId), ['k5', 'k4', 'k3']);
  assert.equal(await drills.report('k0'), undefined, 'a dropped report is gone, not just unlisted');
  assert.deepEqual((await drills.list({ site: 'site2' })).map((r) => r.drillId), ['other'], 'another site keeps its own');
  assert.throws(() => new DrillReports(s().redis, { keepPerSite: 0 }), /at least 1, got 0/);
});

test('store - drill reports: a request is recorded once, and one long past its drill is dropped', async () => {
  let now = t0;
  const drills = new DrillReports(s().redis, { clock: () => now });
  await drills.recordRequest(request('old', { requestedAt: t0, maxDurationSeconds: 60 }));
  await drills.recordRequest(request('old', { requestedBy: 'someone else' }));
  assert.equal((await drills.request('old'))?.requestedBy, 'firebreak-cli:ops@console', 'a redelivered request does not overwrite the first');
  now = t0 + 8 * 24 * 3600_000;
  await drills.recordRequest(request('new', { requestedAt: now }));
  assert.deepEqual((await drills.pendingRequests()).map((r) => r.drillId), ['new']);
  await assert.rejects(drills.recordRequest({ ...request('bad'), maxDurationSeconds: 0 }), /drill request "bad" cannot be stored/);
});

test('store - drill reports: a schedule slot is claimed by one planner only, and never goes back to an earlier slot', async () => {
  const a = s(0).drills;
  const b = s(1).drills;
  const slot = t0;
  const results = await Promise.all([
    a.claimSlot('site1:r2-weekly', { slot, state: 'firing', drillId: 'sched-a', at: t0 }),
    b.claimSlot('site1:r2-weekly', { slot, state: 'firing', drillId: 'sched-b', at: t0 }),
  ]);
  assert.equal(results.filter((r) => r.claimed).length, 1, 'one winner');
  const loser = results.find((r) => !r.claimed);
  assert.ok(loser && !loser.claimed);
  assert.equal(loser.current.slot, slot);

  assert.equal(await a.updateSlot('site1:r2-weekly', { slot, state: 'fired', drillId: loser.current.drillId as string, at: t0 + 1 }), true);
  assert.equal((await b.slot('site1:r2-weekly'))?.state, 'fired');

  const earlier = await b.claimSlot('site1:r2-weekly', { slot: slot - 60_000, state: 'skipped', reason: 'quiet hours', at: t0 + 2 });
  assert.equal(earlier.claimed, false, 'an earlier slot cannot replace a later one');
  assert.deepEqual(await a.claimSlot('site1:r2-weekly', { slot: slot + 60_000, state: 'skipped', reason: 'quiet hours', at: t0 + 3 }), { claimed: true });
  assert.equal(await a.updateSlot('site1:r2-weekly', { slot, state: 'fired', at: t0 + 4 }), false, 'the schedule moved past that slot');
  assert.equal(await a.slot('site1:other'), undefined);
});

test('drill verdict - passes only when recovered, every server up and cleanup left nothing', () => {
  const base: Pick<IncidentProgress, 'phase' | 'message' | 'report' | 'servers' | 'cleanup'> = {
    phase: 'recovered',
    servers: [{ server: 'auth-07', host: 'r3-h07', mode: 'bare-metal', step: 'done', percent: 100 }],
    report: [{ server: 'auth-07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 1, heartbeatMs: 10, rtoSeconds: 1, rtoTargetSeconds: 900 }],
    cleanup: { complete: true, restored: [{ host: 'r3-h07', what: 'host returned' }], left: [] },
  };
  assert.deepEqual(drillVerdict(base), { passed: true, recovered: 1, total: 1, problems: [] });
  assert.equal(drillVerdict({ ...base, cleanup: undefined }).passed, true, 'no cleanup report: the phase decides');

  const left = drillVerdict({ ...base, phase: 'degraded', message: 'cleanup left work undone', cleanup: { complete: false, restored: [], left: [{ host: 'r3-h07', what: 'clone lun-7-drill: delete failed (timeout)' }] } });
  assert.equal(left.passed, false);
  assert.deepEqual(left.problems, ['the drill ended degraded: cleanup left work undone', 'cleanup left: clone lun-7-drill: delete failed (timeout) (host r3-h07)']);
  assert.equal(drillVerdict({ ...base, cleanup: { complete: false, restored: [], left: [] } }).passed, false, 'an incomplete cleanup fails even on "recovered"');

  const failed: typeof base = {
    ...base,
    phase: 'failed',
    servers: [{ server: 'auth-07', host: null, mode: null, step: 'unplaced', percent: 0, message: 'no host with 64 GiB free' }],
    report: [{ server: 'auth-07', outcome: 'unrecovered', detectMs: 0, fenceMs: null, planMs: 1, heartbeatMs: null, rtoSeconds: null, rtoTargetSeconds: 900 }],
  };
  const down = drillVerdict(failed);
  assert.deepEqual(down.problems, ['the drill ended failed', 'server auth-07 not recovered: no host with 64 GiB free']);
  assert.equal(down.recovered, 0);
  // A stored report carries each server's reason itself.
  assert.deepEqual(drillVerdict({ phase: 'failed', report: [{ server: 'auth-07', outcome: 'unrecovered', reason: 'no spare' }], cleanup: null }).problems, ['the drill ended failed', 'server auth-07 not recovered: no spare']);
});
