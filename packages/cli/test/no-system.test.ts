import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@firebreak/shared';
import { formatInventory, generateTopology } from '@firebreak/lab';
import { writeLabState } from '../src/lab-state.ts';
import { isolatedEnv, runCli, runMain, type CliRun } from './cli-process.ts';

let stateDir: string;
let inventoryFile: string;

before(async () => {
  // An empty state dir and no URL anywhere: whatever listens on this machine's usual ports must not be found.
  stateDir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  Object.assign(process.env, isolatedEnv(stateDir));
  inventoryFile = join(await mkdtemp(join(tmpdir(), 'fb-inv-')), 'inventory.yaml');
  await writeFile(inventoryFile, formatInventory(generateTopology({ size: 'tiny', seed: 1 }), 'yaml'));
});

function refusedForNothingRunning(run: CliRun, what: string, needs: ('NATS' | 'Redis')[]): void {
  assert.equal(run.code, 2, `${what}: ${run.stdout}${run.stderr}`);
  assert.equal(run.stdout, '', `${what} prints no answer`);
  assert.match(run.stderr, /^firebreak: no Firebreak is running here: /, what);
  assert.match(run.stderr, /Start one with "firebreak up" \(or "firebreak lab"\)/, what);
  const flags = { NATS: '--nats-url URL \\(or NATS_URL\\)', Redis: '--redis-url URL \\(or REDIS_URL\\)' };
  assert.match(run.stderr, new RegExp(`no ${needs.join(' or ')} URL was given[\\s\\S]*point at a running one with ${needs.map((n) => flags[n]).join(' and ')};`), what);
  assert.doesNotMatch(run.stderr, /4222|6379|cannot reach/, `${what} tried no default port`);
}

test('cli - with nothing running and no URL, every command that needs the system exits 2 saying how to start or point at one', async () => {
  const cases: [string[], ('NATS' | 'Redis')[]][] = [
    [['status'], ['NATS', 'Redis']],
    [['status', '--json', '--site', 'site1'], ['NATS', 'Redis']],
    [['drill', 'start', 'rack', 'r2'], ['NATS']],
    [['drill', 'start', 'host', 'r1-h01', '--wait'], ['NATS']],
    [['drill', 'stop', 'rack-r2-x1'], ['NATS', 'Redis']],
    [['drill', 'list'], ['NATS', 'Redis']],
    [['drill', 'reports', '--site', 'site1'], ['Redis']],
    [['plan', '--what-if', 'rack', 'r2'], ['NATS']],
    [['where'], ['Redis']],
    [['history', 'web-01', '--json'], ['Redis']],
    [['inventory', 'import', inventoryFile], ['Redis']],
  ];
  for (const [args, needs] of cases) {
    refusedForNothingRunning(await runMain(args), `firebreak ${args.join(' ')}`, needs);
  }
  for (const args of [['burn', 'rack', 'r1'], ['kill', 'host', 'r1-h01'], ['bmc', 'r1-h01', 'ok'], ['health', 'r1-h01', 'ok']]) {
    const run = await runMain(args);
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr, /no running lab found: nothing is recorded in .*lab\.json\.\n\s+Start one with "firebreak lab" \(or "firebreak up"\)[^\n]*--lab URL \(or FB_LAB_URL\)/);
  }
});

test('cli - a URL for one server does not stand in for the other: status with NATS_URL alone asks for Redis', async () => {
  process.env.NATS_URL = `nats://127.0.0.1:${await freePort()}`;
  try {
    refusedForNothingRunning(await runMain(['status']), 'status with NATS_URL', ['Redis']);
  } finally {
    process.env.NATS_URL = '';
  }
});

test('cli - a state file left by a firebreak up that is gone counts as nothing running, naming its pid', async () => {
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  const dir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  await writeLabState(dir, { controlUrl: 'http://127.0.0.1:9', natsUrl: 'nats://127.0.0.1:4222', redisUrl: 'redis://127.0.0.1:6379', inventoryPath: inventoryFile, pid: gone });
  process.env.FB_STATE_DIR = dir;
  try {
    const run = await runMain(['status']);
    refusedForNothingRunning(run, 'status with a stale state file', ['NATS', 'Redis']);
    assert.match(run.stderr, new RegExp(`recorded in ${dir}/lab\\.json \\(pid ${gone}\\) is no longer running`));
    const burn = await runMain(['burn', 'rack', 'r1']);
    assert.equal(burn.code, 2);
    assert.match(burn.stderr, new RegExp(`the lab recorded in ${dir}/lab\\.json \\(pid ${gone}\\) is no longer running`));
  } finally {
    process.env.FB_STATE_DIR = stateDir;
  }
});

test('cli - the URLs a running firebreak up recorded are the ones used', async () => {
  const dead = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  await writeLabState(dir, { controlUrl: 'http://127.0.0.1:9', natsUrl: `nats://127.0.0.1:${dead}`, redisUrl: `redis://127.0.0.1:${dead}`, inventoryPath: inventoryFile, pid: process.pid });
  process.env.FB_STATE_DIR = dir;
  try {
    const run = await runMain(['drill', 'start', 'rack', 'r2']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`cannot reach NATS at nats://127\\.0\\.0\\.1:${dead}`));
  } finally {
    process.env.FB_STATE_DIR = stateDir;
  }
});

test('cli - through the bin: `firebreak status` with nothing running exits 2 and says so (it used to say "no open incidents")', async () => {
  const run = await runCli(['status'], isolatedEnv(await mkdtemp(join(tmpdir(), 'fb-state-'))));
  refusedForNothingRunning(run, 'bin status', ['NATS', 'Redis']);
  assert.doesNotMatch(run.stdout, /no open incidents/);
});
