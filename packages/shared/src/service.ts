/**
 * The life of a Firebreak service process: configuration, telemetry, logging,
 * bus and store come up in that order; SIGTERM/SIGINT take them down in
 * reverse, draining the bus so nothing in flight is lost.
 */
import type { z } from 'zod';
import { connectBus, ensureStreams, type Bus } from './bus/index.ts';
import { baseConfigSchema, loadConfig, redactConfig, runMain, type BaseConfig } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { createStore, type Store } from './store/index.ts';
import { startTelemetry } from './telemetry/index.ts';

export interface ServiceContext<C extends BaseConfig> {
  readonly name: string;
  readonly config: Readonly<C>;
  readonly logger: Logger;
  readonly bus: Bus;
  readonly store: Store;
}

/** What a service's start returns: how to stop its own work before the shared plumbing closes. */
export type StopWork = () => Promise<void>;

export interface ServiceDefinition<S extends z.ZodObject> {
  name: string;
  /** The base schema extended with the service's own variables. */
  configSchema?: S;
  start(ctx: ServiceContext<z.output<S> & BaseConfig>): Promise<StopWork | void>;
}

export function runService<S extends z.ZodObject = typeof baseConfigSchema>(definition: ServiceDefinition<S>): Promise<void> {
  return runMain(async () => {
    const config = loadConfig(definition.configSchema ?? baseConfigSchema) as z.output<S> & BaseConfig;
    const telemetry = startTelemetry({ serviceName: `firebreak-${definition.name}`, instanceId: config.SERVICE_INSTANCE_ID });
    const logger = createLogger(definition.name, { level: config.LOG_LEVEL, instance: config.SERVICE_INSTANCE_ID });
    logger.info({ config: redactConfig(config), telemetry: telemetry.enabled }, 'starting');

    const bus = await connectBus({
      url: config.NATS_URL,
      name: `${definition.name}-${config.SERVICE_INSTANCE_ID}`,
      user: config.NATS_USER,
      password: config.NATS_PASSWORD,
      logger,
    });
    await ensureStreams(bus.jsm);
    const store = createStore(config.REDIS_URL, { onError: (err) => logger.warn({ err }, 'redis connection problem') });

    const stopWork = (await definition.start({ name: definition.name, config, logger, bus, store })) ?? undefined;
    logger.info('ready');

    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    logger.info('stopping');
    await stopWork?.();
    await bus.close();
    await store.close();
    await telemetry.shutdown();
    logger.info('stopped');
  });
}
