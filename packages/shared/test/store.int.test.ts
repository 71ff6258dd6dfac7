import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { FirebreakError } from '../src/errors.ts';
import { createStore, LeaseStore, redisKeys, type AcquireResult } from '../src/store/index.ts';
import { useRedisStores } from './redis-stores.ts';

const { via, url } = useRedisStores(8);

type Granted = Extract<AcquireResult, { acquired: true }>;

function granted(results: AcquireResult[]): Granted[] {
  return results.filter((r): r is Granted => r.acquired);
}

test('store - 1,000 concurrent claims of one host lease from several connections: exactly one wins', async () => {
  const results = await Promise.all(
    Array.from({ length: 1_000 }, (_, i) => via(i).leases.acquire('h-race', `incident-${i}`, 30_000)),
  );
  const winners = results.flatMap((r, i) => (r.acquired ? [{ owner: `incident-${i}`, token: r.token }] : []));
  assert.equal(winners.length, 1);
  const [winner] = winners;
  assert.ok(winner);
  for (const r of results) {
    if (r.acquired) continue;
    assert.equal(r.holder.owner, winner.owner, 'every loser is told who won');
    assert.equal(r.holder.token, winner.token);
  }
  assert.deepEqual(
    { owner: (await via(0).leases.holder('h-race'))?.owner, token: (await via(3).leases.holder('h-race'))?.token },
    winner,
  );
});

test('store - a lease expires after its TTL and then a new owner wins', async () => {
  const leases = via(0).leases;
  assert.equal((await leases.acquire('h-expire', 'a', 300)).acquired, true);
  const lost = await leases.acquire('h-expire', 'b', 300);
  assert.ok(!lost.acquired);
  assert.equal(lost.holder.owner, 'a');
  assert.ok(lost.holder.expiresInMs > 0 && lost.holder.expiresInMs <= 300);

  await sleep(400);
  assert.equal(await leases.holder('h-expire'), undefined);
  assert.equal((await via(1).leases.acquire('h-expire', 'b', 10_000)).acquired, true);
  assert.equal((await leases.holder('h-expire'))?.owner, 'b');
  assert.equal(await leases.renew('h-expire', 'a', 10_000), false, 'the old owner cannot renew a lease it lost');
});

test('store - renew and release by a non-holder fail and leave the lease alone', async () => {
  const leases = via(0).leases;
  const claim = await leases.acquire('h-guard', 'a', 10_000);
  assert.ok(claim.acquired);
  assert.equal(await leases.renew('h-guard', 'b', 60_000), false);
  assert.equal(await leases.release('h-guard', 'b'), false);
  const holder = await leases.holder('h-guard');
  assert.equal(holder?.owner, 'a');
  assert.equal(holder.token, claim.token);
  assert.ok(holder.expiresInMs <= 10_000, 'a failed renew must not extend the lease');

  assert.equal(await leases.release('h-guard', 'a'), true);
  assert.equal(await leases.holder('h-guard'), undefined);
  assert.equal(await leases.release('h-guard', 'a'), false, 'releasing twice reports the lease was not held');
});

test('store - renew by the holder extends the lease past its original TTL', async () => {
  const leases = via(0).leases;
  assert.equal((await leases.acquire('h-renew', 'a', 300)).acquired, true);
  assert.equal(await leases.renew('h-renew', 'a', 5_000), true);
  assert.ok(((await leases.holder('h-renew'))?.expiresInMs ?? 0) > 1_000);
  await sleep(400);
  assert.equal((await leases.holder('h-renew'))?.owner, 'a');
  assert.equal((await leases.acquire('h-renew', 'b', 5_000)).acquired, false);
});

test('store - the holder claiming again keeps its lease and its token', async () => {
  const leases = via(0).leases;
  const first = await leases.acquire('h-retry', 'a', 300);
  assert.ok(first.acquired);
  const again = await leases.acquire('h-retry', 'a', 5_000);
  assert.deepEqual(again, { acquired: true, token: first.token });
  await sleep(400);
  assert.equal((await leases.holder('h-retry'))?.owner, 'a', 'the retried claim refreshed the TTL');
});

test('store - fencing tokens only ever increase across acquire, expire and re-acquire', async () => {
  const leases = via(0).leases;
  const tokens: number[] = [];
  const take = async (owner: string, ttlMs: number): Promise<void> => {
    const r = await leases.acquire('h-fence', owner, ttlMs);
    assert.ok(r.acquired, `${owner} should win the free lease`);
    tokens.push(r.token);
  };
  await take('a', 50);
  await sleep(100); // expired
  await take('b', 10_000);
  assert.equal(await leases.release('h-fence', 'b'), true);
  await take('a', 50);
  await sleep(100);
  await take('a', 10_000); // the same owner after expiry is a new grant

  for (let i = 1; i < tokens.length; i++) {
    assert.ok(tokens[i]! > tokens[i - 1]!, `tokens must rise: ${tokens.join(', ')}`);
  }
});

test('store - fencing tokens only ever increase across rounds of concurrent claims', async () => {
  const tokens: number[] = [];
  for (let round = 0; round < 12; round++) {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => via(i).leases.acquire('h-fence-race', `r${round}-c${i}`, 10_000)),
    );
    const winners = granted(results);
    assert.equal(winners.length, 1, `round ${round}`);
    const winner = winners[0]!;
    tokens.push(winner.token);
    for (const r of results) {
      if (!r.acquired) assert.equal(r.holder.token, winner.token, 'losers see the winner token, never a newer one');
    }
    // Alternate how the lease ends: expiry on even rounds (brought forward, so
    // a slow machine cannot let it lapse mid-round), release on odd ones.
    if (round % 2 === 0) {
      await via(0).redis.pexpire(redisKeys.lease('host', 'h-fence-race'), 1);
      await sleep(20);
      assert.equal(await via(0).leases.holder('h-fence-race'), undefined);
    } else {
      const owner = (await via(0).leases.holder('h-fence-race'))?.owner;
      assert.ok(owner);
      assert.equal(await via(0).leases.release('h-fence-race', owner), true);
    }
  }
  for (let i = 1; i < tokens.length; i++) {
    assert.ok(tokens[i]! > tokens[i - 1]!, `tokens must rise: ${tokens.join(', ')}`);
  }
});

test('store - host leases and leader leases are separate namespaces', async () => {
  const store = via(0);
  const host = await store.leases.acquire('site1', 'incident-1', 10_000);
  const leader = await store.leaderLeases.acquire('site1', 'planner-a', 10_000);
  assert.ok(host.acquired && leader.acquired, 'the same id in two namespaces is two leases');
  assert.equal((await store.leaderLeases.holder('site1'))?.owner, 'planner-a');

  const election = await Promise.all(
    ['planner-b', 'planner-c'].map((owner, i) => via(i).leaderLeases.acquire('planner:site2', owner, 10_000)),
  );
  assert.equal(granted(election).length, 1);
});

test('store - bad lease arguments are refused before reaching Redis', async () => {
  const leases = via(0).leases;
  await assert.rejects(leases.acquire('h-bad', 'a', 0), FirebreakError);
  await assert.rejects(leases.acquire('h-bad', 'a', 1.5), /positive whole number/);
  await assert.rejects(leases.acquire('h-bad', '', 1_000), /owner/);
  await assert.rejects(leases.acquire('h {bad}', 'a', 1_000), /cannot be used in a Redis key/);
  assert.throws(() => new LeaseStore(via(0).redis, 'a:b'), /must not contain ':'/);
});

test('store - close is safe to call twice', async () => {
  const store = createStore(url());
  assert.equal(await store.redis.ping(), 'PONG');
  await store.close();
  await store.close();
  assert.equal(store.redis.status, 'end');
});
