import { loadServiceInventory, siteDomains, TokenFloor, topics, type DrillScope, type Inventory, type ServiceContext } from '@firebreak/shared';
import type { PlannerConfig } from './config.ts';
import { DrillReportWriter, DrillScheduler, loadDrillSchedules, openWorkOf, storedFinalProgress } from './drills/index.ts';
import { createBusEffects } from './effects/index.ts';
import { IncidentManager } from './incident-manager.ts';
import { LeaderElection } from './leader-election.ts';
import { startReadiness } from './readiness/index.ts';

export { plannerConfigSchema, type PlannerConfig } from './config.ts';
export { IncidentManager, type FleetView, type IncidentManagerOptions } from './incident-manager.ts';
export { LeaderElection } from './leader-election.ts';
export * from './drills/index.ts';
export * from './placement/index.ts';
export * from './readiness/index.ts';

/**
 * Failures and drills are never given up while Redis or the ledger cannot
 * save what they cause: redelivered every few seconds for as long as that
 * lasts (a message that fails validation still goes to the dead letters).
 */
const untilSaved = { maxDeliver: 100_000, backoffMs: [250, 1_000, 5_000] } as const;

/** Durable consumers the leader reads failures and drills from. */
const durables = { hostFailed: 'planner-host-failed', hostRecovered: 'planner-host-recovered', domainFailed: 'planner-domain-failed', drillStart: 'planner-drill-start', drillStop: 'planner-drill-stop' } as const;

export async function start(ctx: ServiceContext<PlannerConfig>): Promise<() => Promise<void>> {
  const { config, logger, bus, store } = ctx;
  const { inventory, source } = await loadServiceInventory({ file: config.FB_INVENTORY, store });
  const site = config.FB_SITE;
  const mine = (s: string): boolean => s === site;
  // A bad schedule file stops the planner at start (exit 2), not at its first slot.
  const schedules = config.FB_DRILL_SCHEDULE === undefined ? [] : (await loadDrillSchedules(config.FB_DRILL_SCHEDULE, { inventory, site, variable: 'FB_DRILL_SCHEDULE' })).filter((s) => s.site === site);
  const election: LeaderElection = new LeaderElection({
    leases: store.leaderLeases,
    site,
    owner: config.SERVICE_INSTANCE_ID,
    ttlMs: config.FB_PLANNER_LEASE_MS,
    logger,
    // Tokens rise even if Redis loses its data: the highest one is kept in JetStream too.
    floor: new TokenFloor(bus),
    onElected: async () => {
      const busEffects = createBusEffects({ bus, store, logger, owner: config.SERVICE_INSTANCE_ID });
      // Each drill's final progress is also written as its report.
      const reports = new DrillReportWriter({ drills: store.drills, site, logger, finalProgress: (id) => storedFinalProgress(bus, id) });
      const effects = reports.wrap(busEffects);
      const policy = { vcpuOvercommit: config.FB_VCPU_OVERCOMMIT, allowPreemption: config.FB_ALLOW_PREEMPTION };
      // Bound once the manager has resumed; an incident closing before then is in the first report anyway.
      let onIncidentClosed = (): void => {};
      const manager = new IncidentManager({
        inventory,
        site,
        store,
        effects,
        logger,
        fencingToken: () => election.token ?? 0,
        issuer: config.SERVICE_INSTANCE_ID,
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
      try {
        await reports.catchUp(new Set(manager.incidents().keys()));
      } catch (err) {
        logger.warn({ err }, 'could not look for drills that ended without a report; looking again at the next election');
      }
      const readiness = await startReadiness({ bus, logger, inventory, site, policy, view: () => manager.fleetView(), intervalMs: config.FB_READINESS_INTERVAL_MS });
      onIncidentClosed = () => readiness.publishSoon();
      const consumers = await Promise.all([
        // Each handler resolves once what the event caused is saved: only then is the event acked.
        bus.consume({ topic: topics.hostFailed, durable: durables.hostFailed, ...untilSaved, handler: async (e) => (mine(e.site) ? manager.onHostFailed(e) : undefined) }),
        bus.consume({ topic: topics.hostRecovered, durable: durables.hostRecovered, ...untilSaved, handler: async (e) => (mine(e.site) ? manager.onHostRecovered(e) : undefined) }),
        bus.consume({ topic: topics.domainFailed, durable: durables.domainFailed, ...untilSaved, handler: async (e) => (mine(e.domain.site) ? manager.onDomainFailed(e) : undefined) }),
        bus.consume({
          topic: topics.drillStart,
          durable: durables.drillStart,
          ...untilSaved,
          handler: async (e) => {
            const drillSite = siteOfScope(e.scope);
            if (!mine(drillSite)) return;
            // Kept until the drill's report is: its report names who asked and for how long, and `drill stop` and `drill list` know it.
            await store.drills.recordRequest({ drillId: e.drillId, site: drillSite, scope: e.scope, requestedBy: e.requestedBy, requestedAt: e.requestedAt, maxDurationSeconds: e.maxDurationSeconds });
            await manager.onDrillStart(e);
          },
        }),
        bus.consume({ topic: topics.drillStop, durable: durables.drillStop, ...untilSaved, handler: async (e) => void manager.onDrillStop(e.drillId) }),
      ]);
      logger.info({ site, inventory: source, hosts: inventory.hosts.length, servers: inventory.servers.length }, 'planning for the site');
      const scheduler = new DrillScheduler({
        schedules,
        drills: store.drills,
        publish: async (start) => void (await bus.publish(topics.drillStart, start, { msgId: `drill-start-${start.drillId}` })),
        openWork: async () => {
          const incidents = [...manager.incidents()].map(([id, actor]) => {
            const { drillId, hosts } = actor.getSnapshot().context;
            return { id, drillId, hosts };
          });
          const requests = (await store.drills.pendingRequests()).map((r) => ({ ...r, hosts: hostsOfScope(inventory, r.scope) }));
          return openWorkOf(incidents, requests, site, Date.now());
        },
        logger,
      });
      // Only the leader runs schedules: a slot is taken in Redis, so a handover neither repeats nor loses one.
      scheduler.start();
      return async () => {
        await scheduler.stop();
        await readiness.stop();
        await Promise.all(consumers.map((c) => c.stop()));
        await manager.stop();
        await reports.stop();
        await busEffects.close();
      };
    },
  });
  election.start();
  return () => election.stop();
}

function siteOfScope(scope: DrillScope): string {
  return 'hosts' in scope ? scope.site : scope.domain.site;
}

function hostsOfScope(inventory: Inventory, scope: DrillScope): string[] {
  if ('hosts' in scope) return scope.hosts;
  return (siteDomains(inventory, scope.domain.site).hostsOf(scope.domain) ?? []).map((h) => h.id);
}
