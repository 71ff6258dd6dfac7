import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, ensureStreams, topics, type Bus, type ConsumerHandle, type DrillStart, type DrillStop, type IncidentProgress } from '@firebreak/shared';
import { startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import { formatInventory, generateTopology } from '@firebreak/lab';
import { isolatedEnv, runCli } from './cli-process.ts';

let nats: TestServer;
let bus: Bus;
let env: NodeJS.ProcessEnv;
let inventoryFile: string;
const starts: DrillStart[] = [];
const stops: DrillStop[] = [];
const consumers: ConsumerHandle[] = [];

before(async () => {
  nats = await startNats();
  bus = await connectBus({ url: nats.url, name: 'drill-test' });
  await ensureStreams(bus.jsm);
  const dir = await mkdtemp(join(tmpdir(), 'fb-drill-'));
  env = isolatedEnv(dir);
  inventoryFile = join(dir, 'inventory.yaml');
  await writeFile(inventoryFile, formatInventory(generateTopology({ size: 'tiny', seed: 1 }), 'yaml'));
  // Read the way the planner reads them: durable consumers of the same topics, validated by the same schemas.
  consumers.push(
    await bus.consume({ topic: topics.drillStart, durable: 'test-planner-drill-start', handler: async (m) => void starts.push(m) }),
    await bus.consume({ topic: topics.drillStop, durable: 'test-planner-drill-stop', handler: async (m) => void stops.push(m) }),
  );
});

after(async () => {
  for (const c of consumers) await c.stop();
  await bus?.close();
  await nats?.stop();
});

test('cli drill - start publishes the DrillStart the planner consumes, stop the DrillStop', async () => {
  const start = await runCli(['drill', 'start', 'rack', 'r2', '--site', 'site1', '--duration', '10m', '--json', '--nats-url', nats.url], env);
  assert.equal(start.code, 0, start.stderr);
  const printed = JSON.parse(start.stdout) as { drillId: string; incidentId: string };
  assert.match(printed.drillId, /^rack-r2-/);
  assert.equal(printed.incidentId, `drill-${printed.drillId}`);
  await waitFor('the DrillStart', () => starts.some((s) => s.drillId === printed.drillId), 10_000);
  const seen = starts.find((s) => s.drillId === printed.drillId);
  assert.deepEqual(seen?.scope, { domain: { kind: 'rack', id: 'r2', site: 'site1' } });
  assert.equal(seen?.maxDurationSeconds, 600);
  assert.match(seen?.requestedBy ?? '', /^firebreak-cli:/);

  const text = await runCli(['drill', 'start', 'host', 'r1-h01', 'r1-h02', '--duration', '1h30m', '--nats-url', nats.url], env);
  assert.equal(text.code, 0, text.stderr);
  const id = /drill (\S+) started: host\(s\) r1-h01, r1-h02 at site1, for at most 90 min/.exec(text.stdout)?.[1];
  assert.ok(id, text.stdout);
  assert.match(text.stdout, new RegExp(`firebreak drill stop ${id}`));
  await waitFor('the host drill', () => starts.some((s) => s.drillId === id), 10_000);
  assert.deepEqual(starts.find((s) => s.drillId === id)?.scope, { site: 'site1', hosts: ['r1-h01', 'r1-h02'] });

  const stop = await runCli(['drill', 'stop', printed.drillId, '--reason', 'done rehearsing', '--nats-url', nats.url], env);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, new RegExp(`stop requested for drill ${printed.drillId}`));
  await waitFor('the DrillStop', () => stops.some((s) => s.drillId === printed.drillId), 10_000);
  assert.equal(stops.find((s) => s.drillId === printed.drillId)?.reason, 'done rehearsing');
});

test('cli drill - bad arguments exit 2 naming the input and the fix, and publish nothing', async () => {
  const before = starts.length;
  const cases: [string[], RegExp][] = [
    [['drill', 'start', 'rack', 'r2', '--duration', 'soon'], /--duration must be like 90s, 10m, 1h or 1h30m, got "soon"/],
    [['drill', 'start', 'rack', 'r2', '--duration', '0s'], /--duration must be like/],
    [['drill', 'start', 'shelf', 's1'], /unknown domain kind "shelf": use rack, pdu, tor, site, host/],
    [['drill', 'start', 'rack'], /usage: firebreak drill start rack\|pdu\|tor\|site <id>/],
    [['drill', 'start', 'rack', 'r1', 'r2'], /one rack at a time/],
    [['drill', 'stop'], /usage: firebreak drill stop <drillId>/],
    [['drill', 'stop', 'a.b'], /"a\.b" is not a drill id/],
    [['drill', 'pause'], /usage: firebreak drill start .* \(got "pause"\)/],
  ];
  for (const [args, expected] of cases) {
    const run = await runCli([...args, '--nats-url', nats.url], env);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, expected, args.join(' '));
  }
  // With the inventory at hand a typo is caught before anything is sent.
  const withInventory = { ...env, FB_INVENTORY: inventoryFile };
  const unknownRack = await runCli(['drill', 'start', 'rack', 'r9', '--nats-url', nats.url], withInventory);
  assert.equal(unknownRack.code, 2);
  assert.match(unknownRack.stderr, new RegExp(`no rack "r9" with hosts at site "site1"; see the inventory ${inventoryFile}`));
  const unknownHost = await runCli(['drill', 'start', 'host', 'r1-h01', 'r7-h01', '--nats-url', nats.url], withInventory);
  assert.equal(unknownHost.code, 2);
  assert.match(unknownHost.stderr, /no host "r7-h01" at site "site1"/);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(starts.length, before, 'nothing was published');
});

test('cli drill - start --wait follows the drill incident to its end and prints its report', async () => {
  // A stand-in for the planner: answers each new DrillStart with the drill incident's progress.
  const seen = new Set(starts.map((s) => s.drillId));
  const responder = (async () => {
    await waitFor('a new DrillStart', () => starts.some((s) => !seen.has(s.drillId)), 30_000);
    const drill = starts.find((s) => !seen.has(s.drillId)) as DrillStart;
    const base: IncidentProgress = {
      incidentId: `drill-${drill.drillId}`,
      site: 'site1',
      phase: 'recovering',
      trigger: 'drill',
      openedAt: drill.requestedAt,
      at: Date.now(),
      hosts: ['r2-h01'],
      servers: [{ server: 'auth-07', host: 'r3-h07', mode: 'bare-metal', step: 'boot', percent: 50 }],
    };
    await bus.publish(topics.incidentProgress(base.incidentId, 'recovering'), base);
    await bus.publish(topics.incidentProgress(base.incidentId, 'recovered'), {
      ...base,
      phase: 'recovered',
      at: Date.now() + 1,
      servers: [{ ...base.servers[0]!, step: 'done', percent: 100 }],
      report: [{ server: 'auth-07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 4_200, rtoSeconds: 4.2, rtoTargetSeconds: 900 }],
    });
  })();
  const run = await runCli(['drill', 'start', 'rack', 'r2', '--wait', '--nats-url', nats.url], { ...env, FB_INVENTORY: inventoryFile });
  await responder;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /incident drill-rack-r2-\S+ recovering 0\/1 servers up\s+auth-07:boot\(50%\)/);
  assert.match(run.stdout, /incident drill-rack-r2-\S+ recovered: 1 of 1 servers recovered/);
  assert.match(run.stdout, /auth-07\s+recovered\s+0\s+-\s+12\s+4200\s+4\.2 \/ 900/);
});
