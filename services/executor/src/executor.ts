/** The executor service: consumes FB_CMDS as a shared work queue and runs each command once. */
import { topics, type Bus, type Inventory, type Logger, type Store } from '@firebreak/shared';
import { busResultSink, CommandRunner, type CommandDrivers, type CommandRunnerOptions } from './command-runner.ts';

/** Every executor shares this durable, so each command goes to exactly one of them. */
export const EXECUTOR_DURABLE = 'executor';

export interface ExecutorOptions {
  inventory: Inventory;
  bus: Bus;
  store: Store;
  logger: Logger;
  executorId: string;
  drivers: CommandDrivers & { close(): Promise<void> };
  concurrency: number;
  limits: CommandRunnerOptions['limits'];
  retry: CommandRunnerOptions['retry'];
  ackWaitMs?: number;
}

export interface Executor {
  readonly runner: CommandRunner;
  stop(): Promise<void>;
}

export async function startExecutor(options: ExecutorOptions): Promise<Executor> {
  const runner = new CommandRunner({
    store: options.store,
    drivers: options.drivers,
    results: busResultSink(options.bus),
    executorId: options.executorId,
    logger: options.logger,
    limits: options.limits,
    retry: options.retry,
  });
  const consumer = await options.bus.consume({
    topic: topics.commands,
    durable: EXECUTOR_DURABLE,
    concurrency: options.concurrency,
    ...(options.ackWaitMs !== undefined && { ackWaitMs: options.ackWaitMs }),
    handler: async (command, ctx) => {
      await runner.handle(command, ctx.deliveries);
    },
  });
  return {
    runner,
    stop: async () => {
      await consumer.stop();
      await options.drivers.close();
    },
  };
}
