import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startNats, startRedis } from '../src/testing/index.ts';

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

test('test servers - nats and redis start on fresh ports and are gone after stop', async () => {
  const [nats, redis] = await Promise.all([startNats(), startRedis()]);
  assert.notEqual(nats.port, 4222, 'must not reuse the machine NATS');
  assert.notEqual(redis.port, 6379, 'must not reuse the machine Redis');
  assert.ok(await reachable(nats.port));
  assert.ok(await reachable(redis.port));
  await Promise.all([nats.stop(), redis.stop()]);
  assert.equal(await reachable(nats.port), false);
  assert.equal(await reachable(redis.port), false);
  await nats.stop(); // second stop is harmless
});
