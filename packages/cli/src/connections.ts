/**
 * NATS and Redis for the commands that read or steer a running system. A
 * command waits a few seconds at most: an unreachable server is a usage
 * problem (exit 2) with the fix in the message, never a hang or a stack.
 */
import { ConfigError, connectBus, createStore, jetStreamErrorCode, jetStreamErrors, redactUrl, streams, type Bus, type Store } from '@firebreak/shared';
import { credentialsPath, findRunningLab, readLabCredentials, stateDir, statePath, withUrlCredentials, type LabCredentials } from './lab-state.ts';
import { UsageError } from './usage-error.ts';

export const CONNECT_TIMEOUT_MS = 4_000;

export interface UrlFlags {
  natsUrl?: string | undefined;
  redisUrl?: string | undefined;
}

/** The URLs a caller asked for: each key it named in its flags, resolved to a string. */
export type ResolvedUrls<F extends UrlFlags> = { [K in keyof F & keyof UrlFlags]-?: string };

const servers = {
  natsUrl: { name: 'NATS', flag: '--nats-url', env: 'NATS_URL' },
  redisUrl: { name: 'Redis', flag: '--redis-url', env: 'REDIS_URL' },
} as const;

/**
 * The servers the caller names in `flags` (a key present, even with no value:
 * `{ redisUrl: undefined }` asks for Redis only): the flag, else the
 * environment, else what a running `firebreak up`/`lab` recorded in the state
 * dir. Never a default port: a NATS or Redis that merely answers there may be
 * anybody's, and "no open incidents" from it would be a lie.
 */
export async function resolveUrls<F extends UrlFlags>(flags: F): Promise<ResolvedUrls<F>> {
  const wanted = (Object.keys(servers) as (keyof UrlFlags)[]).filter((key) => key in flags);
  const given = new Map(wanted.map((key) => [key, flags[key] || process.env[servers[key].env] || undefined]));
  if (wanted.every((key) => given.get(key) !== undefined)) return Object.fromEntries(given) as ResolvedUrls<F>;

  const dir = stateDir();
  const lab = await findRunningLab(dir);
  if (lab !== undefined && !lab.stale) {
    return Object.fromEntries(wanted.map((key) => [key, given.get(key) ?? lab.state[key]])) as ResolvedUrls<F>;
  }
  const missing = wanted.filter((key) => given.get(key) === undefined).map((key) => servers[key]);
  const recorded =
    lab === undefined
      ? `nothing is recorded in ${statePath(dir)}`
      : `the "firebreak up" or "firebreak lab" recorded in ${statePath(dir)} (pid ${lab.state.pid}) is no longer running`;
  throw new UsageError(
    `no Firebreak is running here: ${recorded}, and no ${missing.map((m) => m.name).join(' or ')} URL was given.\n` +
      `  Start one with "firebreak up" (or "firebreak lab") from this folder, or point at a running one with ` +
      `${missing.map((m) => `${m.flag} URL (or ${m.env})`).join(' and ')}; FB_STATE_DIR names another state dir.`,
  );
}

/**
 * The passwords of the running `up`/`lab`, for a server it recorded only: a
 * URL the user pointed elsewhere never gets the local system's passwords.
 */
async function recordedCredentials(server: 'natsUrl' | 'redisUrl', url: string): Promise<LabCredentials> {
  const dir = stateDir();
  const lab = await findRunningLab(dir);
  if (lab === undefined || lab.stale || lab.state[server] !== url) return {};
  return readLabCredentials(dir);
}

/** NATS_USER / NATS_PASSWORD when set; else, on the running `up`/`lab`'s NATS, its operator (people's user in nats.conf). */
async function natsLogin(url: string): Promise<{ user?: string | undefined; password?: string | undefined }> {
  const user = process.env.NATS_USER || undefined;
  const password = process.env.NATS_PASSWORD || undefined;
  if (user !== undefined || password !== undefined) return { user, password };
  const operator = (await recordedCredentials('natsUrl', url)).nats?.operator;
  return operator === undefined ? {} : { user: 'operator', password: operator };
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

/**
 * Binds to the streams Firebreak's services (or the streams job) made. The
 * CLI never creates one: on a NATS server nobody set up for Firebreak that
 * would leave streams behind, and a client's view of their configuration
 * would win over the one the deployment chose.
 */
async function requireStreams(bus: Bus, url: string): Promise<void> {
  const names = Object.values(streams);
  const found = await Promise.all(
    names.map(async (name) => {
      try {
        await bus.jsm.streams.info(name);
        return true;
      } catch (err) {
        if (jetStreamErrorCode(err) === jetStreamErrors.streamNotFound) return false;
        throw err;
      }
    }),
  );
  const missing = names.filter((_, i) => !found[i]);
  if (missing.length === 0) return;
  throw new UsageError(
    redactUrl(
      `NATS at ${url} has no stream ${missing.join(', ')}: Firebreak's services have not set up this NATS server. ` +
        `Start them against it (firebreak up --nats-url URL, or the deployment's streams job), or point --nats-url at the NATS server they use`,
    ),
  );
}

/** A bus on a NATS server that Firebreak's services set up: its streams exist. */
export async function openBus(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Bus> {
  let bus: Bus;
  // nats.js ignores a URL's user:password: the login comes apart.
  const connecting = connectBus({ url, name: 'firebreak-cli', ...(await natsLogin(url)) });
  try {
    bus = await Promise.race([connecting, timeout(timeoutMs)]);
  } catch (err) {
    // A connection that completes after we gave up must not keep the process alive.
    void connecting.then((late) => late.close()).catch(() => {});
    if (err instanceof ConfigError) {
      throw new UsageError(
        redactUrl(`${err.message.replace(/^NATS/, `NATS at ${url}`)}; a running "firebreak up" or "firebreak lab" keeps its users' passwords in ${credentialsPath(stateDir())}`),
      );
    }
    throw cannotReach('NATS', url, err);
  }
  try {
    await Promise.race([requireStreams(bus, url), timeout(timeoutMs)]);
  } catch (err) {
    await bus.close().catch(() => {});
    if (err instanceof UsageError) throw err;
    throw new UsageError(redactUrl(`NATS at ${url} answered but JetStream did not: ${reason(err)}; run nats-server with -js (as \`firebreak up\` does)`));
  }
  return bus;
}

/** The URL as given; a running `up`/`lab`'s own Redis with the password it recorded. */
async function redisLogin(url: string): Promise<string> {
  const redis = (await recordedCredentials('redisUrl', url)).redis;
  return redis === undefined ? url : withUrlCredentials(url, redis);
}

/** Redis's answer to a missing or wrong password. */
const refusedLogin = /^(NOAUTH|WRONGPASS)\b/;

/** A store whose connection was proven, which gives up instead of retrying for ever. */
export async function openStore(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Store> {
  let store: Store;
  // ioredis rejects connect() with "Connection is closed"; the server's reason comes through onError.
  let refused: Error | undefined;
  try {
    store = createStore(await redisLogin(url), {
      redis: { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 1, retryStrategy: () => null },
      // Reported once, below, with the fix; ioredis would otherwise print every attempt.
      onError: (err) => void (refusedLogin.test(err.message) && (refused = err)),
    });
  } catch (err) {
    throw cannotReach('Redis', url, err);
  }
  try {
    await Promise.race([store.redis.connect(), timeout(timeoutMs)]);
  } catch (err) {
    store.redis.disconnect();
    if (refused !== undefined) {
      throw new UsageError(
        redactUrl(
          `Redis at ${url} refused the login (${refused.message.split(' ')[0] ?? ''}): give its password in the URL, redis://:PASSWORD@host:port; ` +
            `a running "firebreak up" or "firebreak lab" keeps its own in ${credentialsPath(stateDir())}, used for the URL it recorded`,
        ),
      );
    }
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
