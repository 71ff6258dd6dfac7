/**
 * The Redis store: one client, and the stores that share it.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { IdempotencyStore } from './idempotency.ts';
import { InventoryStore } from './inventory-store.ts';
import { LeaseStore } from './leases.ts';
import { SnapshotStore } from './snapshots.ts';
import { FleetLedger } from './fleet-ledger.ts';
import { DeviceLocks } from './device-locks.ts';
import { DrillReports } from './drill-reports.ts';

export { redisKeys } from './keys.ts';
export { LeaseStore, plannerLeaseKey, type AcquireResult, type LeaseHolder } from './leases.ts';
export { IdempotencyStore, type BeginResult, type IdempotencyRecord } from './idempotency.ts';
export { SnapshotStore, SnapshotEnvelope, SnapshotMismatchError, type MachineIdentity } from './snapshots.ts';
export { InventoryStore, type VersionedInventory } from './inventory-store.ts';
export { DeviceLocks, ProcessDeviceLocks, type DeviceLockAttempt, type DeviceLockClaim, type DeviceLockHolder, type DeviceLocking, type DeviceLockOptions } from './device-locks.ts';
export { DrillReports, DrillReport, DrillRequest, DrillServerReport, ScheduleSlot, drillVerdict, describeCleanupItem, type DrillReportsOptions, type DrillVerdict, type DrillVerdictInput, type SlotClaim } from './drill-reports.ts';
export { FleetLedger, LedgerConflictError, StaleLedgerTokenError, type LedgerChange, type LedgerSeed, type LedgerState } from './fleet-ledger.ts';

export const leaseNamespaces = {
  /** Host claims: a host is never given to two incidents. */
  host: 'host',
  /** Leader election, e.g. `planner:<site>`: only the holder acts. */
  leader: 'leader',
} as const;

export interface StoreOptions {
  /** Overrides for the ioredis client, on top of the defaults below. Replies are read in ioredis's legacy shapes. */
  redis?: Omit<RedisOptions, 'replyMapping'>;
  /** Connection errors; ioredis reconnects by itself, so these are for logging. Without it ioredis prints them. */
  onError?: (err: Error) => void;
  /** How long idempotency records live. */
  idempotencyTtlMs?: number;
}

export class Store {
  readonly leases: LeaseStore;
  readonly leaderLeases: LeaseStore;
  readonly idempotency: IdempotencyStore;
  readonly snapshots: SnapshotStore;
  readonly inventory: InventoryStore;
  readonly ledger: FleetLedger;
  /** Changes to one switch or array, one at a time across every executor. */
  readonly deviceLocks: DeviceLocks;
  /** Drill requests, finished drills' reports, drill schedules' slots. */
  readonly drills: DrillReports;

  constructor(
    readonly redis: Redis,
    options: Pick<StoreOptions, 'idempotencyTtlMs'> = {},
  ) {
    this.leases = new LeaseStore(redis, leaseNamespaces.host);
    this.leaderLeases = new LeaseStore(redis, leaseNamespaces.leader);
    this.idempotency = new IdempotencyStore(
      redis,
      options.idempotencyTtlMs === undefined ? {} : { defaultTtlMs: options.idempotencyTtlMs },
    );
    this.snapshots = new SnapshotStore(redis);
    this.inventory = new InventoryStore(redis);
    this.ledger = new FleetLedger(redis);
    this.deviceLocks = new DeviceLocks(redis);
    this.drills = new DrillReports(redis);
  }

  /** Waits for replies already sent, then disconnects. */
  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    try {
      await this.redis.quit();
    } catch {
      // QUIT fails when the connection is already gone; nothing is left to flush.
      this.redis.disconnect();
    }
  }
}

export function createStore(redisUrl: string, options: StoreOptions = {}): Store {
  const redis = new Redis(redisUrl, {
    lazyConnect: false,
    // Fail a command after a few reconnect attempts rather than hold it for
    // minutes: callers treat the error as transient and retry with their own
    // deadlines (a lease holder must notice it can no longer renew).
    maxRetriesPerRequest: 3,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 5_000),
    // Commands issued in the same tick go out in one write: an executor with
    // dozens of commands in flight makes far fewer socket writes.
    enableAutoPipelining: true,
    ...options.redis,
  });
  if (options.onError) redis.on('error', options.onError);
  return new Store(redis, options);
}
