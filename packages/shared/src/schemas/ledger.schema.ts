/**
 * The fleet ledger's entries: where every server runs and what every host is
 * now. The inventory describes hardware and seeds these once; after that the
 * ledger, not the inventory, is the truth of placement.
 */
import { z } from 'zod';
import { EpochMs, Id } from './common.schema.ts';

export const ServerPlacement = z.discriminatedUnion('state', [
  z.strictObject({ state: z.literal('bare-metal'), host: Id }),
  z.strictObject({ state: z.literal('vm'), hypervisor: Id }),
  /** Its host failed and a recovery is under way; `host` is where it last ran. */
  z.strictObject({ state: z.literal('down'), host: Id }),
  /** A recovery ended without placing it. */
  z.strictObject({ state: z.literal('unrecovered'), host: Id, reason: z.string().min(1) }),
  /** Never placed: the inventory assigns it nowhere. */
  z.strictObject({ state: z.literal('unplaced') }),
]);
export type ServerPlacement = z.infer<typeof ServerPlacement>;

export const HostStatus = z.discriminatedUnion('role', [
  /** Runs this server on bare metal. */
  z.strictObject({ role: z.literal('home'), server: Id }),
  /** A production host that runs nothing Firebreak knows of. */
  z.strictObject({ role: z.literal('idle') }),
  z.strictObject({ role: z.literal('spare') }),
  /** Runs its own low-priority work, which a recovery may preempt. */
  z.strictObject({ role: z.literal('repurposable') }),
  /** `converted`: made a hypervisor by a recovery, not one by inventory. */
  z.strictObject({ role: z.literal('hypervisor'), servers: z.array(Id), converted: z.boolean() }),
  z.strictObject({ role: z.literal('borrowed'), drill: Id }),
  z.strictObject({ role: z.literal('down') }),
  /** Came back after a failure while its work runs elsewhere: an operator decides what it becomes. */
  z.strictObject({ role: z.literal('quarantined'), reason: z.string().min(1) }),
]);
export type HostStatus = z.infer<typeof HostStatus>;

export const LedgerCause = z.strictObject({
  kind: z.enum(['inventory', 'incident', 'drill', 'move', 'detector', 'operator']),
  id: z.string().min(1),
});
export type LedgerCause = z.infer<typeof LedgerCause>;

const entryMeta = {
  /** Rises by one with every change: a writer names the version it changed. */
  version: z.number().int().positive(),
  since: EpochMs,
  why: LedgerCause,
  /** The fencing token of the planner that wrote it (0 for an operator's seed). */
  token: z.number().int().min(0),
};

export const ServerEntry = z.strictObject({ ...entryMeta, placement: ServerPlacement });
export type ServerEntry = z.infer<typeof ServerEntry>;

export const HostEntry = z.strictObject({ ...entryMeta, status: HostStatus });
export type HostEntry = z.infer<typeof HostEntry>;

/** One line of a server's or host's history: what it became, when and why. */
export const LedgerHistoryRecord = z.strictObject({
  at: EpochMs,
  version: z.number().int().positive(),
  why: LedgerCause,
  token: z.number().int().min(0),
  placement: ServerPlacement.optional(),
  status: HostStatus.optional(),
});
export type LedgerHistoryRecord = z.infer<typeof LedgerHistoryRecord>;
