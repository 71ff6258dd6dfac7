/**
 * The fleet ledger: the one record of where every server runs and what every
 * host is. Each entry carries a version; a change names the versions it read
 * and the fencing token of the planner making it, and one script checks both
 * and applies the whole change (several entries, each with a history line),
 * or none of it. A deposed planner's write is refused, and so is a write
 * from a stale read.
 */
import type { Redis, Result } from 'ioredis';
import { z } from 'zod';
import { errorCodes, FirebreakError } from '../errors.ts';
import {
  HostEntry,
  LedgerHistoryRecord,
  ServerEntry,
  type HostStatus,
  type LedgerCause,
  type ServerPlacement,
} from '../schemas/ledger.schema.ts';
import { redisKeys } from './keys.ts';
import { decodeJson, encodeJson } from './stored-json.ts';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fbLedgerApply(numKeys: number, ...args: (string | number)[]): Result<unknown, Context>;
    fbLedgerSeed(numKeys: number, ...args: (string | number)[]): Result<unknown, Context>;
  }
}

// KEYS: servers, server versions, hosts, host versions, newest token, then one history list per change.
// ARGV: token, then per change: kind ('s'|'h'), id, expected version, entry JSON, history JSON.
// Returns {1} or {0, 'stale', newest} or {0, 'conflict', kind, id, version}.
const APPLY = `
local token = tonumber(ARGV[1])
local newest = tonumber(redis.call('GET', KEYS[5]) or '0')
if token < newest then return {0, 'stale', newest} end
local n = (#ARGV - 1) / 5
for i = 0, n - 1 do
  local b = 2 + i * 5
  local vkey = ARGV[b] == 's' and KEYS[2] or KEYS[4]
  local have = tonumber(redis.call('HGET', vkey, ARGV[b + 1]) or '0')
  if have ~= tonumber(ARGV[b + 2]) then return {0, 'conflict', ARGV[b], ARGV[b + 1], have} end
end
if token > newest then redis.call('SET', KEYS[5], ARGV[1]) end
for i = 0, n - 1 do
  local b = 2 + i * 5
  local ekey = ARGV[b] == 's' and KEYS[1] or KEYS[3]
  local vkey = ARGV[b] == 's' and KEYS[2] or KEYS[4]
  redis.call('HSET', ekey, ARGV[b + 1], ARGV[b + 3])
  redis.call('HSET', vkey, ARGV[b + 1], tonumber(ARGV[b + 2]) + 1)
  redis.call('RPUSH', KEYS[6 + i], ARGV[b + 4])
end
return {1}
`;

// KEYS: entries, versions, then one history list per entry. ARGV: per entry id, entry JSON, history JSON.
// Sets only entries that do not exist yet; returns how many it set.
const SEED = `
local added = 0
for i = 0, (#ARGV / 3) - 1 do
  local b = 1 + i * 3
  if redis.call('HSETNX', KEYS[2], ARGV[b], 1) == 1 then
    redis.call('HSET', KEYS[1], ARGV[b], ARGV[b + 1])
    redis.call('RPUSH', KEYS[3 + i], ARGV[b + 2])
    added = added + 1
  end
end
return added
`;

const ApplyReply = z.union([
  z.tuple([z.literal(1)]),
  z.tuple([z.literal(0), z.literal('stale'), z.number().int()]),
  z.tuple([z.literal(0), z.literal('conflict'), z.enum(['s', 'h']), z.string(), z.number().int()]),
]);

/**
 * A change refused because a newer planner has written since: the caller is
 * no longer the leader. Retryable: the event behind the change is the new
 * leader's to handle, so it must go back to the bus, not to the dead letters.
 */
export class StaleLedgerTokenError extends FirebreakError {
  override name = 'StaleLedgerTokenError';
  constructor(
    readonly token: number,
    readonly newest: number,
  ) {
    super(`the fleet ledger refused a change with fencing token ${token}: a planner with token ${newest} has written since`, {
      code: errorCodes.staleFencingToken,
      retryable: true,
    });
  }
}

/** A change refused because an entry it read has changed since. */
export class LedgerConflictError extends FirebreakError {
  override name = 'LedgerConflictError';
  constructor(
    readonly entity: 'server' | 'host',
    readonly id: string,
    readonly version: number,
  ) {
    super(`the fleet ledger's ${entity} "${id}" changed since it was read (now version ${version})`, { code: errorCodes.ledgerConflict, retryable: true });
  }
}

export interface LedgerState {
  servers: Map<string, ServerEntry>;
  hosts: Map<string, HostEntry>;
}

export interface LedgerChange {
  /** The site whose leader makes the change; its fencing token must be the newest the ledger saw for the site. */
  site: string;
  token: number;
  why: LedgerCause;
  at: number;
  /** `version`: the version read (0: the entry must not exist yet). */
  servers?: { id: string; version: number; placement: ServerPlacement }[];
  hosts?: { id: string; version: number; status: HostStatus }[];
}

export interface LedgerSeed {
  at: number;
  servers: Map<string, ServerPlacement>;
  hosts: Map<string, HostStatus>;
}

/** Seeds go in batches: one script call holds Redis for a bounded time even for 50,000 hosts. */
const SEED_BATCH = 1_000;

export class FleetLedger {
  constructor(private readonly redis: Redis) {
    redis.defineCommand('fbLedgerApply', { lua: APPLY });
    redis.defineCommand('fbLedgerSeed', { lua: SEED });
  }

  /** Applies every entry of the change or none; returns the new entries. */
  async apply(change: LedgerChange): Promise<{ servers: Map<string, ServerEntry>; hosts: Map<string, HostEntry> }> {
    const { token, why, at } = change;
    if (!Number.isSafeInteger(token) || token < 0) throw FirebreakError.permanent(`fencing token must be a whole number ≥ 0, got ${token}`);
    const servers = new Map<string, ServerEntry>();
    const hosts = new Map<string, HostEntry>();
    const keys = [redisKeys.ledgerServers, redisKeys.ledgerServerVersions, redisKeys.ledgerHosts, redisKeys.ledgerHostVersions, redisKeys.ledgerToken(change.site)];
    const args: (string | number)[] = [token];
    for (const s of change.servers ?? []) {
      const entry = ServerEntry.parse({ version: s.version + 1, since: at, why, token, placement: s.placement });
      servers.set(s.id, entry);
      keys.push(redisKeys.ledgerHistory('server', s.id));
      args.push('s', s.id, s.version, encodeJson(entry, `ledger entry of server "${s.id}"`), encodeJson(historyOf(entry), 'ledger history'));
    }
    for (const h of change.hosts ?? []) {
      const entry = HostEntry.parse({ version: h.version + 1, since: at, why, token, status: h.status });
      hosts.set(h.id, entry);
      keys.push(redisKeys.ledgerHistory('host', h.id));
      args.push('h', h.id, h.version, encodeJson(entry, `ledger entry of host "${h.id}"`), encodeJson(historyOf(entry), 'ledger history'));
    }
    if (servers.size + hosts.size === 0) return { servers, hosts };
    const reply = ApplyReply.parse(await this.redis.fbLedgerApply(keys.length, ...keys, ...args));
    if (reply[0] === 1) return { servers, hosts };
    if (reply[1] === 'stale') throw new StaleLedgerTokenError(token, reply[2]);
    throw new LedgerConflictError(reply[2] === 's' ? 'server' : 'host', reply[3], reply[4]);
  }

  /** Adds every entry the ledger does not have yet; leaves the rest as they are. Returns how many it added. */
  async seed(seed: LedgerSeed): Promise<{ servers: number; hosts: number }> {
    const why: LedgerCause = { kind: 'inventory', id: 'seed' };
    const servers = await this.seedEntries(
      [...seed.servers].map(([id, placement]) => [id, ServerEntry.parse({ version: 1, since: seed.at, why, token: 0, placement })]),
      'server',
    );
    const hosts = await this.seedEntries(
      [...seed.hosts].map(([id, status]) => [id, HostEntry.parse({ version: 1, since: seed.at, why, token: 0, status })]),
      'host',
    );
    return { servers, hosts };
  }

  async read(): Promise<LedgerState> {
    const [servers, hosts] = await Promise.all([this.redis.hgetall(redisKeys.ledgerServers), this.redis.hgetall(redisKeys.ledgerHosts)]);
    return {
      servers: new Map(Object.entries(servers).map(([id, text]) => [id, decodeJson(text, ServerEntry, `ledger entry of server "${id}"`)])),
      hosts: new Map(Object.entries(hosts).map(([id, text]) => [id, decodeJson(text, HostEntry, `ledger entry of host "${id}"`)])),
    };
  }

  async server(id: string): Promise<ServerEntry | undefined> {
    const text = await this.redis.hget(redisKeys.ledgerServers, id);
    return text === null ? undefined : decodeJson(text, ServerEntry, `ledger entry of server "${id}"`);
  }

  async host(id: string): Promise<HostEntry | undefined> {
    const text = await this.redis.hget(redisKeys.ledgerHosts, id);
    return text === null ? undefined : decodeJson(text, HostEntry, `ledger entry of host "${id}"`);
  }

  /** Oldest first. */
  async history(entity: 'server' | 'host', id: string): Promise<LedgerHistoryRecord[]> {
    const lines = await this.redis.lrange(redisKeys.ledgerHistory(entity, id), 0, -1);
    return lines.map((text) => decodeJson(text, LedgerHistoryRecord, `ledger history of ${entity} "${id}"`));
  }

  private async seedEntries(entries: [string, ServerEntry | HostEntry][], entity: 'server' | 'host'): Promise<number> {
    const [entryKey, versionKey] = entity === 'server' ? [redisKeys.ledgerServers, redisKeys.ledgerServerVersions] : [redisKeys.ledgerHosts, redisKeys.ledgerHostVersions];
    let added = 0;
    for (let i = 0; i < entries.length; i += SEED_BATCH) {
      const batch = entries.slice(i, i + SEED_BATCH);
      const keys = [entryKey, versionKey, ...batch.map(([id]) => redisKeys.ledgerHistory(entity, id))];
      const args = batch.flatMap(([id, entry]) => [id, encodeJson(entry, `ledger entry of ${entity} "${id}"`), encodeJson(historyOf(entry), 'ledger history')]);
      added += z.number().int().parse(await this.redis.fbLedgerSeed(keys.length, ...keys, ...args));
    }
    return added;
  }
}

function historyOf(entry: ServerEntry | HostEntry): LedgerHistoryRecord {
  const { version, since, why, token } = entry;
  return 'placement' in entry ? { at: since, version, why, token, placement: entry.placement } : { at: since, version, why, token, status: entry.status };
}
