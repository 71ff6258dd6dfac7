import { once } from 'node:events';
import { createLogger, loadConfig, redactConfig, runMain } from '@firebreak/shared';
import { startBootService } from './boot-service.ts';
import { bootConfigSchema } from './config.ts';

await runMain(async () => {
  const config = loadConfig(bootConfigSchema);
  const logger = createLogger('boot', { level: config.LOG_LEVEL, instance: config.SERVICE_INSTANCE_ID });
  logger.info({ config: redactConfig({ ...config, FB_BOOT_LISTEN: `${config.FB_BOOT_LISTEN.host}:${config.FB_BOOT_LISTEN.port}` }) }, 'starting');
  const service = await startBootService({
    dir: config.FB_BOOT_DIR,
    host: config.FB_BOOT_LISTEN.host,
    port: config.FB_BOOT_LISTEN.port,
    ...(config.FB_BOOT_PUBLIC_URL !== undefined && { publicUrl: config.FB_BOOT_PUBLIC_URL }),
    logger,
  });
  logger.info({ url: service.url, dnsmasqConf: service.dnsmasqConf }, 'ready');
  await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  logger.info('stopping');
  await service.stop();
  logger.info('stopped');
});
