import { after, before, test, type TestContext } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, createStore, freePort, loadServiceInventory, noInventoryMessage, redisKeys, type Store } from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { formatInventory, generateTopology } from '@firebreak/lab';
import { isolatedEnv, runCli } from './cli-process.ts';

const detectorMain = fileURLToPath(import.meta.resolve('@firebreak/detector/main'));

let nats: TestServer;
let redis: TestServer;
let store: Store;
let dir: string;
let env: NodeJS.ProcessEnv;
let good: string;
let bad: string;
let badLines: [number, number];

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  store = createStore(redis.url);
  dir = await mkdtemp(join(tmpdir(), 'fb-inventory-'));
  env = isolatedEnv(dir);
  const text = formatInventory(generateTopology({ size: 'tiny', seed: 1 }), 'yaml');
  good = join(dir, 'good.yaml');
  await writeFile(good, text);
  // Two mistakes an operator makes: a mistyped MAC, and a negative CPU count.
  const lines = text.split('\n');
  const mac = lines.findIndex((l) => l.includes('mac: 52:54:00:00:00:01'));
  const cpus = lines.findIndex((l, i) => i > mac && /^\s+cpus: \d+$/.test(l));
  lines[mac] = lines[mac]!.replace('52:54:00:00:00:01', '52:54:00:00:01');
  lines[cpus] = lines[cpus]!.replace(/cpus: \d+/, 'cpus: -4');
  badLines = [mac + 1, cpus + 1];
  bad = join(dir, 'bad.yaml');
  await writeFile(bad, lines.join('\n'));
});

after(async () => {
  await store?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

test('cli inventory - validate accepts a good file and lists every problem of a bad one with line and field', async () => {
  const ok = await runCli(['inventory', 'validate', good], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /valid inventory, 24 hosts in 3 racks at 1 site\(s\), 16 servers, 16 assignments/);

  const no = await runCli(['inventory', 'validate', bad], env);
  assert.equal(no.code, 2);
  assert.match(no.stderr, new RegExp(`${bad} is not a valid inventory \\(2 problems\\)`));
  assert.match(no.stderr, new RegExp(`${bad}:${badLines[0]}: hosts\\[\\d+\\]\\.nics\\[\\d+\\]\\.mac: not a MAC address`));
  assert.match(no.stderr, new RegExp(`${bad}:${badLines[1]}: hosts\\[\\d+\\]\\.cpus: `));
  assert.match(no.stderr, new RegExp(`fix them and run "firebreak inventory validate ${bad}" again`));

  const json = await runCli(['inventory', 'validate', bad, '--json'], env);
  assert.equal(json.code, 2);
  const doc = JSON.parse(json.stdout) as { valid: boolean; problems: { path: string; line?: number }[] };
  assert.equal(doc.valid, false);
  assert.deepEqual(doc.problems.map((p) => p.line), badLines);
});

test('cli inventory - a missing or unreadable file, or missing arguments, exit 2 saying which', async () => {
  const missing = join(dir, 'nope.yaml');
  const run = await runCli(['inventory', 'validate', missing], env);
  assert.equal(run.code, 2);
  assert.match(run.stderr, new RegExp(`${missing}: \\(file\\): cannot be read: ENOENT`));
  const txt = join(dir, 'inventory.txt');
  await writeFile(txt, 'hosts: []');
  const wrongKind = await runCli(['inventory', 'validate', txt], env);
  assert.equal(wrongKind.code, 2);
  assert.match(wrongKind.stderr, /unsupported extension "\.txt" \(expected \.yaml, \.yml or \.json\)/);
  const noFile = await runCli(['inventory', 'import'], env);
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /usage: firebreak inventory import <file>/);
  const importBad = await runCli(['inventory', 'import', bad, '--redis-url', redis.url], env);
  assert.equal(importBad.code, 2);
  assert.match(importBad.stderr, /not a valid inventory/);
  assert.equal(await store.redis.exists(redisKeys.inventory), 0, 'nothing imported');
});

test('cli inventory - import stores a new version that services without FB_INVENTORY load', async () => {
  const deadRedis = await runCli(['inventory', 'import', good, '--redis-url', `redis://127.0.0.1:${await freePort()}`], env);
  assert.equal(deadRedis.code, 2);
  assert.match(deadRedis.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .*pass --redis-url/);

  await assert.rejects(loadServiceInventory({ store }), (err: unknown) => err instanceof ConfigError && err.message === noInventoryMessage);

  const first = await runCli(['inventory', 'import', good, '--redis-url', redis.url], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`imported ${good} as inventory version 1: 24 hosts`));
  assert.match(first.stdout, /fleet ledger: 16 servers and 24 hosts added; it agrees with the inventory/);
  // Meanwhile a recovery moved web-01 off r1-h01: a re-import keeps that and says so.
  await store.ledger.apply({ site: 'site1', token: 1, why: { kind: 'incident', id: 'inc-r1-h01-1' }, at: 5_000, servers: [{ id: 'web-01', version: 1, placement: { state: 'bare-metal', host: 'r1-h04' } }] });
  const second = await runCli(['inventory', 'import', good, '--redis-url', redis.url, '--json'], env);
  assert.equal(second.code, 0, second.stderr);
  const reimport = JSON.parse(second.stdout) as { version: number; ledger: { seeded: { servers: number; hosts: number }; differences: string[] } };
  assert.equal(reimport.version, 2);
  assert.deepEqual(reimport.ledger.seeded, { servers: 0, hosts: 0 });
  assert.equal(reimport.ledger.differences.length, 1);
  assert.match(reimport.ledger.differences[0] ?? '', /^server web-01: the inventory says .*r1-h01.*the ledger .*r1-h04.*incident inc-r1-h01-1\); the ledger is kept$/);
  assert.deepEqual((await store.ledger.server('web-01'))?.placement, { state: 'bare-metal', host: 'r1-h04' });

  const loaded = await loadServiceInventory({ store });
  assert.equal(loaded.source, 'redis (version 2)');
  assert.equal(loaded.inventory.hosts.length, 24);
  assert.ok(loaded.inventory.hosts.some((h) => h.id === 'r2-h05' && h.rack === 'r2'));
  // FB_INVENTORY still wins.
  assert.equal((await loadServiceInventory({ file: good, store })).source, good);
});

test('cli inventory - a detector without FB_INVENTORY starts on the imported inventory, and exits 2 saying how when there is none', async (t) => {
  const service = (redisUrl: string): NodeJS.ProcessEnv => ({
    ...isolatedEnv(dir),
    NATS_URL: nats.url,
    REDIS_URL: redisUrl,
    FB_TRAP_PORT: '0',
    FB_BMC_POLL_INTERVAL_MS: '0',
    // The lab inventory's credential references; a detector resolves them at start.
    FB_LAB_SNMP_CREDENTIALS: '{"community":"public"}',
    FB_LAB_BMC_CREDENTIALS: 'admin:admin',
    FB_LAB_SAN_CREDENTIALS: 'admin:admin',
  });
  const empty = await startRedis();
  try {
    const none = startDetector(t, service(empty.url));
    assert.equal(await none.exited, 2, none.output());
    assert.match(none.output(), /no inventory: set FB_INVENTORY to a file or run `firebreak inventory import <file>`/);
  } finally {
    await empty.stop();
  }

  // The Redis the previous test imported into.
  const detector = startDetector(t, service(redis.url));
  await waitFor('the detector to start', () => /"msg":"ready"/.test(detector.output()) || detector.done(), 60_000);
  assert.match(detector.output(), /"inventory":"redis \(version \d+\)","hosts":24/);
  detector.child.kill('SIGTERM');
  assert.equal(await detector.exited, 0, detector.output());
});

function startDetector(t: TestContext, childEnv: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', detectorMain], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, exited, output: () => out, done: () => child.exitCode !== null };
}
