/**
 * The executor service: consumes FB_CMDS as a shared work queue, one durable
 * per command kind, and runs each command once.
 */
import type { z } from 'zod';
import { commandKinds, topics, type Bus, type Command, type CommandKind, type ConsumerHandle, type Inventory, type Logger, type Store, type Topic } from '@firebreak/shared';
import { busResultSink, CommandRunner, type CommandDrivers, type CommandRunnerOptions } from './command-runner.ts';
import { executorDurable } from './durables.ts';

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

export const kindLimit = (limits: ExecutorLimits, kind: CommandKind): number => limits.perKind[kind] ?? limits.defaultPerKind;

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
  const failed = started.find((s) => s.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(consumers.map((c) => c.stop()));
    await options.drivers.close();
    throw failed.reason;
  }
  return {
    runner,
    stop: async () => {
      await Promise.all(consumers.map((c) => c.stop()));
      await options.drivers.close();
    },
  };
}
