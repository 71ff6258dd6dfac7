import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import {
  connectBus,
  createLogger,
  createStore,
  ensureStreams,
  ReadinessReport,
  RequestError,
  type ReadinessCheck,
  topics,
  type Bus,
  type CoreSubscription,
  type Store,
} from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { plannerConfigSchema, start } from '../src/index.ts';
import { referenceFleet } from '../src/readiness/testing/reference-fleet.ts';

let nats: TestServer;
let redis: TestServer;
let plannerBus: Bus;
let client: Bus;
let store: Store;
let dir: string;
let stopPlanner: (() => Promise<void>) | undefined;
let reportsSub: CoreSubscription;
const reports: ReadinessReport[] = [];
const logLines: { msg: string; notReady?: number; trigger?: string }[] = [];

const INTERVAL_MS = 400;
const check = topics.readinessCheck;
const ask = (message: ReadinessCheck, timeoutMs = 15_000) => client.request(check, message, ReadinessReport, { timeoutMs, responder: 'planner' });

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  dir = mkdtempSync(join(tmpdir(), 'fb-readiness-'));
  const inventoryFile = join(dir, 'inventory.json');
  writeFileSync(inventoryFile, JSON.stringify(referenceFleet()));

  plannerBus = await connectBus({ url: nats.url, name: 'planner-readiness-test' });
  await ensureStreams(plannerBus.jsm);
  client = await connectBus({ url: nats.url, name: 'readiness-client' });
  store = createStore(redis.url);
  reportsSub = await client.subscribeCore(topics.readiness('dc1'), (r) => {
    reports.push(r);
  });

  const config = plannerConfigSchema.parse({
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    FB_INVENTORY: inventoryFile,
    FB_SITE: 'dc1',
    SERVICE_INSTANCE_ID: 'planner-readiness-test',
    FB_PLANNER_LEASE_MS: '1500',
    FB_READINESS_INTERVAL_MS: String(INTERVAL_MS),
  });
  const logs = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as (typeof logLines)[number]);
      done();
    },
  });
  const logger = createLogger('planner', { level: 'info', destination: logs });
  stopPlanner = await start({ name: 'planner', config, logger, bus: plannerBus, store });
});

after(async () => {
  await stopPlanner?.();
  await reportsSub?.stop();
  await client?.close();
  await plannerBus?.close();
  await store?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('planner readiness - the leader publishes the site report periodically and logs each with the domains not ready', async () => {
  await waitFor('two periodic reports', () => reports.length >= 2, 30_000);
  const [first, second] = reports as [ReadinessReport, ReadinessReport];
  assert.equal(first.site, 'dc1');
  assert.ok(second.at > first.at);
  assert.deepEqual(first.domains.map((d) => `${d.domain.kind} ${d.domain.id} ${d.ready ? 'ready' : 'NOT ready'}`), ['rack r1 ready', 'rack r2 ready', 'rack r9 NOT ready']);
  const r9 = first.domains[2];
  assert.deepEqual(r9?.unplaced.map((u) => u.server).sort(), ['chat-01', 'intranet-01', 'reports-01', 'reports-02']);

  await waitFor('a log line per report', () => logLines.filter((l) => l.trigger === 'interval').length >= 2, 10_000);
  const line = logLines.find((l) => l.trigger === 'interval');
  assert.equal(line?.notReady, 1);
  assert.equal(line?.msg, 'readiness: 1 failure domain(s) not recoverable');
});

test('planner readiness - a check gets the report for the site, or for the domains asked', async () => {
  const all = await ask({ site: 'dc1' });
  assert.equal(all.domains.length, 3);
  assert.ok(all.at > 0);

  const r9 = await ask({ site: 'dc1', domains: [{ kind: 'rack', id: 'r9', site: 'dc1' }] });
  assert.equal(r9.domains.length, 1);
  assert.deepEqual([r9.domains[0]?.servers, r9.domains[0]?.ready, r9.domains[0]?.unplaced.length], [18, false, 4]);
  assert.match(r9.domains[0]?.unplaced[0]?.reason ?? '', /^no-capacity: /);

  // The whole site, only when asked for: nothing is left to recover it on.
  const site = await ask({ site: 'dc1', domains: [{ kind: 'site', id: 'dc1', site: 'dc1' }] });
  assert.deepEqual([site.domains[0]?.servers, site.domains[0]?.ready], [20, false]);
});

test('planner readiness - a check for a domain the site lacks gets an error reply naming it', async () => {
  await assert.rejects(ask({ site: 'dc1', domains: [{ kind: 'pdu', id: 'pdu-9', site: 'dc1' }] }), (err: unknown) => {
    assert.ok(err instanceof RequestError);
    assert.equal(err.message, 'site dc1 has no pdu pdu-9 (no host of the inventory is in it)');
    assert.equal(err.retryable, false);
    return true;
  });
  // A malformed check (raw NATS, no schema on the sending side) is refused with the field, and the planner goes on.
  const raw = await client.nc.request(check.subject, new TextEncoder().encode(JSON.stringify({ site: 'dc1', domains: [{ kind: 'room', id: 'x', site: 'dc1' }] })), { timeout: 15_000 });
  assert.match((raw.json() as { error: string }).error, /invalid request on fb\.readiness-check: schema validation failed: domains\[0\]\.kind/);
  assert.equal((await ask({ site: 'dc1' })).site, 'dc1');
});

test('planner readiness - a check for a site this planner does not serve is left to that site’s planner (here: none answers)', async () => {
  await assert.rejects(ask({ site: 'dc2' }, 1_000), /^RequestError: no planner answered on fb\.readiness-check within 1000 ms$/);
});

test('planner readiness - a planner that stands down stops publishing and answering', async () => {
  await stopPlanner?.();
  stopPlanner = undefined;
  const count = reports.length;
  await assert.rejects(ask({ site: 'dc1' }, 2_000), /no planner answered on fb\.readiness-check/);
  await new Promise((r) => setTimeout(r, INTERVAL_MS * 3));
  assert.equal(reports.length, count);
});
