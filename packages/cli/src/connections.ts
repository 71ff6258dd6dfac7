/**
 * NATS and Redis for the commands that read or steer a running system. A
 * command waits a few seconds at most: an unreachable server is a usage
 * problem (exit 2) with the fix in the message, never a hang or a stack.
 */
import { connectBus, createStore, ensureStreams, redactUrl, type Bus, type Store } from '@firebreak/shared';
import { readLabState, stateDir } from './lab-state.ts';
import { UsageError } from './usage-error.ts';

export const CONNECT_TIMEOUT_MS = 4_000;

const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface UrlFlags {
  natsUrl?: string | undefined;
  redisUrl?: string | undefined;
}

/**
 * The flag, else the environment, else what a running `firebreak up`/`lab`
 * recorded in the state dir, else the servers' usual local ports.
 */
export async function resolveUrls(flags: UrlFlags): Promise<{ natsUrl: string; redisUrl: string }> {
  const state = await readLabState(stateDir());
  return {
    natsUrl: flags.natsUrl || process.env.NATS_URL || state?.natsUrl || DEFAULT_NATS_URL,
    redisUrl: flags.redisUrl || process.env.REDIS_URL || state?.redisUrl || DEFAULT_REDIS_URL,
  };
}

function reason(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown };
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  return typeof e.code === 'string' && e.code !== message ? `${message} (${e.code})` : message;
}

function timeout(ms: number): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms).unref());
}

function cannotReach(what: 'NATS' | 'Redis', url: string, err: unknown): UsageError {
  const flag = what === 'NATS' ? '--nats-url' : '--redis-url';
  return new UsageError(redactUrl(`cannot reach ${what} at ${url}: ${reason(err)}; start it with \`firebreak up\` or pass ${flag}`));
}

/** A bus with the Firebreak streams in place (creating them is idempotent). */
export async function openBus(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Bus> {
  let bus: Bus;
  // The same credentials the services use (nats.js ignores a URL's user:password).
  const connecting = connectBus({ url, name: 'firebreak-cli', user: process.env.NATS_USER || undefined, password: process.env.NATS_PASSWORD || undefined });
  try {
    bus = await Promise.race([connecting, timeout(timeoutMs)]);
  } catch (err) {
    // A connection that completes after we gave up must not keep the process alive.
    void connecting.then((late) => late.close()).catch(() => {});
    throw cannotReach('NATS', url, err);
  }
  try {
    await Promise.race([ensureStreams(bus.jsm), timeout(timeoutMs)]);
  } catch (err) {
    await bus.close().catch(() => {});
    throw new UsageError(redactUrl(`NATS at ${url} answered but JetStream did not: ${reason(err)}; run nats-server with -js (as \`firebreak up\` does)`));
  }
  return bus;
}

/** A store whose connection was proven, which gives up instead of retrying for ever. */
export async function openStore(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Store> {
  let store: Store;
  try {
    store = createStore(url, {
      redis: { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 1, retryStrategy: () => null },
      // Reported once, below, with the fix; ioredis would otherwise print every attempt.
      onError: () => {},
    });
  } catch (err) {
    throw cannotReach('Redis', url, err);
  }
  try {
    await Promise.race([store.redis.connect(), timeout(timeoutMs)]);
  } catch (err) {
    store.redis.disconnect();
    throw cannotReach('Redis', url, err);
  }
  return store;
}

/** Runs `work` with a bus, closing it afterwards whatever happens. */
export async function withBus<T>(url: string, work: (bus: Bus) => Promise<T>): Promise<T> {
  const bus = await openBus(url);
  try {
    return await work(bus);
  } finally {
    await bus.close().catch(() => {});
  }
}

export async function withStore<T>(url: string, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(url);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
