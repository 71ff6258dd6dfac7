/**
 * Per-device locks across every executor process: all changes to one switch
 * or one storage array happen one at a time. A switch's VLAN PortList is
 * written whole, so a change to one port is a read-modify-write of a list
 * other ports share, and two executors interleaving their reads and SETs
 * undo each other's ports (issue #16).
 *
 * A lock is a hash `{ owner, site, token }` with a short PX expiry, renewed
 * while held, so the lock of an executor that died frees itself within its
 * TTL (3 s by default). The owner is unique per hold, not per executor: two
 * commands of one executor exclude each other too. Locks are per device, so
 * changes to different switches and arrays run side by side.
 *
 * What the fencing token buys. A switch cannot check a token (SNMP has no
 * conditional SET), so the token is checked here, at every acquisition: the
 * lock remembers per device and site the newest planner token that asked
 * for it and from then on refuses older ones. A command from a planner that
 * lost its lease thus cannot change a device once a command of its successor
 * has asked for it, even one that passed the executor's lease check before
 * the handover and is still retrying. A holder is not stopped mid-change: the
 * step in hand finishes, read-back included, and the newer command reads the
 * device after it. What no token can stop is an executor paused (GC,
 * SIGSTOP) past its lock's expiry between its last look at the lock and its
 * SET. Against that, the holder's signal is aborted as soon as the lock can
 * no longer be shown to be held (a renewal refused, or none confirmed within
 * most of the TTL), drivers check that signal before every request, and the
 * read-back after a write notices a PortList someone else wrote since.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis, Result } from 'ioredis';
import { z } from 'zod';
import { errorCodes, FirebreakError } from '../errors.ts';
import { redisKeys } from './keys.ts';
import { RELEASE, RENEW } from './leases.ts';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fbDeviceLockAcquire(lock: string, tokens: string, owner: string, site: string, token: number, ttlMs: number): Result<unknown, Context>;
    fbDeviceLockRenew(lock: string, owner: string, ttlMs: number): Result<unknown, Context>;
    fbDeviceLockRelease(lock: string, owner: string): Result<unknown, Context>;
    fbDeviceLockHolder(lock: string): Result<unknown, Context>;
  }
}

// KEYS: lock, newest tokens per site. ARGV: owner, site, token, ttlMs.
// Returns { 1 } granted, { 0, owner, site, token, remaining ms } held by another, { 2, newest } stale token.
// The newest token is raised even when the lock is busy: the older holder finishes its step, but no later one.
const ACQUIRE = `
local token = tonumber(ARGV[3])
local newest = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '-1')
if token < newest then return {2, newest} end
if token > newest then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
local holder = redis.call('HMGET', KEYS[1], 'owner', 'site', 'token')
if holder[1] and holder[1] ~= ARGV[1] then
  return {0, holder[1], holder[2], tonumber(holder[3]), redis.call('PTTL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'site', ARGV[2], 'token', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1}
`;

// Renewing and releasing check the owner exactly as a lease does (leases.ts).

// KEYS: lock. Returns { owner, site, token, remaining ms }, or nil.
const HOLDER = `
local holder = redis.call('HMGET', KEYS[1], 'owner', 'site', 'token')
if not holder[1] then return nil end
return {holder[1], holder[2], tonumber(holder[3]), redis.call('PTTL', KEYS[1])}
`;

const AcquireReply = z.union([
  z.tuple([z.literal(1)]),
  z.tuple([z.literal(0), z.string(), z.string(), z.number().int(), z.number().int()]),
  z.tuple([z.literal(2), z.number().int()]),
]);
const FlagReply = z.union([z.literal(0), z.literal(1)]);
const HolderReply = z.tuple([z.string(), z.string(), z.number().int(), z.number().int()]).nullable();

/** Who asks for a device: the command's site and planner fencing token, and a name for messages. */
export interface DeviceLockClaim {
  site: string;
  token: number;
  /** E.g. `exec-a/c-1234` (executor and command); the lock's owner is this plus a per-hold suffix. */
  holder: string;
}

export interface DeviceLockHolder {
  owner: string;
  site: string;
  token: number;
  /** Until the lock expires unless renewed. */
  expiresInMs: number;
}

export type DeviceLockAttempt = { acquired: true } | { acquired: false; holder: DeviceLockHolder } | { acquired: false; newest: number };

/** What a caller that changes devices needs: `work` runs while `device` is held, `held` aborts if the lock is lost. */
export interface DeviceLocking {
  hold<T>(device: string, claim: DeviceLockClaim, signal: AbortSignal, work: (held: AbortSignal) => Promise<T>): Promise<T>;
}

export interface DeviceLockOptions {
  /** Expiry of a lock nobody renews: how soon a dead executor's device frees itself. Default 3 s. */
  ttlMs?: number;
  /** Backoff between attempts on a busy device. Default 5 ms doubling to 50 ms. */
  retry?: { initialMs: number; maxMs: number };
}

const DEFAULT_TTL_MS = 3_000;
const DEFAULT_RETRY = { initialMs: 5, maxMs: 50 } as const;
/** The holder trusts its lock for this share of the TTL after a confirmed renewal was sent: room for timers firing late. */
const TRUSTED_SHARE = 0.8;

function checkClaim(claim: DeviceLockClaim): void {
  if (!Number.isSafeInteger(claim.token) || claim.token < 0) throw FirebreakError.permanent(`fencing token must be a whole number ≥ 0, got ${claim.token}`);
  if (claim.holder === '') throw FirebreakError.permanent('device lock holder must not be empty');
}

const describeHolder = (h: DeviceLockHolder): string => `${h.owner} (site ${h.site}, token ${h.token}, ${Math.max(0, h.expiresInMs)} ms left)`;

function waitedTooLong(device: string, waitedMs: number, holder: DeviceLockHolder | undefined): FirebreakError {
  const by = holder === undefined ? 'earlier changes of this executor' : describeHolder(holder);
  return new FirebreakError(`gave up waiting for the lock on ${device} after ${waitedMs} ms (the command's deadline): held by ${by}`, { code: errorCodes.timeout, retryable: true });
}

/** Resolves when `turn` does; rejects as soon as `signal` aborts. */
function abortable(turn: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    turn.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
    );
  });
}

/**
 * One FIFO per device inside this process, so a process sends Redis one
 * waiter per device rather than one per command. A caller whose signal
 * aborts leaves the queue at once without holding up those behind it.
 */
class LocalQueue {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, signal: AbortSignal, onAbort: (waitedMs: number) => Error, work: () => Promise<T>): Promise<T> {
    const ahead = this.#tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = ahead.then(() => mine);
    this.#tails.set(key, tail);
    const started = Date.now();
    try {
      try {
        await abortable(ahead, signal);
      } catch {
        throw onAbort(Date.now() - started);
      }
      return await work();
    } finally {
      done();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

/** Serialises changes per device within this process only: for tests and tools that run one executor. */
export class ProcessDeviceLocks implements DeviceLocking {
  readonly #queue = new LocalQueue();

  hold<T>(device: string, claim: DeviceLockClaim, signal: AbortSignal, work: (held: AbortSignal) => Promise<T>): Promise<T> {
    checkClaim(claim);
    return this.#queue.run(device, signal, (waited) => waitedTooLong(device, waited, undefined), () => work(signal));
  }
}

/** Redis-backed device locks shared by every executor; see the module comment. */
export class DeviceLocks implements DeviceLocking {
  readonly #ttlMs: number;
  readonly #retry: { initialMs: number; maxMs: number };
  readonly #queue = new LocalQueue();

  constructor(
    private readonly redis: Redis,
    options: DeviceLockOptions = {},
  ) {
    this.#ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    if (!Number.isInteger(this.#ttlMs) || this.#ttlMs < 30) throw FirebreakError.permanent(`device lock TTL must be a whole number of milliseconds ≥ 30, got ${this.#ttlMs}`);
    this.#retry = options.retry ?? DEFAULT_RETRY;
    redis.defineCommand('fbDeviceLockAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    redis.defineCommand('fbDeviceLockRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('fbDeviceLockRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('fbDeviceLockHolder', { numberOfKeys: 1, lua: HOLDER, readOnly: true });
  }

  /** One attempt: granted, busy (with its holder), or refused for a token older than one that already asked. */
  async acquire(device: string, owner: string, claim: Pick<DeviceLockClaim, 'site' | 'token'>, ttlMs = this.#ttlMs): Promise<DeviceLockAttempt> {
    const reply = AcquireReply.parse(
      await this.redis.fbDeviceLockAcquire(redisKeys.deviceLock(device), redisKeys.deviceLockTokens(device), owner, claim.site, claim.token, ttlMs),
    );
    if (reply[0] === 1) return { acquired: true };
    if (reply[0] === 2) return { acquired: false, newest: reply[1] };
    const [, holder, site, token, expiresInMs] = reply;
    return { acquired: false, holder: { owner: holder, site, token, expiresInMs } };
  }

  async renew(device: string, owner: string, ttlMs = this.#ttlMs): Promise<boolean> {
    return FlagReply.parse(await this.redis.fbDeviceLockRenew(redisKeys.deviceLock(device), owner, ttlMs)) === 1;
  }

  async release(device: string, owner: string): Promise<boolean> {
    return FlagReply.parse(await this.redis.fbDeviceLockRelease(redisKeys.deviceLock(device), owner)) === 1;
  }

  async holder(device: string): Promise<DeviceLockHolder | undefined> {
    const reply = HolderReply.parse(await this.redis.fbDeviceLockHolder(redisKeys.deviceLock(device)));
    if (reply === null) return undefined;
    const [owner, site, token, expiresInMs] = reply;
    return { owner, site, token, expiresInMs };
  }

  /**
   * Waits for `device` (until `signal` aborts), runs `work` while holding
   * it, then lets it go. `held` aborts with a LEASE_LOST error when the lock
   * can no longer be shown to be held; `work` must pass it to every device
   * request. A token older than one that already asked for the device is
   * refused (STALE_FENCING_TOKEN, not retryable) and nothing runs.
   */
  hold<T>(device: string, claim: DeviceLockClaim, signal: AbortSignal, work: (held: AbortSignal) => Promise<T>): Promise<T> {
    checkClaim(claim);
    const owner = `${claim.holder}#${randomBytes(4).toString('hex')}`;
    let holder: DeviceLockHolder | undefined;
    return this.#queue.run(
      device,
      signal,
      (waited) => waitedTooLong(device, waited, holder),
      async () => {
        const started = Date.now();
        let delay = this.#retry.initialMs;
        for (;;) {
          const sentAt = Date.now();
          const attempt = await this.acquire(device, owner, claim);
          if (attempt.acquired) return this.#whileHeld(device, owner, sentAt, signal, work);
          if ('newest' in attempt) {
            throw new FirebreakError(
              `${device}: fencing token ${claim.token} of site ${claim.site} is older than ${attempt.newest}, which a newer planner's command already used on it; nothing was changed`,
              { code: errorCodes.staleFencingToken, retryable: false },
            );
          }
          holder = attempt.holder;
          // Never longer than the holder has left: a lock that expires is taken at once.
          const pause = Math.max(1, Math.min(delay, attempt.holder.expiresInMs) * (0.5 + Math.random() / 2));
          try {
            await sleep(pause, undefined, { signal });
          } catch {
            throw waitedTooLong(device, Date.now() - started, holder);
          }
          delay = Math.min(delay * 2, this.#retry.maxMs);
        }
      },
    );
  }

  async #whileHeld<T>(device: string, owner: string, grantedAt: number, signal: AbortSignal, work: (held: AbortSignal) => Promise<T>): Promise<T> {
    const ttl = this.#ttlMs;
    const lost = new AbortController();
    const lose = (why: string): void => {
      if (!lost.signal.aborted) lost.abort(new FirebreakError(`lost the lock on ${device} (${owner}) mid-change: ${why}; the step stopped and is retried from a fresh read`, { code: errorCodes.leaseLost, retryable: true }));
    };
    // Trusted only while a renewal sent recently enough was confirmed; Redis expires it later than that.
    let expiry = setTimeout(() => lose(`no renewal confirmed within ${Math.round(ttl * TRUSTED_SHARE)} ms (Redis unreachable?)`), ttl * TRUSTED_SHARE - (Date.now() - grantedAt));
    let renewing = false;
    const renewal = setInterval(() => {
      if (renewing || lost.signal.aborted) return;
      renewing = true;
      const sentAt = Date.now();
      this.renew(device, owner).then(
        (still) => {
          renewing = false;
          if (!still) return lose('it expired and was taken, or removed');
          clearTimeout(expiry);
          expiry = setTimeout(() => lose(`no renewal confirmed within ${Math.round(ttl * TRUSTED_SHARE)} ms (Redis unreachable?)`), ttl * TRUSTED_SHARE - (Date.now() - sentAt));
        },
        // A failed renewal is retried on the next tick; the expiry timer decides when to give up.
        () => (renewing = false),
      );
    }, ttl / 3);
    try {
      return await work(AbortSignal.any([signal, lost.signal]));
    } catch (err) {
      if (lost.signal.aborted) throw Object.assign(lost.signal.reason as FirebreakError, { cause: err });
      throw err;
    } finally {
      clearInterval(renewal);
      clearTimeout(expiry);
      // Best effort: a lock not released expires by itself within its TTL.
      await this.release(device, owner).catch(() => false);
    }
  }
}
