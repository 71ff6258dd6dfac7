/**
 * The executor service: consumes FB_CMDS as a shared work queue, one durable
 * per command kind, and runs each command once.
 */
import type { z } from 'zod';
import { commandKinds, FirebreakError, streams, subjects, topics, type Bus, type Command, type CommandKind, type ConsumerHandle, type Inventory, type Logger, type Store, type Topic } from '@firebreak/shared';
import { busResultSink, CommandRunner, type CommandDrivers, type CommandRunnerOptions } from './command-runner.ts';
import { executorDurable, RETIRED_EXECUTOR_DURABLE } from './durables.ts';

export interface ExecutorLimits {
  /**
   * Commands of a kind this process runs at once: the handler slots of that
   * kind's consumer, so a kind at its limit pulls no more and leaves the
   * other kinds' slots alone. FB_EXEC_PER_KIND_<KIND>, else `defaultPerKind`.
   */
  perKind: Partial<Record<CommandKind, number>>;
  defaultPerKind: number;
  perDevice: CommandRunnerOptions['limits']['perDevice'];
}

export interface ExecutorOptions {
  inventory: Inventory;
  bus: Bus;
  store: Store;
  logger: Logger;
  executorId: string;
  drivers: CommandDrivers & { close(): Promise<void> };
  limits: ExecutorLimits;
  retry: CommandRunnerOptions['retry'];
  ackWaitMs?: number;
}

export interface Executor {
  readonly runner: CommandRunner;
  stop(): Promise<void>;
}

const kindLimit = (limits: ExecutorLimits, kind: CommandKind): number => limits.perKind[kind] ?? limits.defaultPerKind;

export async function startExecutor(options: ExecutorOptions): Promise<Executor> {
  const runner = new CommandRunner({
    store: options.store,
    drivers: options.drivers,
    results: busResultSink(options.bus),
    executorId: options.executorId,
    logger: options.logger,
    limits: { perDevice: options.limits.perDevice },
    retry: options.retry,
  });
  const consume = (kind: CommandKind): Promise<ConsumerHandle> => {
    // The kind's own schema: a message on fb.cmd.power that is not a valid power command is dead-lettered with the reason.
    const topic: Topic<z.ZodType<Command>> = topics.command(kind);
    return options.bus.consume({
      topic,
      durable: executorDurable(kind),
      concurrency: kindLimit(options.limits, kind),
      ...(options.ackWaitMs !== undefined && { ackWaitMs: options.ackWaitMs }),
      handler: async (command, ctx) => {
        await runner.handle(command, ctx.deliveries);
      },
    });
  };
  const started = await Promise.allSettled(commandKinds.map((kind) => consume(kind)));
  const consumers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failures = commandKinds.flatMap((kind, i) => {
    const s = started[i];
    return s?.status === 'rejected' ? [{ kind, err: s.reason as unknown }] : [];
  });
  if (failures.length > 0) {
    await Promise.all(consumers.map((c) => c.stop()));
    await options.drivers.close();
    const overlapping = failures.filter((f) => isOverlapOnWorkQueue(f.err));
    throw overlapping.length > 0 ? overlapError(overlapping.map((f) => f.kind), overlapping[0]?.err) : failures[0]?.err;
  }
  return {
    runner,
    stop: async () => {
      await Promise.all(consumers.map((c) => c.stop()));
      await options.drivers.close();
    },
  };
}

/** JetStream's "filtered consumer not unique on workqueue stream" (JSConsumerWQConsumerNotUniqueErr). */
const WORK_QUEUE_FILTER_OVERLAP = 10100;

function isOverlapOnWorkQueue(err: unknown): boolean {
  const apiError = (err as { api_error?: { err_code?: unknown } } | null)?.api_error;
  return apiError?.err_code === WORK_QUEUE_FILTER_OVERLAP;
}

/** The server says only that filters overlap; what overlaps after an upgrade is the durable older executors shared. */
function overlapError(kinds: readonly CommandKind[], cause: unknown): FirebreakError {
  const durables = kinds.map((kind) => `${executorDurable(kind)} (${subjects.command(kind)})`).join(', ');
  return FirebreakError.permanent(
    `cannot create the durables ${durables} on ${streams.commands}: a work-queue stream refuses consumers whose filters overlap, ` +
      `and another consumer there already takes these subjects, most likely the durable "${RETIRED_EXECUTOR_DURABLE}" (${subjects.commandsAll}) ` +
      `that all kinds shared before each had its own. Once no executor of that older version runs, delete it: run the streams job as the NATS admin ` +
      `(deploy/bin/ensure-streams.ts; deploy/README.md, "Upgrading") or \`nats consumer rm ${streams.commands} ${RETIRED_EXECUTOR_DURABLE}\`. ` +
      'Commands it holds stay in the work queue and go to the new durables.',
    cause,
  );
}
