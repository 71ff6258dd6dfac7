import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, startCli } from './cli-process.ts';

test('cli - lab with a bad size or seed exits 2 naming the flag', () => {
  const size = spawnSync(process.execPath, [bin, 'lab', '--size', 'huge'], { encoding: 'utf8' });
  assert.equal(size.status, 2);
  assert.match(size.stderr, /--size must be one of tiny, rack, row, 10k, got "huge"/);
  const seed = spawnSync(process.execPath, [bin, 'lab', '--seed', 'x'], { encoding: 'utf8' });
  assert.equal(seed.status, 2);
  assert.match(seed.stderr, /--seed/);
});

test('cli - burn without a running lab exits 2 and says how to start one', async () => {
  const env = { ...process.env, FB_STATE_DIR: await mkdtemp(join(tmpdir(), 'fb-state-')), FB_LAB_URL: '' };
  const run = spawnSync(process.execPath, [bin, 'burn', 'rack', 'r1'], { encoding: 'utf8', env });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /no running lab found: nothing is recorded in .*lab\.json\.\n.*Start one with "firebreak lab".*--lab URL \(or FB_LAB_URL\)/);
  const unreachable = spawnSync(process.execPath, [bin, 'burn', 'rack', 'r1', '--lab', 'http://127.0.0.1:9'], { encoding: 'utf8', env });
  assert.equal(unreachable.status, 2);
  assert.match(unreachable.stderr, /cannot reach the lab at http:\/\/127\.0\.0\.1:9/);
});

test('cli - lab prints its endpoints, takes faults from another command, and stops on Ctrl-C', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  const env = { ...process.env, FB_STATE_DIR: stateDir, NATS_URL: '', REDIS_URL: '', FB_LAB_URL: '' };
  const lab = startCli(t, ['lab', '--seed', '7'], env, 'SIGKILL');
  await lab.waitForOutput('the lab to start', (out) => out.includes('lab running'), 30_000);
  const out = lab.output();
  assert.match(out, /24 hosts in 3 racks/);
  assert.match(out, /Redfish BMCs\s+https:\/\/127\.0\.0\.1:\d+/);
  assert.match(out, /SNMP switches\s+r1-tor udp:\/\/127\.0\.0\.1:\d+/);
  const state = JSON.parse(await readFile(join(stateDir, 'lab.json'), 'utf8')) as { inventoryPath: string };

  const burn = spawnSync(process.execPath, [bin, 'burn', 'rack', 'r2'], { encoding: 'utf8', env });
  assert.equal(burn.status, 0, burn.stderr);
  assert.match(burn.stdout, /burned rack r2: r2-h01, .*r2-h08/);
  const unknown = spawnSync(process.execPath, [bin, 'kill', 'host', 'r9-h01'], { encoding: 'utf8', env });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /no host "r9-h01"/);
  const slow = spawnSync(process.execPath, [bin, 'bmc', 'r1-h01', 'slow'], { encoding: 'utf8', env });
  assert.equal(slow.status, 2);
  assert.match(slow.stderr, /--latency-ms/);

  lab.interrupt();
  assert.equal(await lab.exited, 0, lab.output());
  await assert.rejects(readFile(join(stateDir, 'lab.json')), /ENOENT/, 'a stopped lab leaves no stale state');
  await assert.rejects(readFile(state.inventoryPath), /ENOENT/, 'the temp lab dir is removed');
});
