/**
 * One Redis per test file and `connections` stores on it, opened before the
 * file's tests and closed after them.
 */
import { after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createStore, type Store } from '../src/store/index.ts';
import { startRedis, type TestServer } from '../src/testing/index.ts';

export interface RedisStores {
  /** The i-th store, round-robin, so concurrent callers spread over every connection. */
  via(i: number): Store;
  /** The server's URL, for a test that opens a connection of its own. */
  url(): string;
}

export function useRedisStores(connections: number, options: { flushBeforeEach?: boolean } = {}): RedisStores {
  let redis: TestServer | undefined;
  let stores: Store[] = [];
  before(async () => {
    const server = await startRedis();
    redis = server;
    stores = Array.from({ length: connections }, () => createStore(server.url));
  });
  if (options.flushBeforeEach) {
    beforeEach(async () => {
      await stores[0]?.redis.flushdb();
    });
  }
  after(async () => {
    try {
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await redis?.stop();
    }
  });
  return {
    via: (i) => {
      const store = stores[i % stores.length];
      assert.ok(store);
      return store;
    },
    url: () => {
      assert.ok(redis);
      return redis.url;
    },
  };
}
