/**
 * Incident snapshots: the planner saves each incident actor's persisted
 * snapshot after every transition and, on restart, resumes every incident in
 * the open set. A snapshot is only restored into the machine version that
 * wrote it: another version's states and context need not mean the same.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { FirebreakError, errorCodes } from '../errors.ts';
import { EpochMs } from '../schemas/common.schema.ts';
import { redisKeys } from './keys.ts';
import { execMulti } from './multi.ts';
import { decodeJson, encodeJson } from './stored-json.ts';

export const SnapshotEnvelope = z.object({
  /** The machine's `id`. */
  machineId: z.string().min(1),
  /** The machine's `version`, bumped whenever its states or context change shape. */
  machineVersion: z.string().min(1),
  /** `actor.getPersistedSnapshot()`, opaque here. */
  snapshot: z.unknown(),
  savedAt: EpochMs,
});
export type SnapshotEnvelope = z.infer<typeof SnapshotEnvelope>;

export interface MachineIdentity {
  machineId: string;
  machineVersion: string;
}

/** A snapshot exists but was written by another machine or machine version. */
export class SnapshotMismatchError extends FirebreakError {
  override name = 'SnapshotMismatchError';
  constructor(message: string) {
    super(message, { code: errorCodes.permanent, retryable: false });
  }
}

const DEFAULT_RETAIN_MS = 7 * 24 * 60 * 60 * 1000;

export class SnapshotStore {
  constructor(private readonly redis: Redis) {}

  /**
   * Stores the envelope and marks the incident open in one MULTI, so a
   * restarting planner never finds an open incident without a snapshot.
   * `savedAt` defaults to now. Saving a closed incident opens it again.
   */
  async save(
    incidentId: string,
    envelope: Omit<SnapshotEnvelope, 'savedAt'> & { savedAt?: number },
  ): Promise<SnapshotEnvelope> {
    const parsed = SnapshotEnvelope.safeParse({ ...envelope, savedAt: envelope.savedAt ?? Date.now() });
    if (!parsed.success) {
      throw FirebreakError.permanent(`snapshot of incident "${incidentId}" is not a valid envelope: ${z.prettifyError(parsed.error)}`);
    }
    const text = encodeJson(parsed.data, `snapshot of incident "${incidentId}"`);
    // A plain SET also drops any retention TTL left by an earlier close.
    await execMulti(
      this.redis.multi().set(redisKeys.snapshot(incidentId), text).sadd(redisKeys.openIncidents, incidentId),
      `saving snapshot of incident "${incidentId}"`,
    );
    return parsed.data;
  }

  /** Undefined if there is none; throws SnapshotMismatchError if `expected` did not write it. */
  async load(incidentId: string, expected: MachineIdentity): Promise<SnapshotEnvelope | undefined> {
    const text = await this.redis.get(redisKeys.snapshot(incidentId));
    if (text === null) return undefined;
    const envelope = decodeJson(text, SnapshotEnvelope, `snapshot of incident "${incidentId}"`);
    if (envelope.machineId !== expected.machineId || envelope.machineVersion !== expected.machineVersion) {
      throw new SnapshotMismatchError(
        `refusing to restore incident "${incidentId}": its snapshot was saved by machine "${envelope.machineId}" ` +
          `version "${envelope.machineVersion}", but this planner runs machine "${expected.machineId}" ` +
          `version "${expected.machineVersion}"`,
      );
    }
    return envelope;
  }

  /** Ids of incidents saved and not yet closed, sorted. */
  async listOpen(): Promise<string[]> {
    return (await this.redis.smembers(redisKeys.openIncidents)).sort();
  }

  /** Takes the incident out of the open set; its snapshot stays readable for `retainMs`, for reports. */
  async close(incidentId: string, retainMs: number = DEFAULT_RETAIN_MS): Promise<void> {
    if (!Number.isInteger(retainMs) || retainMs <= 0) {
      throw FirebreakError.permanent(`snapshot retention must be a positive whole number of milliseconds, got ${retainMs}`);
    }
    await execMulti(
      this.redis.multi().srem(redisKeys.openIncidents, incidentId).pexpire(redisKeys.snapshot(incidentId), retainMs),
      `closing incident "${incidentId}"`,
    );
  }
}
