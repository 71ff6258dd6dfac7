/**
 * Idempotency records: the first caller to `begin` a key does the work and
 * `complete`s it with a JSON result; everyone after gets the record instead
 * (still pending, or done with the result), so redelivered commands are not
 * carried out twice.
 */
import type { Redis, Result } from 'ioredis';
import { z } from 'zod';
import { FirebreakError } from '../errors.ts';
import { redisKeys } from './keys.ts';
import { checkStored, decodeJson, encodeJson } from './stored-json.ts';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fbIdemBegin(key: string, pending: string, ttlMs: number): Result<unknown, Context>;
    fbIdemComplete(key: string, done: string, ttlMs: number): Result<unknown, Context>;
    fbIdemAbandon(key: string, pending: string): Result<unknown, Context>;
  }
}

// KEYS: record. ARGV: pending record, ttlMs. Returns nil to the first writer,
// else the existing record — in one script, so it cannot expire in between.
const BEGIN = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return nil end
return redis.call('GET', KEYS[1])
`;

// KEYS: record. ARGV: done record, ttlMs. Keeps the TTL `begin` set; if the
// record expired while the work ran, the result is still worth keeping.
const COMPLETE = `
if not redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
`;

// KEYS: record. ARGV: pending record. Deletes only a pending record: a result is never thrown away.
const ABANDON = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/** Stored as JSON; `result` is whatever JSON the worker completed with. */
const StoredRecord = z.discriminatedUnion('state', [
  z.object({ state: z.literal('pending') }),
  z.object({ state: z.literal('done'), result: z.json() }),
]);

// Exact bytes matter: ABANDON compares the stored string with this one.
const PENDING = JSON.stringify({ state: 'pending' });

const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;

export type IdempotencyRecord<T = unknown> = { state: 'pending' } | { state: 'done'; result: T };

export type BeginResult<T = unknown> = { first: true } | { first: false; record: IdempotencyRecord<T> };

function checkTtl(ttlMs: number): number {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) {
    throw FirebreakError.permanent(`idempotency TTL must be a positive whole number of milliseconds, got ${ttlMs}`);
  }
  return ttlMs;
}

export class IdempotencyStore {
  private readonly defaultTtlMs: number;

  constructor(
    private readonly redis: Redis,
    /** How long a record lives from `begin` (or from `complete`, if it had expired by then). */
    options: { defaultTtlMs?: number } = {},
  ) {
    this.defaultTtlMs = checkTtl(options.defaultTtlMs ?? DEFAULT_TTL_MS);
    redis.defineCommand('fbIdemBegin', { numberOfKeys: 1, lua: BEGIN });
    redis.defineCommand('fbIdemComplete', { numberOfKeys: 1, lua: COMPLETE });
    redis.defineCommand('fbIdemAbandon', { numberOfKeys: 1, lua: ABANDON });
  }

  /** First writer wins: `{ first: true }` means the caller does the work and must `complete` (or `abandon`) it. */
  begin(key: string, ttlMs?: number): Promise<BeginResult>;
  begin<T>(key: string, ttlMs: number | undefined, schema: z.ZodType<T>): Promise<BeginResult<T>>;
  async begin<T>(key: string, ttlMs?: number, schema?: z.ZodType<T>): Promise<BeginResult<T | unknown>> {
    const existing = await this.redis.fbIdemBegin(redisKeys.idempotency(key), PENDING, checkTtl(ttlMs ?? this.defaultTtlMs));
    if (existing === null) return { first: true };
    return { first: false, record: this.decode(key, z.string().parse(existing), schema) };
  }

  async complete(key: string, result: unknown): Promise<void> {
    // Encoded on its own: inside an object, JSON.stringify would silently drop an undefined or function result.
    const done = `{"state":"done","result":${encodeJson(result, `result of "${key}"`)}}`;
    await this.redis.fbIdemComplete(redisKeys.idempotency(key), done, this.defaultTtlMs);
  }

  /**
   * Drops a pending record so a retry can begin again (after work that failed
   * without effect). A completed record stays; returns whether one was dropped.
   */
  async abandon(key: string): Promise<boolean> {
    return (await this.redis.fbIdemAbandon(redisKeys.idempotency(key), PENDING)) === 1;
  }

  get(key: string): Promise<IdempotencyRecord | undefined>;
  get<T>(key: string, schema: z.ZodType<T>): Promise<IdempotencyRecord<T> | undefined>;
  async get<T>(key: string, schema?: z.ZodType<T>): Promise<IdempotencyRecord<T | unknown> | undefined> {
    const text = await this.redis.get(redisKeys.idempotency(key));
    return text === null ? undefined : this.decode(key, text, schema);
  }

  private decode<T>(key: string, text: string, schema: z.ZodType<T> | undefined): IdempotencyRecord<T | unknown> {
    const record = decodeJson(text, StoredRecord, `idempotency record "${key}"`);
    if (record.state === 'pending' || schema === undefined) return record;
    return { state: 'done', result: checkStored(record.result, schema, `result of "${key}"`) };
  }
}
