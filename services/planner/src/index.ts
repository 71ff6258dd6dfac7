import { loadServiceInventory, topics, type ServiceContext } from '@firebreak/shared';
import type { PlannerConfig } from './config.ts';
import { createBusEffects } from './effects/index.ts';
import { IncidentManager } from './incident-manager.ts';
import { LeaderElection } from './leader-election.ts';
import { startReadiness } from './readiness/index.ts';

export { plannerConfigSchema, type PlannerConfig } from './config.ts';
export { IncidentManager, type FleetView, type IncidentManagerOptions } from './incident-manager.ts';
export { LeaderElection } from './leader-election.ts';
export * from './placement/index.ts';
export * from './readiness/index.ts';

/** Durable consumers the leader reads failures and drills from. */
const durables = { hostFailed: 'planner-host-failed', hostRecovered: 'planner-host-recovered', domainFailed: 'planner-domain-failed', drillStart: 'planner-drill-start', drillStop: 'planner-drill-stop' } as const;

export async function start(ctx: ServiceContext<PlannerConfig>): Promise<() => Promise<void>> {
  const { config, logger, bus, store } = ctx;
  const { inventory, source } = await loadServiceInventory({ file: config.FB_INVENTORY, store });
  const site = config.FB_SITE;
  const mine = (s: string): boolean => s === site;
  const election: LeaderElection = new LeaderElection({
    leases: store.leaderLeases,
    site,
    owner: config.SERVICE_INSTANCE_ID,
    ttlMs: config.FB_PLANNER_LEASE_MS,
    logger,
    onElected: async () => {
      const effects = createBusEffects({ bus, store, logger, owner: config.SERVICE_INSTANCE_ID });
      const policy = { vcpuOvercommit: config.FB_VCPU_OVERCOMMIT, allowPreemption: config.FB_ALLOW_PREEMPTION };
      // Bound once the manager has resumed; an incident closing before then is in the first report anyway.
      let onIncidentClosed = (): void => {};
      const manager = new IncidentManager({
        inventory,
        store,
        effects,
        logger,
        fencingToken: () => election.token ?? 0,
        actor: {
          stepTimeoutMs: config.FB_STEP_TIMEOUT_MS,
          bmcFenceTimeoutMs: config.FB_BMC_FENCE_TIMEOUT_MS,
          heartbeatTimeoutMs: config.FB_HEARTBEAT_TIMEOUT_MS,
          policy,
        },
        input: { maxAttempts: config.FB_STEP_ATTEMPTS, retryBaseMs: config.FB_RETRY_BASE_MS },
        onIncidentClosed: () => onIncidentClosed(),
      });
      await manager.resume();
      const readiness = await startReadiness({ bus, logger, inventory, site, policy, view: () => manager.fleetView(), intervalMs: config.FB_READINESS_INTERVAL_MS });
      onIncidentClosed = () => readiness.publishSoon();
      const consumers = await Promise.all([
        bus.consume({ topic: topics.hostFailed, durable: durables.hostFailed, handler: async (e) => void (mine(e.site) && manager.onHostFailed(e)) }),
        bus.consume({ topic: topics.hostRecovered, durable: durables.hostRecovered, handler: async (e) => void (mine(e.site) && manager.onHostRecovered(e)) }),
        bus.consume({ topic: topics.domainFailed, durable: durables.domainFailed, handler: async (e) => void (mine(e.domain.site) && manager.onDomainFailed(e)) }),
        bus.consume({ topic: topics.drillStart, durable: durables.drillStart, handler: async (e) => void manager.onDrillStart(e) }),
        bus.consume({ topic: topics.drillStop, durable: durables.drillStop, handler: async (e) => void manager.onDrillStop(e.drillId) }),
      ]);
      logger.info({ site, inventory: source, hosts: inventory.hosts.length, servers: inventory.servers.length }, 'planning for the site');
      return async () => {
        await readiness.stop();
        await Promise.all(consumers.map((c) => c.stop()));
        await manager.stop();
        await effects.close();
      };
    },
  });
  election.start();
  return () => election.stop();
}
