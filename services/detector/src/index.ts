import { loadServiceInventory, type ServiceContext } from '@firebreak/shared';
import type { DetectorConfig } from './config.ts';
import { startDetector } from './detector.ts';

export { detectorConfigSchema, type DetectorConfig } from './config.ts';
export { startDetector, type Detector, type DetectorOptions } from './detector.ts';
export { verdictIds } from './verdicts.ts';

export async function start(ctx: ServiceContext<DetectorConfig>): Promise<() => Promise<void>> {
  const { config, logger, bus } = ctx;
  const { inventory, source } = await loadServiceInventory({ file: config.FB_INVENTORY, store: ctx.store });
  const detector = await startDetector({
    inventory,
    bus,
    logger,
    detectorId: config.SERVICE_INSTANCE_ID,
    heartbeat:
      config.FB_HB_MODE === 'fixed'
        ? { kind: 'fixed', intervalMs: config.FB_HB_INTERVAL_MS, missed: config.FB_HB_MISSED }
        : {
            kind: 'phi',
            intervalMs: config.FB_HB_INTERVAL_MS,
            threshold: config.FB_HB_PHI_THRESHOLD,
            minStdMs: config.FB_HB_INTERVAL_MS / 10,
            windowSize: 100,
            maxSilenceMs: config.FB_HB_INTERVAL_MS * config.FB_HB_MISSED * 2,
          },
    bmcTimeoutMs: config.FB_BMC_TIMEOUT_MS,
    bmcPollIntervalMs: config.FB_BMC_POLL_INTERVAL_MS,
    bmcPollConcurrency: config.FB_BMC_POLL_CONCURRENCY,
    // No trapCommunities: the receiver accepts every inventory switch's community.
    trapPort: config.FB_TRAP_PORT,
    correlation: {
      windowMs: config.FB_CORRELATION_WINDOW_MS,
      minHosts: config.FB_DOMAIN_MIN_HOSTS,
      minFraction: config.FB_DOMAIN_MIN_FRACTION,
    },
    recoverHoldMs: config.FB_RECOVER_HOLD_MS,
  });
  logger.info({ inventory: source, hosts: inventory.hosts.length, trapPort: detector.trapPort }, 'watching heartbeats, BMCs and SNMP traps');
  return () => detector.stop();
}
