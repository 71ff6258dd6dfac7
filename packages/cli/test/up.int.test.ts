import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/firebreak.js', import.meta.url));
const detectorMain = fileURLToPath(import.meta.resolve('@firebreak/detector/main'));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('cli - an unknown command exits 2 naming it, with the usage', () => {
  const run = spawnSync(process.execPath, [bin, 'explode'], { encoding: 'utf8' });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /unknown command "explode"/);
  assert.match(run.stderr, /firebreak help/);
});

test('cli - an unknown flag exits 2 naming it', () => {
  const run = spawnSync(process.execPath, [bin, 'up', '--nats', 'x'], { encoding: 'utf8' });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--nats/);
});

test('cli - a service without NATS_URL refuses to start with exit 2 naming the variable', () => {
  const env = { ...process.env, NATS_URL: '', REDIS_URL: 'redis://user:hunter2@127.0.0.1:1' };
  const run = spawnSync(process.execPath, ['--import', 'tsx', detectorMain], { encoding: 'utf8', env });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /NATS_URL: required/);
  assert.doesNotMatch(run.stderr, /hunter2/);
});

test('cli - up starts nats, redis and the three services, and Ctrl-C stops them all', async (t) => {
  const env = { ...process.env, NATS_URL: '', REDIS_URL: '' };
  const child = spawn(process.execPath, [bin, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // A failed assertion must not leave the whole system running under the test runner.
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGINT');
  });

  const deadline = Date.now() + 30_000;
  while (!['detector', 'planner', 'executor'].every((s) => new RegExp(`${s}\\s+info\\s+ready`).test(out))) {
    assert.ok(Date.now() < deadline, `services did not all report ready:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const servers = [...out.matchAll(/started (nats|redis)-server.* at \w+:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[2]));
  assert.equal(servers.length, 2, out);
  assert.ok(!servers.includes(4222) && !servers.includes(6379), 'must not take the machine-wide ports');
  const pids = spawnSync('pgrep', ['-f', '--', `-p ${servers[0]} |127\\.0\\.0\\.1:${servers[1]}$`], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  assert.ok(pids.length >= 2, 'nats-server and redis-server are running');

  child.kill('SIGINT');
  assert.equal(await exited, 0, out);
  for (const s of ['detector', 'planner', 'executor']) assert.match(out, new RegExp(`${s}\\s+info\\s+stopped`));
  assert.doesNotMatch(out, /ECONNREFUSED/, 'servers must outlive the services that drain into them');
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} left running`);
});
