import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { FirebreakError } from '../src/errors.ts';
import { redisKeys } from '../src/store/index.ts';
import { useRedisStores } from './redis-stores.ts';

const { via } = useRedisStores(4);

const PowerResult = z.object({ host: z.string(), state: z.enum(['on', 'off']) });

test('store - idempotency: exactly one of many concurrent begins is first', async () => {
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => via(i).idempotency.begin('cmd-race')));
  assert.equal(results.filter((r) => r.first).length, 1);
  for (const r of results) {
    if (!r.first) assert.deepEqual(r.record, { state: 'pending' });
  }
});

test('store - idempotency: the stored result is returned to later callers', async () => {
  const idem = via(0).idempotency;
  assert.deepEqual(await idem.begin('cmd-done'), { first: true });
  await idem.complete('cmd-done', { host: 'h1', state: 'on' });

  const later = await via(1).idempotency.begin('cmd-done', undefined, PowerResult);
  assert.deepEqual(later, { first: false, record: { state: 'done', result: { host: 'h1', state: 'on' } } });
  const read = await via(2).idempotency.get('cmd-done', PowerResult);
  assert.ok(read?.state === 'done');
  assert.equal(read.result.state, 'on');
  assert.equal(await idem.get('cmd-never-begun'), undefined);
});

test('store - idempotency: a result that fails the reader schema is an error, not a wrong value', async () => {
  const idem = via(0).idempotency;
  await idem.begin('cmd-typed');
  await idem.complete('cmd-typed', { host: 'h1', state: 'rebooting' });
  await assert.rejects(idem.get('cmd-typed', PowerResult), (err: unknown) => {
    assert.ok(err instanceof FirebreakError);
    assert.match(err.message, /result of "cmd-typed".*does not match its schema/s);
    return true;
  });
  assert.deepEqual(await idem.get('cmd-typed'), { state: 'done', result: { host: 'h1', state: 'rebooting' } });
});

test('store - idempotency: a pending record expires with its TTL, so a crashed worker does not block forever', async () => {
  const idem = via(0).idempotency;
  assert.equal((await idem.begin('cmd-crash', 300)).first, true);
  assert.equal((await idem.begin('cmd-crash', 300)).first, false);
  await sleep(400);
  assert.equal((await idem.begin('cmd-crash', 300)).first, true);
});

test('store - idempotency: complete keeps the TTL begin set', async () => {
  const idem = via(0).idempotency;
  await idem.begin('cmd-ttl', 60_000);
  await idem.complete('cmd-ttl', null);
  const ttl = await via(0).redis.pttl(redisKeys.idempotency('cmd-ttl'));
  assert.ok(ttl > 0 && ttl <= 60_000, `ttl ${ttl}`);
  assert.deepEqual(await idem.get('cmd-ttl'), { state: 'done', result: null });
});

test('store - idempotency: abandon drops a pending record but never a result', async () => {
  const idem = via(0).idempotency;
  await idem.begin('cmd-abandon');
  assert.equal(await idem.abandon('cmd-abandon'), true);
  assert.equal((await idem.begin('cmd-abandon')).first, true, 'a retry can begin again');
  await idem.complete('cmd-abandon', 'ok');
  assert.equal(await idem.abandon('cmd-abandon'), false);
  assert.deepEqual(await idem.get('cmd-abandon'), { state: 'done', result: 'ok' });
});

test('store - idempotency: a result that is not JSON is refused', async () => {
  const idem = via(0).idempotency;
  await idem.begin('cmd-bad');
  await assert.rejects(idem.complete('cmd-bad', 10n), /not serialisable as JSON/);
  await assert.rejects(idem.complete('cmd-bad', () => 1), /not a JSON value/);
  assert.deepEqual(await idem.get('cmd-bad'), { state: 'pending' });
});
