import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FirebreakError } from '../src/errors.ts';
import { redisKeys, SnapshotMismatchError, type Store } from '../src/store/index.ts';
import { useRedisStores } from './redis-stores.ts';

const { via } = useRedisStores(1, { flushBeforeEach: true });
const s = (): Store => via(0);

const machine = { machineId: 'incident', machineVersion: '3' };
const snapshot = { status: 'active', value: { recovering: 'storage' }, context: { servers: ['s1', 's2'] } };

test('store - snapshots: save, load, listOpen and close', async () => {
  const { snapshots } = s();
  const saved = await snapshots.save('inc-2', { ...machine, snapshot, savedAt: 1_700_000_000_000 });
  await snapshots.save('inc-1', { ...machine, snapshot: { status: 'active', value: 'fencing' } });
  assert.deepEqual(await snapshots.listOpen(), ['inc-1', 'inc-2']);

  assert.deepEqual(await snapshots.load('inc-2', machine), saved);
  assert.deepEqual(saved, { ...machine, snapshot, savedAt: 1_700_000_000_000 });
  assert.ok(((await snapshots.load('inc-1', machine))?.savedAt ?? 0) > 1_700_000_000_000, 'savedAt defaults to now');

  await snapshots.close('inc-2', 60_000);
  assert.deepEqual(await snapshots.listOpen(), ['inc-1']);
  assert.deepEqual(await snapshots.load('inc-2', machine), saved, 'a closed incident stays readable for reports');
  const ttl = await s().redis.pttl(redisKeys.snapshot('inc-2'));
  assert.ok(ttl > 0 && ttl <= 60_000, `retention ttl ${ttl}`);

  assert.equal(await snapshots.load('inc-none', machine), undefined);
});

test('store - snapshots: saving a closed incident opens it again and drops the retention TTL', async () => {
  const { snapshots } = s();
  await snapshots.save('inc-3', { ...machine, snapshot });
  await snapshots.close('inc-3', 60_000);
  await snapshots.save('inc-3', { ...machine, snapshot });
  assert.deepEqual(await snapshots.listOpen(), ['inc-3']);
  assert.equal(await s().redis.pttl(redisKeys.snapshot('inc-3')), -1);
});

test('store - snapshots: a snapshot of another machine version is refused with a clear message', async () => {
  const { snapshots } = s();
  await snapshots.save('inc-4', { ...machine, snapshot });
  await assert.rejects(snapshots.load('inc-4', { machineId: 'incident', machineVersion: '4' }), (err: unknown) => {
    assert.ok(err instanceof SnapshotMismatchError);
    assert.equal(err.retryable, false);
    assert.equal(
      err.message,
      'refusing to restore incident "inc-4": its snapshot was saved by machine "incident" version "3", ' +
        'but this planner runs machine "incident" version "4"',
    );
    return true;
  });
  await assert.rejects(snapshots.load('inc-4', { machineId: 'drill', machineVersion: '3' }), SnapshotMismatchError);
});

test('store - snapshots: concurrent saves each land in the open set', async () => {
  const { snapshots } = s();
  const ids = Array.from({ length: 100 }, (_, i) => `inc-c${String(i).padStart(3, '0')}`);
  await Promise.all(ids.map((id) => snapshots.save(id, { ...machine, snapshot })));
  assert.deepEqual(await snapshots.listOpen(), ids);
});

test('store - snapshots: an invalid envelope is refused on save and a corrupt one on load', async () => {
  const { snapshots } = s();
  await assert.rejects(snapshots.save('inc-5', { machineId: '', machineVersion: '3', snapshot }), /not a valid envelope/);
  assert.deepEqual(await snapshots.listOpen(), []);

  await s().redis.set(redisKeys.snapshot('inc-6'), '{"machineId":"incident"');
  await assert.rejects(snapshots.load('inc-6', machine), (err: unknown) => {
    assert.ok(err instanceof FirebreakError);
    assert.match(err.message, /snapshot of incident "inc-6" in Redis is not valid JSON/);
    return true;
  });
  await s().redis.set(redisKeys.snapshot('inc-7'), JSON.stringify({ machineId: 'incident', snapshot }));
  await assert.rejects(snapshots.load('inc-7', machine), /does not match its schema/);
});
