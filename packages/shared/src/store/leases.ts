/**
 * Leases with fencing tokens: host claims (namespace `host`) and the
 * planner's per-site leader election (namespace `leader`) are the same thing.
 *
 * A lease is a hash `{ owner, token }` that expires by PX. Every new grant
 * takes its token from a per-lease counter (INCR in the same script), and the
 * counter never expires, so tokens only ever rise — whoever acts on a resource
 * can reject a holder whose lease has since passed to someone else. The
 * counter has no TTL, so Redis must not run with an `allkeys-*` eviction
 * policy.
 */
import type { Redis, Result } from 'ioredis';
import { z } from 'zod';
import { FirebreakError } from '../errors.ts';
import { leaseNamespace, redisKeys } from './keys.ts';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fbLeaseAcquire(lease: string, counter: string, owner: string, ttlMs: number): Result<unknown, Context>;
    fbLeaseRenew(lease: string, owner: string, ttlMs: number): Result<unknown, Context>;
    fbLeaseRelease(lease: string, owner: string): Result<unknown, Context>;
    fbLeaseHolder(lease: string): Result<unknown, Context>;
    fbLeaseRaise(lease: string, counter: string, owner: string, floor: number): Result<unknown, Context>;
  }
}

// KEYS: lease, counter. ARGV: owner, ttlMs. Returns { granted 0|1, owner, token, remaining ms }.
// The holder claiming again keeps its token and gets a fresh TTL, so a claim
// retried after a lost reply does not fail against the caller's own lease.
const ACQUIRE = `
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then
  local token = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, ARGV[1], token, tonumber(ARGV[2])}
end
local token = tonumber(redis.call('HGET', KEYS[1], 'token'))
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, owner, token, tonumber(ARGV[2])}
end
return {0, owner, token, redis.call('PTTL', KEYS[1])}
`;

// KEYS: lease (or lock). ARGV: owner, ttlMs. Returns 1 if the caller held it. Device locks share it.
export const RENEW = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

// KEYS: lease (or lock). ARGV: owner. Returns 1 if the caller held it. Device locks share it.
export const RELEASE = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

// KEYS: lease. Returns { owner, token, remaining ms }, or nil when nobody holds it.
const HOLDER = `
local lease = redis.call('HMGET', KEYS[1], 'owner', 'token')
if not lease[1] then return nil end
return {lease[1], tonumber(lease[2]), redis.call('PTTL', KEYS[1])}
`;

// KEYS: lease, counter. ARGV: owner, floor. The holder's token becomes more than the floor (and the counter
// with it, so later grants stay above it). Returns the token, or -1 if the caller does not hold the lease.
const RAISE = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return -1 end
local token = tonumber(redis.call('HGET', KEYS[1], 'token'))
local floor = tonumber(ARGV[2])
if token > floor then return token end
local counter = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), floor) + 1
redis.call('SET', KEYS[2], counter)
redis.call('HSET', KEYS[1], 'token', counter)
return counter
`;

const AcquireReply = z.tuple([z.union([z.literal(0), z.literal(1)]), z.string(), z.number().int(), z.number().int()]);
const FlagReply = z.union([z.literal(0), z.literal(1)]);
const HolderReply = z.tuple([z.string(), z.number().int(), z.number().int()]).nullable();

export interface LeaseHolder {
  owner: string;
  /** The fencing token handed out when this owner acquired the lease. */
  token: number;
  /** Milliseconds until the lease expires unless renewed. */
  expiresInMs: number;
}

export type AcquireResult = { acquired: true; token: number } | { acquired: false; holder: LeaseHolder };

function checkTtl(ttlMs: number): number {
  // PEXPIRE takes whole milliseconds; 0 or less would delete the lease on the spot.
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) {
    throw FirebreakError.permanent(`lease TTL must be a positive whole number of milliseconds, got ${ttlMs}`);
  }
  return ttlMs;
}

function checkOwner(owner: string): string {
  if (owner === '') throw FirebreakError.permanent('lease owner must not be empty');
  return owner;
}

/** The leader lease of a site's planners: its holder's token and owner are what executors obey. */
export const plannerLeaseKey = (site: string): string => `planner-${site}`;

export class LeaseStore {
  /** Groups leases: `host` for host claims, `leader` for leader election. */
  readonly namespace: string;

  constructor(
    private readonly redis: Redis,
    namespace: string,
  ) {
    this.namespace = leaseNamespace(namespace);
    redis.defineCommand('fbLeaseAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    redis.defineCommand('fbLeaseRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('fbLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('fbLeaseHolder', { numberOfKeys: 1, lua: HOLDER, readOnly: true });
    redis.defineCommand('fbLeaseRaise', { numberOfKeys: 2, lua: RAISE });
  }

  /** Exactly one of any number of concurrent claimers wins; the others learn who holds it. */
  async acquire(id: string, owner: string, ttlMs: number): Promise<AcquireResult> {
    const reply = await this.redis.fbLeaseAcquire(
      redisKeys.lease(this.namespace, id),
      redisKeys.fencingCounter(this.namespace, id),
      checkOwner(owner),
      checkTtl(ttlMs),
    );
    const [granted, holder, token, expiresInMs] = AcquireReply.parse(reply);
    return granted === 1 ? { acquired: true, token } : { acquired: false, holder: { owner: holder, token, expiresInMs } };
  }

  /** Extends the lease to `ttlMs` from now; false if the caller no longer holds it. */
  async renew(id: string, owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.redis.fbLeaseRenew(redisKeys.lease(this.namespace, id), checkOwner(owner), checkTtl(ttlMs));
    return FlagReply.parse(reply) === 1;
  }

  /** Gives the lease up; false if the caller did not hold it (it expired, or someone else holds it). */
  async release(id: string, owner: string): Promise<boolean> {
    const reply = await this.redis.fbLeaseRelease(redisKeys.lease(this.namespace, id), checkOwner(owner));
    return FlagReply.parse(reply) === 1;
  }

  /**
   * Lifts the holder's token above `floor` (a token handed out before Redis
   * lost its data); returns the token, or undefined if the caller no longer holds the lease.
   */
  async raiseAbove(id: string, owner: string, floor: number): Promise<number | undefined> {
    if (!Number.isSafeInteger(floor) || floor < 0) throw FirebreakError.permanent(`token floor must be a whole number ≥ 0, got ${floor}`);
    const reply = z.number().int().parse(await this.redis.fbLeaseRaise(redisKeys.lease(this.namespace, id), redisKeys.fencingCounter(this.namespace, id), checkOwner(owner), floor));
    return reply < 0 ? undefined : reply;
  }

  async holder(id: string): Promise<LeaseHolder | undefined> {
    const reply = HolderReply.parse(await this.redis.fbLeaseHolder(redisKeys.lease(this.namespace, id)));
    if (reply === null) return undefined;
    const [owner, token, expiresInMs] = reply;
    return { owner, token, expiresInMs };
  }
}
