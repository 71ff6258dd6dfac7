import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createStore, type Store } from '@firebreak/shared';
import { startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { LeaderElection } from '../src/leader-election.ts';
import { quietLogger } from './fake-effects.ts';

let redis: TestServer;
const stores: Store[] = [];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await redis?.stop();
});

/** Renewed every 200 ms. */
const ttlMs = 600;

/** One planner's time as leader: from its election until it stood down. */
interface Term {
  owner: string;
  token: number;
  electedAt: number;
  stoodDownAt?: number;
}

function connectStore(): Store {
  const store = createStore(redis.url, { onError: () => {} });
  stores.push(store);
  return store;
}

/** A planner process: its own Redis connection and election; `terms` is shared by every planner of the test. */
function planner(owner: string, site: string, terms: Term[], store = connectStore()): LeaderElection {
  return new LeaderElection({
    leases: store.leaderLeases,
    site,
    owner,
    ttlMs,
    logger: quietLogger,
    onElected: async (token) => {
      const term: Term = { owner, token, electedAt: Date.now() };
      terms.push(term);
      return async () => {
        term.stoodDownAt = Date.now();
      };
    },
  });
}

const newSite = (): string => `site-${randomUUID().slice(0, 8)}`;
const acting = (terms: readonly Term[]): string[] => terms.filter((t) => t.stoodDownAt === undefined).map((t) => t.owner);

/** Terms never overlap: each ended before the next began. */
function assertOneAtATime(terms: readonly Term[]): void {
  for (const [i, term] of terms.entries()) {
    const next = terms[i + 1];
    if (next === undefined) break;
    assert.ok(term.stoodDownAt !== undefined && term.stoodDownAt <= next.electedAt, `${term.owner} stood down before ${next.owner} took over`);
  }
}

async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP hop to Redis that can be cut like a network partition: connections stay open, nothing gets through. */
async function partitionableProxy(target: string): Promise<{ url: string; partition: () => void; close: () => Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let cut = false;
  const server = createServer((client) => {
    const upstream = connect({ host: hostname, port: Number(port) });
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (data) => void (cut || to.write(data)));
      from.on('error', () => {});
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: proxyPort } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${proxyPort}`,
    partition: () => void (cut = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('leader election - of two planners on one Redis exactly one leads, and goes on leading while it renews', async () => {
  const site = newSite();
  const terms: Term[] = [];
  const electors = [planner('planner-a', site, terms), planner('planner-b', site, terms)];
  for (const e of electors) e.start();
  await waitFor('a leader', () => terms.length > 0);
  await sleep(3 * ttlMs); // several renewals, and time for the other to try many times
  assert.equal(terms.length, 1, 'one election, and the other planner never took over');
  assert.deepEqual(acting(terms), [terms[0]?.owner]);
  assert.equal(electors.filter((e) => e.token !== undefined).length, 1, 'only the leader holds a fencing token');
  for (const e of electors) await e.stop();
});

test('leader election - a leader that stops stands down at once; the other takes over within the lease time, each new term with a higher token', async () => {
  const site = newSite();
  const terms: Term[] = [];
  const electors = new Map([planner('planner-a', site, terms), planner('planner-b', site, terms)].map((e, i) => [i === 0 ? 'planner-a' : 'planner-b', e]));
  for (const e of electors.values()) e.start();
  await waitFor('a leader', () => terms.length === 1);
  const first = terms[0] as Term;
  const other = first.owner === 'planner-a' ? 'planner-b' : 'planner-a';

  const stoppedAt = Date.now();
  await electors.get(first.owner)?.stop();
  assert.ok(first.stoodDownAt !== undefined, 'stood down before stop() returned');
  assert.equal(electors.get(first.owner)?.token, undefined);
  await waitFor('the other planner to take over', () => terms.length === 2, 2 * ttlMs);
  const second = terms[1] as Term;
  assert.equal(second.owner, other);
  assert.ok(second.token > first.token, `token ${second.token} after ${first.token}`);
  // The stopped leader gave its lease back: the other had only to notice, at its next try.
  assert.ok(second.electedAt - stoppedAt < ttlMs, `took over ${second.electedAt - stoppedAt} ms after the stop`);

  // A third term, with a planner that was not there before.
  const third = planner('planner-c', site, terms);
  third.start();
  await electors.get(other)?.stop();
  await waitFor('the new planner to take over', () => terms.length === 3, 2 * ttlMs);
  assert.equal(terms[2]?.owner, 'planner-c');
  assert.ok((terms[2]?.token ?? 0) > second.token);

  // Stopped planners stay stopped: planner-c stepping down leaves nobody leading.
  await third.stop();
  await sleep(2 * ttlMs);
  assert.equal(terms.length, 3);
  assert.deepEqual(acting(terms), []);
  assertOneAtATime(terms);
});

test('leader election - a leader cut off from Redis stands down before its lease runs out, and the other takes over once it has', async () => {
  const site = newSite();
  const terms: Term[] = [];
  const proxy = await partitionableProxy(redis.url);
  const cutOffStore = createStore(proxy.url, { onError: () => {} });
  const cutOff = planner('planner-a', site, terms, cutOffStore);
  cutOff.start();
  await waitFor('planner-a to lead', () => terms.length === 1);
  const other = planner('planner-b', site, terms);
  other.start();
  await sleep(ttlMs);
  assert.equal(terms.length, 1, 'planner-b waits while planner-a renews');

  const cutAt = Date.now();
  proxy.partition();
  await waitFor('planner-b to take over', () => terms.length === 2, 3 * ttlMs);
  const [first, second] = terms as [Term, Term];
  assert.equal(second.owner, 'planner-b');
  assert.ok(second.token > first.token);
  // planner-b can only have it once the lease expired: planner-a was gone before its lease ran out.
  assertOneAtATime(terms);
  // The lease expires at most a TTL after the cut; planner-b tries every third of one.
  assert.ok(second.electedAt - cutAt < ttlMs + ttlMs / 3 + 200, `planner-b took over ${second.electedAt - cutAt} ms after the cut`);
  assert.equal(cutOff.token, undefined);

  // Its stop returns although Redis never answers it.
  await within(2 * ttlMs, 'stopping the cut-off planner', cutOff.stop());
  cutOffStore.redis.disconnect();
  await proxy.close();
  await other.stop();
  assert.deepEqual(acting(terms), []);
});
