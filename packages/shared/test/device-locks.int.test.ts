import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { FirebreakError } from '../src/errors.ts';
import { DeviceLocks, ProcessDeviceLocks, redisKeys } from '../src/store/index.ts';
import { useRedisStores } from './redis-stores.ts';

const { via } = useRedisStores(3);

/** Executors as separate processes have them: each its own connection and its own DeviceLocks. */
const executors = (ttlMs: number): DeviceLocks[] => [0, 1, 2].map((i) => new DeviceLocks(via(i).redis, { ttlMs }));
const claim = (holder: string, token = 5, site = 's1') => ({ site, token, holder });
const forever = (): AbortSignal => AbortSignal.timeout(30_000);

test('device locks - changes to one device from three executors never overlap; two devices run side by side', async () => {
  const locks = executors(3_000);
  const inside = new Map<string, number>();
  const peak = new Map<string, number>();
  const order: string[] = [];
  const change = (device: string, who: string) => async () => {
    const n = (inside.get(device) ?? 0) + 1;
    inside.set(device, n);
    peak.set(device, Math.max(peak.get(device) ?? 0, n));
    await sleep(5);
    order.push(`${device} ${who}`);
    inside.set(device, n - 1);
  };
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 30 }, (_, i) => {
      const device = i % 2 === 0 ? 'switch:a' : 'switch:b';
      const lock = locks[i % 3];
      assert.ok(lock);
      return lock.hold(device, claim(`exec-${i % 3}/c-${i}`), forever(), change(device, `c-${i}`));
    }),
  );
  assert.deepEqual(Object.fromEntries(peak), { 'switch:a': 1, 'switch:b': 1 }, 'one change at a time per device');
  assert.equal(order.length, 30);
  // 15 changes of 5 ms per device, the two devices at once: well under the 150 ms they would take one after another.
  assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  assert.equal(await locks[0]?.holder('switch:a'), undefined, 'every lock given back');
});

test('device locks - the lock of an executor that died frees itself after its TTL, and the next holder gets it at once', async () => {
  const [dead, alive] = executors(300);
  assert.ok(dead && alive);
  // Taken and never renewed or released: the process is gone.
  assert.deepEqual(await dead.acquire('array:arr1', 'exec-dead/c-1#x', { site: 's1', token: 5 }), { acquired: true });
  const started = Date.now();
  await alive.hold('array:arr1', claim('exec-alive/c-2'), forever(), async () => undefined);
  const waited = Date.now() - started;
  assert.ok(waited >= 200 && waited < 700, `waited ${waited} ms for a 300 ms lock`);
});

test('device locks - a lock is renewed while its change runs, however long that is', async () => {
  const [a, b] = executors(300);
  assert.ok(a && b);
  let second = 0;
  const first = a.hold('switch:slow', claim('exec-a/c-1'), forever(), async (held) => {
    await sleep(1_000);
    assert.equal(held.aborted, false, 'still held after three TTLs');
    return Date.now();
  });
  await sleep(50);
  await b.hold('switch:slow', claim('exec-b/c-2'), forever(), async () => void (second = Date.now()));
  assert.ok(second >= (await first), 'the second change started only after the first ended');
});

test('device locks - waiting ends when the caller\'s deadline does, naming who holds the device', async () => {
  const [a, b] = executors(3_000);
  assert.ok(a && b);
  let release!: () => void;
  const holding = a.hold('switch:busy', claim('exec-a/c-1', 5), forever(), () => new Promise<void>((r) => (release = r)));
  await sleep(20);
  const started = Date.now();
  let ran = false;
  await assert.rejects(
    b.hold('switch:busy', claim('exec-b/c-2', 5), AbortSignal.timeout(200), async () => void (ran = true)),
    (err: unknown) => {
      assert.ok(err instanceof FirebreakError);
      assert.equal(err.code, 'TIMEOUT');
      assert.match(err.message, /gave up waiting for the lock on switch:busy after \d+ ms \(the command's deadline\): held by exec-a\/c-1#\w+ \(site s1, token 5, \d+ ms left\)/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 500, `gave up after ${Date.now() - started} ms`);
  assert.equal(ran, false);
  // A waiter of the same executor, queued behind the holder in the process, gives up as promptly.
  await assert.rejects(a.hold('switch:busy', claim('exec-a/c-3'), AbortSignal.timeout(100), async () => undefined), /gave up waiting for the lock on switch:busy .*earlier changes of this executor/);
  release();
  await holding;
});

test('device locks - once a newer planner token asked for a device, an older one is refused and changes nothing; the holder in hand finishes', async () => {
  const [old, next] = executors(3_000);
  assert.ok(old && next);
  let release!: () => void;
  const inHand = old.hold('switch:handover', claim('exec-a/c-old-1', 7), forever(), async (held) => {
    await new Promise<void>((r) => (release = r));
    return held.aborted;
  });
  await sleep(20);
  const newer = next.hold('switch:handover', claim('exec-b/c-new', 8), forever(), async () => 'newer ran');
  await sleep(50);
  release();
  assert.equal(await inHand, false, 'the older holder was not stopped mid-change');
  assert.equal(await newer, 'newer ran');
  let ran = false;
  await assert.rejects(
    old.hold('switch:handover', claim('exec-a/c-old-2', 7), forever(), async () => void (ran = true)),
    (err: unknown) => {
      assert.ok(err instanceof FirebreakError);
      assert.equal(err.code, 'STALE_FENCING_TOKEN');
      assert.equal(err.retryable, false);
      assert.match(err.message, /switch:handover: fencing token 7 of site s1 is older than 8, which a newer planner's command already used on it; nothing was changed/);
      return true;
    },
  );
  assert.equal(ran, false);
  // Tokens of another site's planner are not compared with this one's.
  assert.equal(await old.hold('switch:handover', claim('exec-a/c-other-site', 1, 's2'), forever(), async () => 'ok'), 'ok');
});

test('device locks - a holder whose lock is taken away sees its signal abort, and the change fails with the reason', async () => {
  const [a] = executors(3_000);
  assert.ok(a);
  const failure = a.hold('switch:stolen', claim('exec-a/c-1'), forever(), async (held) => {
    // What Redis losing the key looks like to the holder (expired while the process was paused, or flushed).
    await via(1).redis.del(redisKeys.deviceLock('switch:stolen'));
    await new Promise((_, reject) => held.addEventListener('abort', () => reject(new Error('the device request was aborted')), { once: true }));
  });
  await assert.rejects(failure, (err: unknown) => {
    assert.ok(err instanceof FirebreakError);
    assert.equal(err.code, 'LEASE_LOST');
    assert.equal(err.retryable, true);
    assert.match(err.message, /lost the lock on switch:stolen \(exec-a\/c-1#\w+\) mid-change: it expired and was taken, or removed; the step stopped and is retried from a fresh read/);
    return true;
  });
});

test('device locks - within one process only, changes to one device still queue and a waiter leaves on its deadline', async () => {
  const local = new ProcessDeviceLocks();
  const order: number[] = [];
  let release!: () => void;
  const first = local.hold('switch:x', claim('e/c-1'), forever(), () => new Promise<void>((r) => (release = r)).then(() => void order.push(1)));
  const second = local.hold('switch:x', claim('e/c-2'), forever(), async () => void order.push(2));
  await assert.rejects(local.hold('switch:x', claim('e/c-3'), AbortSignal.timeout(50), async () => void order.push(3)), /gave up waiting for the lock on switch:x/);
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, [1, 2]);
});
