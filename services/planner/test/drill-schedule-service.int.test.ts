import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { connectBus, createStore, ensureStreams, topics, type Bus, type ConsumerHandle, type DrillStart, type Store } from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { formatInventory, generateTopology } from '@firebreak/lab';

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
let store: Store;
let dir: string;
let inventoryFile: string;

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'drill-schedule-service-test' });
  await ensureStreams(bus.jsm);
  store = createStore(redis.url, { onError: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'fb-planner-drills-'));
  inventoryFile = join(dir, 'inventory.yaml');
  await writeFile(inventoryFile, formatInventory(generateTopology({ size: 'tiny', seed: 1 }), 'yaml'));
});

after(async () => {
  await store?.close();
  await bus?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

interface Planner {
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

function startPlanner(schedule: string): Planner {
  const env = { ...process.env, NATS_URL: nats.url, REDIS_URL: redis.url, NATS_USER: '', NATS_PASSWORD: '', FB_SITE: 'site1', FB_INVENTORY: inventoryFile, FB_DRILL_SCHEDULE: schedule, SERVICE_INSTANCE_ID: 'planner-drills-test', FB_PLANNER_LEASE_MS: '600' };
  const child = spawn(process.execPath, ['--import', tsx, main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    output: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

test('planner - a bad drill schedule file stops it at start with exit 2, naming the file, the field and the line', async () => {
  const file = join(dir, 'bad-drills.yaml');
  await writeFile(file, 'schedules:\n  - domain: rack r9\n    cron: "0 3 * * 6"\n    maxDuration: 30m\n');
  const planner = startPlanner(file);
  const code = await Promise.race([planner.exited, new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 30_000))]);
  if (code === 'late') await planner.stop();
  assert.equal(code, 2, planner.output());
  assert.match(planner.output(), new RegExp(`cannot load drill schedule ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(FB_DRILL_SCHEDULE\\):\\n  schedules\\[0\\]\\.domain: no rack "r9" with hosts at site "site1" in the inventory.* \\(line 2\\)`));
});

test('planner - the elected planner starts a due scheduled drill, accepts it and keeps its request until its report', async (t) => {
  const file = join(dir, 'drills.json');
  // Every second: due as soon as the planner is elected.
  await writeFile(file, JSON.stringify({ schedules: [{ name: 'r2-often', domain: 'rack r2', cron: '* * * * * *', maxDuration: '10m' }] }));
  const seen: DrillStart[] = [];
  const consumer: ConsumerHandle = await bus.consume({ topic: topics.drillStart, durable: 'test-scheduled-drill-starts', handler: async (d) => void seen.push(d) });
  const planner = startPlanner(file);
  t.after(async () => {
    await planner.stop();
    await consumer.stop();
  });
  try {
    await waitFor('a scheduled DrillStart', () => seen.length > 0, 30_000);
    const start = seen[0] as DrillStart;
    assert.match(start.drillId, /^sched-r2-often-\d{8}T\d{6}Z$/);
    assert.equal(start.requestedBy, 'schedule:r2-often');
    assert.deepEqual(start.scope, { domain: { kind: 'rack', id: 'r2', site: 'site1' } });
    assert.equal(start.maxDurationSeconds, 600);
    await waitFor('the planner to accept the drill', async () => (await store.drills.request(start.drillId)) !== undefined, 15_000);
    await waitFor('the drill incident to open', async () => (await store.snapshots.listOpen()).includes(`drill-${start.drillId}`), 15_000);
    // Its drill of rack r2 is open now: the following slots are skipped, not started.
    await waitFor('a skipped slot', () => /scheduled drill skipped/.test(planner.output()), 15_000);
    assert.match(planner.output(), new RegExp(`drill ${start.drillId} is open on hosts of rack r2`));
    assert.equal(new Set(seen.map((d) => d.drillId)).size, 1, 'one scheduled drill');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- planner output ---\n${planner.output().slice(-4000)}`, { cause: err });
  }
});
