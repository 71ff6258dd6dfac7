/**
 * Executors' side of fencing: a command carries its planner's lease token,
 * and a token older than the newest one seen for the site comes from a
 * planner that lost its lease. Check and record happen in one script, so two
 * executors racing with tokens 7 and 8 can never both accept 7 after 8.
 */
import type { Redis, Result } from 'ioredis';
import { z } from 'zod';
import { redisKeys } from './keys.ts';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fbFenceCheck(key: string, token: number): Result<unknown, Context>;
  }
}

// KEYS: newest-token. ARGV: token. Returns { accepted 0|1, newest }.
const CHECK = `
local newest = tonumber(redis.call('GET', KEYS[1]) or '-1')
local token = tonumber(ARGV[1])
if token < newest then return {0, newest} end
if token > newest then redis.call('SET', KEYS[1], ARGV[1]) end
return {1, token}
`;

const Reply = z.tuple([z.union([z.literal(0), z.literal(1)]), z.number().int()]);

export type FenceCheck = { accepted: true } | { accepted: false; newest: number };

export class FencingStore {
  constructor(private readonly redis: Redis) {
    redis.defineCommand('fbFenceCheck', { numberOfKeys: 1, lua: CHECK });
  }

  /** Accepts a token at least as new as any seen for the site, and remembers it. */
  async check(site: string, token: number): Promise<FenceCheck> {
    if (!Number.isSafeInteger(token) || token < 0) throw new Error(`fencing token must be a whole number ≥ 0, got ${token}`);
    const [accepted, newest] = Reply.parse(await this.redis.fbFenceCheck(redisKeys.newestFencingToken(site), token));
    return accepted === 1 ? { accepted: true } : { accepted: false, newest };
  }
}
