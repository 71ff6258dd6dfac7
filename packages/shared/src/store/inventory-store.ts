/**
 * The imported inventory document. Its schema comes from the caller (it lives
 * in `schemas/`), so this module only stores JSON and checks it on the way
 * out. Where servers run now is the fleet ledger's, not the inventory's.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errorCodes } from '../errors.ts';
import { redisKeys } from './keys.ts';
import { execMulti } from './multi.ts';
import { decodeJson, encodeJson } from './stored-json.ts';

export interface VersionedInventory<T> {
  /** Rises by one with every `putInventory`. */
  version: number;
  inventory: T;
}

const Version = z.coerce.number().int().positive();

export class InventoryStore {
  constructor(private readonly redis: Redis) {}

  /**
   * Replaces the whole document and bumps its version in one MULTI on one
   * hash, so a reader gets the old document or the new one, with its own
   * version, never a mix. Returns the new version.
   */
  async putInventory(doc: unknown): Promise<number> {
    const text = encodeJson(doc, 'inventory');
    const [, version] = await execMulti(
      this.redis.multi().hset(redisKeys.inventory, 'doc', text).hincrby(redisKeys.inventory, 'version', 1),
      'replacing the inventory',
    );
    return Version.parse(version);
  }

  /** Undefined before the first put; throws (INVALID_INVENTORY) if the stored document fails `schema`. */
  async getInventory<T>(schema: z.ZodType<T>): Promise<VersionedInventory<T> | undefined> {
    const [text, version] = await this.redis.hmget(redisKeys.inventory, 'doc', 'version');
    if (text === null || text === undefined) return undefined;
    return {
      version: Version.parse(version),
      inventory: decodeJson(text, schema, 'inventory', errorCodes.invalidInventory),
    };
  }
}
