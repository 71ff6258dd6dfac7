import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectBus, createStore, ensureStreams, Inventory, topics, type Bus, type ConsumerHandle, type DrillStart, type IncidentProgress, type Logger, type Store } from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { generateTopology } from '@firebreak/lab';
import { DrillReportWriter, DrillScheduler, parseDrillSchedules, storedFinalProgress, type DrillSchedule, type OpenWork } from '../src/drills/index.ts';
import { LeaderElection } from '../src/leader-election.ts';
import { quietLogger } from './fake-effects.ts';

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
const stores: Store[] = [];
const inventory = Inventory.parse(generateTopology({ size: 'tiny', seed: 1 }));

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'drill-scheduler-test' });
  await ensureStreams(bus.jsm);
});

after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await bus?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

/** A planner's own Redis connection. */
function connectStore(): Store {
  const store = createStore(redis.url, { onError: () => {} });
  stores.push(store);
  return store;
}

/** A schedule of its own per test (its slot record is keyed by name), every minute unless told. */
function schedule(cron = '* * * * *', quietHours: string[] = []): DrillSchedule {
  const name = `r2-${randomUUID().slice(0, 8)}`;
  const [s] = parseDrillSchedules(JSON.stringify({ schedules: [{ name, domain: 'rack r2', cron, maxDuration: '10m', quietHours }] }), { inventory, site: 'site1', source: 'test' });
  assert.ok(s);
  return s;
}

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: () => {} } as never;
}

const minute = 60_000;
const slotAt = Date.parse('2026-03-07T03:00:00Z');

test('drill scheduler - two planners looking at the same due slot at once start one drill', async () => {
  const s = schedule();
  const published: DrillStart[] = [];
  const logs: LogLine[] = [];
  const planners = [connectStore(), connectStore()].map(
    (store) =>
      new DrillScheduler({
        schedules: [s],
        drills: store.drills,
        publish: async (start) => void published.push(start),
        openWork: async () => [],
        logger: recordingLogger(logs),
        clock: () => slotAt + 2_000,
      }),
  );
  await Promise.all([...planners, ...planners].map((p) => p.tick()));
  assert.equal(published.length, 1, 'one DrillStart for the slot');
  assert.deepEqual(published[0] && { ...published[0], requestedAt: 0 }, {
    drillId: `sched-${s.name}-20260307T030000Z`,
    scope: { domain: { kind: 'rack', id: 'r2', site: 'site1' } },
    requestedBy: `schedule:${s.name}`,
    requestedAt: 0,
    maxDurationSeconds: 600,
  });
  assert.equal((await stores[0]?.drills.slot(s.key))?.state, 'fired');
  assert.equal(logs.filter((l) => l.msg === 'scheduled drill started').length, 1);
});

test('drill scheduler - a skipped slot is noted once with its reason, and the next slot is judged afresh', async () => {
  const s = schedule();
  const published: DrillStart[] = [];
  const logs: LogLine[] = [];
  let now = slotAt + 1_000;
  let open: OpenWork[] = [{ id: 'inc-r1-h01-3', drillId: null, hosts: ['r1-h01'] }];
  const make = (store: Store) =>
    new DrillScheduler({ schedules: [s], drills: store.drills, publish: async (d) => void published.push(d), openWork: async () => open, logger: recordingLogger(logs), clock: () => now });
  const [a, b] = [make(connectStore()), make(connectStore())];
  await Promise.all([a.tick(), b.tick(), a.tick()]);
  const skipped = logs.filter((l) => l.msg === 'scheduled drill skipped');
  assert.equal(skipped.length, 1, 'noted once, by whoever took the slot');
  assert.equal(skipped[0]?.fields.reason, 'incident inc-r1-h01-3 is open at the site: a real failure comes first');
  assert.equal(skipped[0]?.fields.slot, '2026-03-07T03:00:00.000Z');
  assert.equal(published.length, 0);

  // The failure is over: the slot stays skipped (not made up), the next one fires.
  open = [];
  await b.tick();
  assert.equal(published.length, 0);
  now = slotAt + minute + 1_000;
  await b.tick();
  assert.deepEqual(published.map((d) => d.drillId), [`sched-${s.name}-20260307T030100Z`]);

  // A drill of the same domain open: skipped, saying which.
  open = [{ id: 'drill-by-hand', drillId: 'by-hand', hosts: ['r2-h05'] }];
  now = slotAt + 2 * minute + 1_000;
  await a.tick();
  assert.equal(logs.at(-1)?.fields.reason, 'drill by-hand is open on hosts of rack r2');
  assert.equal(published.length, 1);
});

test('drill scheduler - a slot taken by a planner that died before publishing is published by the next one, once', async () => {
  const s = schedule();
  const store = connectStore();
  const published: DrillStart[] = [];
  const dying = new DrillScheduler({
    schedules: [s],
    drills: store.drills,
    publish: async () => {
      throw new Error('NATS went away');
    },
    openWork: async () => [],
    logger: quietLogger,
    clock: () => slotAt + 1_000,
  });
  await dying.tick();
  assert.equal((await store.drills.slot(s.key))?.state, 'firing', 'taken, not confirmed');

  const next = new DrillScheduler({ schedules: [s], drills: connectStore().drills, publish: async (d) => void published.push(d), openWork: async () => [], logger: quietLogger, clock: () => slotAt + 30_000 });
  await next.tick();
  await next.tick();
  assert.deepEqual(published.map((d) => d.drillId), [`sched-${s.name}-20260307T030000Z`], 'the same drill id, published once');
  assert.equal((await store.drills.slot(s.key))?.state, 'fired');

  // Had the first publish gone out (only its confirmation lost), the planner knows the drill: nothing is sent again.
  const t = schedule();
  await store.drills.claimSlot(t.key, { slot: slotAt, state: 'firing', drillId: `sched-${t.name}-20260307T030000Z`, at: slotAt });
  await store.drills.recordRequest({ drillId: `sched-${t.name}-20260307T030000Z`, site: 'site1', scope: { domain: t.domain }, requestedBy: `schedule:${t.name}`, requestedAt: Date.now(), maxDurationSeconds: 600 });
  const again: DrillStart[] = [];
  await new DrillScheduler({ schedules: [t], drills: store.drills, publish: async (d) => void again.push(d), openWork: async () => [], logger: quietLogger, clock: () => slotAt + 1_000 }).tick();
  assert.deepEqual(again, []);
  assert.equal((await store.drills.slot(t.key))?.state, 'fired');
});

/** fb.drill.start as the planner's durable reads it. */
async function drillStarts(durable: string): Promise<{ seen: DrillStart[]; consumer: ConsumerHandle }> {
  const seen: DrillStart[] = [];
  const consumer = await bus.consume({ topic: topics.drillStart, durable, handler: async (d) => void seen.push(d) });
  return { seen, consumer };
}

test('drill scheduler - across a leader handover a due slot is started once, and the next slot by the new leader', async () => {
  const s = schedule();
  const site = `site-${randomUUID().slice(0, 8)}`;
  let now = slotAt + 1_000;
  const { seen, consumer } = await drillStarts(`test-drill-starts-${s.name}`);
  const terms: string[] = [];
  const planner = (owner: string): LeaderElection => {
    const store = connectStore();
    return new LeaderElection({
      leases: store.leaderLeases,
      site,
      owner,
      ttlMs: 600,
      logger: quietLogger,
      onElected: async () => {
        terms.push(owner);
        // As the planner runs it: only while elected, publishing fb.drill.start with the drill id as message id.
        const scheduler = new DrillScheduler({
          schedules: [s],
          drills: store.drills,
          publish: async (d) => void (await bus.publish(topics.drillStart, d, { msgId: `drill-start-${d.drillId}` })),
          openWork: async () => [],
          logger: quietLogger,
          clock: () => now,
          tickMs: 50,
        });
        scheduler.start();
        return () => scheduler.stop();
      },
    });
  };
  const a = planner('planner-a');
  const b = planner('planner-b');
  a.start();
  await waitFor('planner-a to lead', () => terms.length === 1, 5_000);
  b.start();
  await waitFor('the slot to fire', () => seen.length === 1, 5_000);
  await a.stop(); // a handover: b takes the lease and ticks at the same moment
  await waitFor('planner-b to lead', () => terms.length === 2, 5_000);
  await sleep(300);
  assert.deepEqual(seen.map((d) => d.drillId), [`sched-${s.name}-20260307T030000Z`], 'the new leader does not start the same slot again');

  now = slotAt + minute + 1_000;
  await waitFor('the next slot', () => seen.length === 2, 5_000);
  assert.equal(seen[1]?.drillId, `sched-${s.name}-20260307T030100Z`);
  await b.stop();
  await consumer.stop();
  assert.deepEqual(terms, ['planner-a', 'planner-b']);
});

function finalProgress(drillId: string, over: Partial<IncidentProgress> = {}): IncidentProgress {
  return {
    incidentId: `drill-${drillId}`,
    site: 'site1',
    phase: 'degraded',
    trigger: 'drill',
    openedAt: Date.now() - 60_000,
    at: Date.now(),
    hosts: ['r2-h01'],
    servers: [
      { server: 'auth-07', host: 'r3-h07', mode: 'bare-metal', step: 'done', percent: 100 },
      { server: 'web-02', host: null, mode: null, step: 'unplaced', percent: 0, message: 'no host with 64 GiB free' },
    ],
    message: 'cleanup left work undone',
    report: [
      { server: 'auth-07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 4_200, rtoSeconds: 4.2, rtoTargetSeconds: 900 },
      { server: 'web-02', outcome: 'unrecovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: null, rtoSeconds: null, rtoTargetSeconds: 300 },
    ],
    cleanup: { complete: false, restored: [{ host: 'r3-h07', what: 'host powered off and returned' }], left: [{ host: 'r3-h07', server: 'auth-07', what: 'clone lun-7-drill: delete failed (array timeout)' }] },
    ...over,
  };
}

test('drill reports - a drill final progress becomes its report, naming who asked; one that ended under a dead leader is caught up', async () => {
  const store = connectStore();
  const drillId = `rack-r2-${randomUUID().slice(0, 8)}`;
  await store.drills.recordRequest({ drillId, site: 'site1', scope: { domain: { kind: 'rack', id: 'r2', site: 'site1' } }, requestedBy: 'schedule:r2-weekly', requestedAt: Date.now() - 61_000, maxDurationSeconds: 600 });
  const published: IncidentProgress[] = [];
  const writer = new DrillReportWriter({ drills: store.drills, site: 'site1', logger: quietLogger, finalProgress: (id) => storedFinalProgress(bus, id) });
  const effects = writer.wrap({ publishProgress: (p: IncidentProgress) => void published.push(p) } as never);
  effects.publishProgress(finalProgress(drillId, { phase: 'recovering', cleanup: undefined, report: undefined }));
  effects.publishProgress(finalProgress(drillId));
  assert.equal(published.length, 2, 'progress still goes out');
  await waitFor('the report', async () => (await store.drills.report(drillId)) !== undefined, 5_000);
  const report = await store.drills.report(drillId);
  assert.equal(report?.passed, false);
  assert.equal(report?.requestedBy, 'schedule:r2-weekly');
  assert.equal(report?.maxDurationSeconds, 600);
  assert.deepEqual(report?.servers.map((r) => [r.server, r.host, r.rtoSeconds, r.rtoTargetSeconds, r.reason]), [
    ['auth-07', 'r3-h07', 4.2, 900, undefined],
    ['web-02', null, null, 300, 'no host with 64 GiB free'],
  ]);
  assert.equal(report?.cleanup?.left[0]?.what, 'clone lun-7-drill: delete failed (array timeout)');
  assert.equal(await store.drills.request(drillId), undefined, 'the request is done with');
  await writer.stop();

  // A leader died after publishing the final progress but before writing the report: the next one finds it in FB_EVENTS.
  const orphan = `rack-r2-${randomUUID().slice(0, 8)}`;
  await store.drills.recordRequest({ drillId: orphan, site: 'site1', scope: { domain: { kind: 'rack', id: 'r2', site: 'site1' } }, requestedBy: 'firebreak-cli:ops@console', requestedAt: Date.now() - 61_000, maxDurationSeconds: 600 });
  const running = `rack-r1-${randomUUID().slice(0, 8)}`;
  await store.drills.recordRequest({ drillId: running, site: 'site1', scope: { domain: { kind: 'rack', id: 'r1', site: 'site1' } }, requestedBy: 'firebreak-cli:ops@console', requestedAt: Date.now(), maxDurationSeconds: 600 });
  const final = finalProgress(orphan, { phase: 'recovered', message: '2 of 2 servers recovered', cleanup: { complete: true, restored: [], left: [] } });
  await bus.publish(topics.incidentProgress(final.incidentId, 'recovering'), { ...final, phase: 'recovering', at: final.at + 5 });
  await bus.publish(topics.incidentProgress(final.incidentId, final.phase), final);
  const next = new DrillReportWriter({ drills: store.drills, site: 'site1', logger: quietLogger, finalProgress: (id) => storedFinalProgress(bus, id) });
  assert.deepEqual(await next.catchUp(new Set([`drill-${running}`])), [orphan], 'only the drill that ended; the open one is left to run');
  assert.equal((await store.drills.report(orphan))?.phase, 'recovered');
  assert.equal((await store.drills.report(orphan))?.requestedBy, 'firebreak-cli:ops@console');
  assert.ok(await store.drills.request(running), 'the running drill keeps its request');
  assert.deepEqual(await next.catchUp(new Set()), [], 'nothing twice; a drill with no final progress yet is left alone');
});
