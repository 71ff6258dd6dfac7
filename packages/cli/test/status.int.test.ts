import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, createStore, ensureStreams, freePort, topics, type Bus, type IncidentProgress, type Store } from '@firebreak/shared';
import { startNats, startRedis, type TestServer } from '@firebreak/shared/testing';
import { isolatedEnv, runCli } from './cli-process.ts';
import type { StatusDocument } from '../src/status.ts';

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
let store: Store;
let env: NodeJS.ProcessEnv;

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'status-test' });
  await ensureStreams(bus.jsm);
  store = createStore(redis.url);
  env = isolatedEnv(await mkdtemp(join(tmpdir(), 'fb-state-')));
});

after(async () => {
  await bus?.close();
  await store?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

const urls = (): string[] => ['--nats-url', nats.url, '--redis-url', redis.url];

/** What the planner does for an open incident: snapshot in Redis (the open set), progress on the bus. */
async function openIncident(id: string): Promise<void> {
  await store.snapshots.save(id, { machineId: 'incident', machineVersion: 'test', snapshot: {} });
}

function progress(incidentId: string, phase: IncidentProgress['phase'], at: number, servers: IncidentProgress['servers'] = []): IncidentProgress {
  return { incidentId, site: 'site1', phase, trigger: 'event', openedAt: 1_700_000_000_000, at, hosts: ['r2-h01', 'r2-h03'], servers, message: `${servers.filter((s) => s.step === 'done').length} of ${servers.length} servers recovered` };
}

async function publishProgress(p: IncidentProgress): Promise<void> {
  await bus.publish(topics.incidentProgress(p.incidentId, p.phase), p);
}

test('cli status - on an empty system says so, as text and as JSON', async () => {
  const text = await runCli(['status', ...urls()], env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /no open incidents/);
  assert.match(text.stdout, /hosts: none failed or suspect/);

  const json = await runCli(['status', '--json', ...urls()], env);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as StatusDocument;
  assert.deepEqual({ ...doc, at: 0 }, { version: 1, at: 0, site: null, incidents: [], hosts: [], servers: [] });
});

test('cli status - shows each open incident at its newest phase with a bar per server, and the hosts not ready', async () => {
  const t0 = Date.now();
  await openIncident('inc-rack-r2-7');
  await publishProgress(progress('inc-rack-r2-7', 'fencing', t0));
  await publishProgress(
    progress('inc-rack-r2-7', 'recovering', t0 + 2_000, [
      { server: 'auth-07', host: 'r3-h07', mode: 'bare-metal', step: 'boot', percent: 50 },
      { server: 'auth-09', host: 'r1-h04', mode: 'bare-metal', step: 'done', percent: 100 },
      { server: 'search-08', host: null, mode: null, step: 'unplaced', percent: 0, message: 'no host with 64 GiB free' },
    ]),
  );
  // Published later but about an earlier moment (a slow publisher): `at` decides, not arrival.
  await publishProgress(progress('inc-rack-r2-7', 'planning', t0 + 1_000));
  // Closed: not in Redis's open set, so not shown however its progress reads.
  await publishProgress(progress('inc-host-r1-h02-1', 'recovering', t0));
  // The detector's verdicts: a rack and a host failed, another host failed and came back.
  await bus.publish(topics.domainFailed, {
    domain: { kind: 'rack', id: 'r2', site: 'site1' },
    hosts: ['r2-h01', 'r2-h03'],
    causes: ['heartbeat-lost', 'bmc-unreachable'],
    firstFailureAt: t0 - 1_000,
    detectedAt: t0,
    epoch: 1,
    detector: 'test',
  });
  const verdict = { site: 'site1', rack: 'r1', epoch: 1, detector: 'test', evidence: {} };
  await bus.publish(topics.hostFailed, { ...verdict, host: 'r1-h05', detectedAt: t0, cause: 'bmc-power-off' });
  await bus.publish(topics.hostSuspect, { ...verdict, host: 'r1-h06', detectedAt: t0 });
  await bus.publish(topics.hostRecovered, { ...verdict, host: 'r1-h06', detectedAt: t0 + 5_000, server: 'web-01' });

  const text = await runCli(['status', ...urls()], env);
  assert.equal(text.code, 0, text.stderr);
  const out = text.stdout;
  assert.match(out, /1 open incident/);
  assert.match(out, /inc-rack-r2-7\s+RECOVERING/);
  assert.match(out, /auth-07\s+r3-h07\s+bare-metal\s+\[#{10}\.{10}\]\s+50% boot/);
  assert.match(out, /auth-09\s+r1-h04\s+bare-metal\s+\[#{20}\]\s+100% done/);
  assert.match(out, /search-08\s+-\s+\[\.{20}\]\s+0% unplaced\s+no host with 64 GiB free/);
  assert.doesNotMatch(out, /inc-host-r1-h02-1/, 'a closed incident is not listed');
  assert.match(out, /hosts not ready: 3/);
  assert.match(out, /r1-h05\s+rack r1\s+failed .*bmc-power-off/);
  assert.match(out, /r2-h01\s+rack r2\s+failed .*rack r2: heartbeat-lost, bmc-unreachable/);
  assert.doesNotMatch(out, /r1-h06/, 'a host that recovered is ready again');
  assert.match(out, /servers not ready: 2 \(auth-07 boot, search-08 unplaced\)/);
  assert.ok(!out.includes('\x1b['), 'no escape codes in a pipe');

  const json = await runCli(['status', '--json', ...urls()], env);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as StatusDocument;
  assert.equal(doc.incidents.length, 1);
  const [incident] = doc.incidents;
  assert.equal(incident?.incidentId, 'inc-rack-r2-7');
  assert.equal(incident?.phase, 'recovering');
  assert.equal(incident?.updatedAt, t0 + 2_000);
  assert.deepEqual(incident?.servers.map((s) => [s.server, s.step, s.percent]), [['auth-07', 'boot', 50], ['auth-09', 'done', 100], ['search-08', 'unplaced', 0]]);
  assert.deepEqual(doc.hosts.map((h) => [h.host, h.state]), [['r1-h05', 'failed'], ['r2-h01', 'failed'], ['r2-h03', 'failed']]);
  assert.deepEqual(doc.servers.map((s) => s.server), ['auth-07', 'search-08']);

  const elsewhere = JSON.parse((await runCli(['status', '--json', '--site', 'site2', ...urls()], env)).stdout) as StatusDocument;
  assert.equal(elsewhere.site, 'site2');
  assert.deepEqual([elsewhere.incidents, elsewhere.hosts], [[], []], '--site keeps other sites out');
});

test('cli status - an incident opened before any progress shows as waiting for it', async () => {
  await openIncident('inc-host-r3-h01-2');
  const doc = JSON.parse((await runCli(['status', '--json', ...urls()], env)).stdout) as StatusDocument;
  const waiting = doc.incidents.find((i) => i.incidentId === 'inc-host-r3-h01-2');
  assert.equal(waiting?.phase, null);
  const text = await runCli(['status', ...urls()], env);
  assert.match(text.stdout, /inc-host-r3-h01-2\s+\(no progress published yet\)/);
});

test('cli status - unreachable NATS or Redis exits 2 naming the URL (without its password) and the fix', async () => {
  const deadPort = await freePort();
  const noNats = await runCli(['status', '--nats-url', `nats://ops:hunter2@127.0.0.1:${deadPort}`, '--redis-url', redis.url], env);
  assert.equal(noNats.code, 2);
  assert.match(noNats.stderr, new RegExp(`firebreak: cannot reach NATS at nats://\\[REDACTED\\]@127\\.0\\.0\\.1:${deadPort}: .+; start it with \`firebreak up\` or pass --nats-url`));
  assert.doesNotMatch(noNats.stderr + noNats.stdout, /hunter2/);

  const noRedis = await runCli(['status', '--nats-url', nats.url, '--redis-url', `redis://:hunter2@127.0.0.1:${deadPort}`], env);
  assert.equal(noRedis.code, 2);
  assert.match(noRedis.stderr, /firebreak: cannot reach Redis at redis:\/\/\[REDACTED\]@127\.0\.0\.1:\d+: .+; start it with `firebreak up` or pass --redis-url/);
  assert.doesNotMatch(noRedis.stderr + noRedis.stdout, /hunter2/);

  const badFlag = await runCli(['status', '--sight', 'x'], env);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--sight/);
});
