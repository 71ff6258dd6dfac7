import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { batchScheduled, isBatchScheduled, startNatsServer, startRedisServer } from '../src/index.ts';

// chrt is util-linux's, on every Debian; elsewhere the commands run as given, which the last test covers.
const canBatch = process.platform === 'linux' && batchScheduled('sh', []).command.endsWith('chrt');
const skip = canBatch ? false : 'no chrt (util-linux) on this machine: SCHED_BATCH cannot be set here';
if (skip) console.warn(`SKIPPED batch-scheduling tests: ${skip}`);

/** Spawns `sh -c 'sleep 5'` as told, returns whether it ran under SCHED_BATCH, and stops it. */
async function policyOfSpawned(env: NodeJS.ProcessEnv): Promise<boolean | undefined> {
  const launch = batchScheduled('sh', ['-c', 'sleep 5'], env);
  const child = spawn(launch.command, launch.args, { stdio: 'ignore' });
  await new Promise((resolve) => child.once('spawn', resolve));
  // chrt sets the policy and then execs the command in the same process: wait for the exec.
  for (let i = 0; i < 200 && readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() !== 'sh'; i++) await new Promise((r) => setTimeout(r, 10));
  const batch = isBatchScheduled(child.pid);
  child.kill('SIGKILL');
  return batch;
}

test('batch scheduling - a spawned command runs under SCHED_BATCH, and FB_SCHED_BATCH=0 leaves the default policy', { skip }, async () => {
  assert.equal(await policyOfSpawned(process.env), true);
  assert.equal(await policyOfSpawned({ ...process.env, FB_SCHED_BATCH: '0' }), false);
  assert.equal(isBatchScheduled(process.pid), false, 'this process was not asked to change');
});

test('batch scheduling - embedded servers run under it only when asked', { skip }, async () => {
  const [batchNats, batchRedis, plainNats] = await Promise.all([
    startNatsServer({ batchScheduling: true }),
    startRedisServer({ batchScheduling: true }),
    startNatsServer(),
  ]);
  try {
    assert.equal(isBatchScheduled(batchNats.pid), true);
    assert.equal(isBatchScheduled(batchRedis.pid), true);
    assert.equal(isBatchScheduled(plainNats.pid), false);
  } finally {
    await Promise.all([batchNats.stop(), batchRedis.stop(), plainNats.stop()]);
  }
});

test('batch scheduling - a command that is not installed is left as given, so the caller can say what to install', async () => {
  assert.deepEqual(batchScheduled('no-such-server-fb', ['-p', '1']), { command: 'no-such-server-fb', args: ['-p', '1'] });
  const saved = process.env.FB_NATS_SERVER_BIN;
  process.env.FB_NATS_SERVER_BIN = 'no-such-server-fb';
  try {
    await assert.rejects(startNatsServer({ batchScheduling: true }), /cannot start no-such-server-fb: .*ENOENT; install it with: apt-get install nats-server/);
  } finally {
    if (saved === undefined) delete process.env.FB_NATS_SERVER_BIN;
    else process.env.FB_NATS_SERVER_BIN = saved;
  }
});
