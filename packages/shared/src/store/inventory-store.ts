/**
 * The inventory document and the server → host assignments. Schemas come from
 * the caller (the inventory and assignment schemas live in `schemas/`), so
 * this module only stores JSON and checks it on the way out.
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

  async setAssignment(serverId: string, assignment: unknown): Promise<void> {
    await this.redis.hset(redisKeys.assignments, serverId, encodeJson(assignment, `assignment of server "${serverId}"`));
  }

  async getAssignment<T>(serverId: string, schema: z.ZodType<T>): Promise<T | undefined> {
    const text = await this.redis.hget(redisKeys.assignments, serverId);
    return text === null ? undefined : this.decodeAssignment(serverId, text, schema);
  }

  /** Returns whether the server had an assignment. */
  async deleteAssignment(serverId: string): Promise<boolean> {
    return (await this.redis.hdel(redisKeys.assignments, serverId)) === 1;
  }

  /** Every assignment by server id, in server id order. */
  async listAssignments<T>(schema: z.ZodType<T>): Promise<Map<string, T>> {
    const all = await this.redis.hgetall(redisKeys.assignments);
    const entries = Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return new Map(entries.map(([serverId, text]) => [serverId, this.decodeAssignment(serverId, text, schema)]));
  }

  private decodeAssignment<T>(serverId: string, text: string, schema: z.ZodType<T>): T {
    return decodeJson(text, schema, `assignment of server "${serverId}"`, errorCodes.invalidInventory);
  }
}
