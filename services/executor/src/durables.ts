/**
 * The executors' durable pull consumers on the FB_CMDS work queue: one per
 * command kind, filtered to `fb.cmd.<kind>`. Every executor process binds the
 * same durables, so each command still goes to exactly one executor, while
 * each kind has handler slots of its own: a burst of power commands never
 * queues a net command behind it. deploy/nats/nats.conf grants the executor
 * user exactly these; the streams job imports this module (it has no other
 * dependency) to delete the retired one.
 */
import { commandKinds, type CommandKind } from '@firebreak/shared';

export const executorDurable = (kind: CommandKind): string => `executor-${kind}`;

export const executorDurables: readonly string[] = commandKinds.map(executorDurable);

/**
 * The one durable that executors before the per-kind consumers shared, for
 * all of `fb.cmd.>`. Its filter overlaps every per-kind one, and a work-queue
 * stream refuses overlapping filters, so while it exists the executors
 * cannot start (they say so); the streams job deletes it.
 */
export const RETIRED_EXECUTOR_DURABLE = 'executor';
