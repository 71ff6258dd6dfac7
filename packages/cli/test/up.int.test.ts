import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bin, isolatedEnv, runCli, startCli } from './cli-process.ts';

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

test('cli - up starts nats, redis and the three services, answers status, and Ctrl-C stops them all', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  const env = isolatedEnv(stateDir);
  // SIGINT, not SIGKILL: the CLI must take down the servers and services it started.
  const up = startCli(t, ['up', '--logs'], env, 'SIGINT');
  await up.waitForOutput('every service to report ready', (out) => ['detector', 'planner', 'executor'].every((s) => new RegExp(`${s}\\s+info\\s+ready`).test(out)), 60_000);
  const ready = up.output();
  const servers = [...ready.matchAll(/started (nats|redis)-server.* at \w+:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[2]));
  assert.equal(servers.length, 2, ready);
  assert.ok(!servers.includes(4222) && !servers.includes(6379), 'must not take the machine-wide ports');
  const pids = spawnSync('pgrep', ['-f', '--', `-p ${servers[0]} |127\\.0\\.0\\.1:${servers[1]}$`], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  assert.ok(pids.length >= 2, 'nats-server and redis-server are running');
  const logFile = /service logs in (\S+) \(and below\)/.exec(ready)?.[1];
  assert.equal(logFile, join(stateDir, 'up.log'));
  assert.ok(!ready.includes('\x1b['), 'no escape codes when stdout is not a terminal');

  // Another terminal finds the running system through the state dir, with no flags.
  await up.waitForOutput('the planner to lead', (out) => out.includes('planning for the site'), 60_000);
  const status = await runCli(['status'], env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /no open incidents/);

  up.interrupt();
  const code = await up.exited;
  const out = up.output();
  assert.equal(code, 0, out);
  for (const s of ['detector', 'planner', 'executor']) assert.match(out, new RegExp(`${s}\\s+info\\s+stopped`));
  assert.doesNotMatch(out, /ECONNREFUSED/, 'servers must outlive the services that drain into them');
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} left running`);
  const logged = await readFile(logFile as string, 'utf8');
  assert.match(logged, /detector\s+info\s+ready/, 'the log file keeps what scrolled by');
  assert.match(logged, /planner\s+info\s+stopped/);
});
