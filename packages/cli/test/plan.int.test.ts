import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connectBus, createLogger, createStore, ensureStreams, type Bus, type ReadinessReport, type Store } from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { formatInventory, generateTopology } from '@firebreak/lab';
import { plannerConfigSchema, start } from '@firebreak/planner';
import { isolatedEnv, runCli } from './cli-process.ts';

let nats: TestServer;
let redis: TestServer;
let plannerBus: Bus | undefined;
let store: Store | undefined;
let stopPlanner: (() => Promise<void>) | undefined;
let env: NodeJS.ProcessEnv;
let inventoryFile: string;
const plannerLog: string[] = [];

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  // Set up as a deployment is, before any planner runs: the CLI refuses a server without Firebreak's streams.
  const setup = await connectBus({ url: nats.url, name: 'streams-for-cli-test' });
  await ensureStreams(setup.jsm);
  await setup.close();
  const dir = await mkdtemp(join(tmpdir(), 'fb-plan-'));
  env = isolatedEnv(dir);
  inventoryFile = join(dir, 'inventory.yaml');
  await writeFile(inventoryFile, formatInventory(generateTopology({ size: 'tiny', seed: 1 }), 'yaml'));
});

after(async () => {
  await stopPlanner?.();
  await plannerBus?.close();
  await store?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

/** The real planner service, in this process, on the tiny lab's inventory. */
async function startPlanner(): Promise<void> {
  plannerBus = await connectBus({ url: nats.url, name: 'planner-for-cli-test' });
  await ensureStreams(plannerBus.jsm);
  store = createStore(redis.url);
  const config = plannerConfigSchema.parse({
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    FB_INVENTORY: inventoryFile,
    SERVICE_INSTANCE_ID: 'planner-cli-test',
    FB_PLANNER_LEASE_MS: '2000',
  });
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      plannerLog.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger('planner', { level: 'info', destination });
  stopPlanner = await start({ name: 'planner', config, logger, bus: plannerBus, store });
  await waitFor('the planner to lead the site', () => plannerLog.some((l) => l.includes('planning for the site')), 30_000);
}

test('cli plan - with no planner running exits 2 saying nobody answered', async () => {
  const run = await runCli(['plan', '--what-if', 'rack', 'r2', '--timeout', '2s', '--nats-url', nats.url], env);
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(run.stderr, /what-if for site1 failed: no planner answered on fb\.readiness-check.*is a planner running for site "site1"\?/);
});

test('cli plan - bad arguments exit 2 naming them', async () => {
  const cases: [string[], RegExp][] = [
    [['plan', 'rack', 'r2'], /firebreak plan needs --what-if/],
    [['plan', '--what-if', 'host', 'r1-h01'], /takes a failure domain \(rack, pdu, tor or site\), not hosts/],
    [['plan', '--what-if', 'room', 'b'], /unknown domain kind "room"/],
    [['plan', '--what-if', '--timeout', 'forever'], /--timeout must be like 90s/],
  ];
  for (const [args, expected] of cases) {
    const run = await runCli([...args, '--nats-url', nats.url], env);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, expected);
  }
  const typo = await runCli(['plan', '--what-if', 'rack', 'r9', '--nats-url', nats.url], { ...env, FB_INVENTORY: inventoryFile });
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /no rack "r9" with hosts at site "site1"/);
});

test('cli plan - asks the real planner: a rack the spares can take is ready (exit 0), the whole site is not (exit 1)', async () => {
  await startPlanner();

  const rack = await runCli(['plan', '--what-if', 'rack', 'r2', '--json', '--nats-url', nats.url], env);
  const report = JSON.parse(rack.stdout) as ReadinessReport;
  assert.equal(report.site, 'site1');
  assert.deepEqual(report.domains.map((d) => d.domain), [{ kind: 'rack', id: 'r2', site: 'site1' }]);
  const [r2] = report.domains;
  assert.ok(r2);
  // The demo burns this rack and recovers all of it; the planner's what-if must agree.
  assert.equal(r2.ready, true, rack.stdout);
  assert.equal(rack.code, 0, rack.stderr);
  assert.equal(r2.bareMetal + r2.vms, r2.servers, 'every server of a ready domain is placed');

  const text = await runCli(['plan', '--what-if', 'rack', 'r2', '--nats-url', nats.url], env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /what-if at site1: 1 of 1 failure domain ready/);
  assert.match(text.stdout, new RegExp(`rack r2: READY  ${r2.servers} servers on ${r2.hosts} hosts: ${r2.bareMetal} bare metal, ${r2.vms} VMs?`));

  // Nothing outside a burned site can take its servers.
  const site = await runCli(['plan', '--what-if', 'site', 'site1', '--nats-url', nats.url], env);
  assert.equal(site.code, 1, site.stdout + site.stderr);
  assert.match(site.stdout, /site site1: NOT READY/);
  assert.match(site.stdout, /\d+ servers would stay down:\n\s+\S+ \(tier \d\): .+/);

  const every = await runCli(['plan', '--what-if', '--json', '--nats-url', nats.url], env);
  const all = JSON.parse(every.stdout) as ReadinessReport;
  assert.ok(all.domains.some((d) => d.domain.kind === 'rack' && d.domain.id === 'r1'), 'no domain means each of the site');
  assert.equal(every.code, all.domains.every((d) => d.ready) ? 0 : 1);
});

test('cli plan - a domain the planner does not know exits 2 with its reason', async () => {
  const run = await runCli(['plan', '--what-if', 'rack', 'r9', '--nats-url', nats.url], env);
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(run.stderr, /what-if for site1 failed: .*r9/);
  assert.doesNotMatch(run.stderr, /is a planner running/, 'a refusal is not a missing planner');
});
