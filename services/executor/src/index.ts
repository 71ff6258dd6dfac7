import { loadServiceInventory, type ServiceContext } from '@firebreak/shared';
import { checkExecutorVariables, executorLimits, type ExecutorConfig } from './config.ts';
import { InventoryCommandDrivers } from './drivers/command-drivers.ts';
import { startExecutor } from './executor.ts';

export { executorConfigSchema, executorLimits, checkExecutorVariables, type ExecutorConfig } from './config.ts';
export { startExecutor, type Executor, type ExecutorLimits, type ExecutorOptions } from './executor.ts';
export { executorDurable, executorDurables, RETIRED_EXECUTOR_DURABLE } from './durables.ts';
export { CommandRunner, idempotencyKey, type CommandDrivers, type Execution, type ResultSink } from './command-runner.ts';
export { InventoryCommandDrivers } from './drivers/command-drivers.ts';
export { executorNodeFlags } from './node-flags.ts';

export async function start(ctx: ServiceContext<ExecutorConfig>): Promise<() => Promise<void>> {
  const { config, logger, bus, store } = ctx;
  checkExecutorVariables();
  const { inventory, source } = await loadServiceInventory({ file: config.FB_INVENTORY, store: ctx.store });
  const executor = await startExecutor({
    inventory,
    bus,
    store,
    logger,
    executorId: config.SERVICE_INSTANCE_ID,
    drivers: new InventoryCommandDrivers(inventory, {
      requestTimeoutMs: config.FB_DEVICE_TIMEOUT_MS,
      deviceLocks: store.deviceLocks,
      executorId: config.SERVICE_INSTANCE_ID,
      ...(config.FB_BOOT_SERVICE_URL !== undefined && { bootServiceUrl: config.FB_BOOT_SERVICE_URL }),
    }),
    limits: executorLimits(config),
    retry: { initialMs: config.FB_EXEC_RETRY_INITIAL_MS, maxMs: config.FB_EXEC_RETRY_MAX_MS },
    ackWaitMs: config.FB_EXEC_ACK_WAIT_MS,
  });
  logger.info({ inventory: source, hosts: inventory.hosts.length }, 'consuming commands');
  return () => executor.stop();
}
