import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connectBus, createStore, ensureStreams, TokenFloor, type Bus, type Store } from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { LeaderElection } from '../src/leader-election.ts';
import { quietLogger } from './fake-effects.ts';

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
let store: Store;

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'token-floor-test' });
  await ensureStreams(bus.jsm);
  store = createStore(redis.url, { onError: () => {} });
});
after(async () => {
  await store?.close();
  await bus?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

/** Elects `owner` for the site, returns the token it acts with, and stands it down. */
async function electOnce(owner: string, site: string, floor: TokenFloor | undefined): Promise<number> {
  let token: number | undefined;
  const election = new LeaderElection({
    leases: store.leaderLeases,
    site,
    owner,
    ttlMs: 600,
    logger: quietLogger,
    ...(floor && { floor }),
    onElected: async (t) => {
      token = t;
      return async () => {};
    },
  });
  election.start();
  await waitFor(`${owner} to be elected`, () => token !== undefined, 5_000);
  await election.stop();
  return token as number;
}

test('planner fencing token - Redis losing its data does not send the token back: the floor in JetStream lifts it', async () => {
  const floor = new TokenFloor(bus);
  assert.equal(await electOnce('planner-a', 'dc1', floor), 1);
  assert.equal(await electOnce('planner-b', 'dc1', floor), 2);
  assert.equal((await floor.read('dc1'))?.token, 2, 'the token in use is recorded before it is used');

  await store.redis.flushall(); // what a Redis without persistence does on a restart
  const after = await electOnce('planner-c', 'dc1', floor);
  assert.equal(after, 3, 'above every token used before');
  assert.equal(await electOnce('planner-d', 'dc1', floor), 4, 'and the Redis counter continues from there');
  const next = await store.leaderLeases.acquire('planner-dc1', 'x', 100);
  assert.deepEqual(next, { acquired: true, token: 5 }, 'a grant without the election is above the floor too');

  // Without the floor (the old behaviour) the same loss hands out 1 again.
  await store.redis.flushall();
  assert.equal(await electOnce('planner-e', 'dc2', undefined), 1);
  await store.redis.flushall();
  assert.equal(await electOnce('planner-f', 'dc2', undefined), 1, 'without a floor the token goes back');
});

test('planner fencing token - a floor recorded by someone else in between is respected, never overwritten with less', async () => {
  const floor = new TokenFloor(bus);
  const before = await floor.read('dc3');
  await floor.record('dc3', 7, 'planner-x', before);
  await assert.rejects(floor.record('dc3', 8, 'planner-y', before), { name: 'TokenFloorConflictError' });
  assert.equal(await electOnce('planner-z', 'dc3', floor), 8);
});
