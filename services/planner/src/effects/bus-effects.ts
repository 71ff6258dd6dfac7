/**
 * The real IncidentEffects: NATS JetStream for commands, results, heartbeats
 * and progress, Redis for host claims. Bound to the incident machines in the
 * planner's wiring file.
 */
import type { BusLogger, Store } from '@firebreak/shared';
import type { IncidentEffects } from '../incident/effects.ts';
import { CommandGateway, type EffectsBus } from './command-gateway.ts';
import { HeartbeatWaiter } from './heartbeat-waiter.ts';
import { DEFAULT_CLAIM_TTL_MS, HostClaims } from './host-claims.ts';
import { ProgressPublisher } from './progress-publisher.ts';
import type { RetryPolicy } from './until-aborted.ts';

export interface BusEffectsOptions {
  bus: EffectsBus;
  store: Pick<Store, 'leases'>;
  logger: BusLogger;
  /**
   * This planner instance, named in every log line. Host leases are owned by
   * the incident, not by this instance, so a planner that takes an incident
   * over after a restart still holds its hosts.
   */
  owner: string;
  /** Lease TTL of a claimed host; default 2 hours. */
  claimTtlMs?: number;
  /** How often missing command results are looked up in FB_RESULTS again; default 5 s. */
  resultRecheckMs?: number;
  /** Look-ups and publishes in flight per runCommands call; default 32. */
  commandConcurrency?: number;
  /** Backoff while NATS is unreachable; default 250 ms doubling to 5 s. */
  retry?: RetryPolicy;
}

export type BusEffects = IncidentEffects & {
  /** Aborts waits in flight, unsubscribes, and waits for progress updates still being published. */
  close(): Promise<void>;
};

function withFields(logger: BusLogger, fields: object): BusLogger {
  return {
    info: (obj, msg) => logger.info({ ...fields, ...obj }, msg),
    warn: (obj, msg) => logger.warn({ ...fields, ...obj }, msg),
    error: (obj, msg) => logger.error({ ...fields, ...obj }, msg),
  };
}

export function createBusEffects(options: BusEffectsOptions): BusEffects {
  const logger = withFields(options.logger, { planner: options.owner });
  const commands = new CommandGateway({
    bus: options.bus,
    logger,
    ...(options.resultRecheckMs === undefined ? {} : { recheckMs: options.resultRecheckMs }),
    ...(options.commandConcurrency === undefined ? {} : { concurrency: options.commandConcurrency }),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
  });
  const heartbeats = new HeartbeatWaiter(options.bus, logger);
  const claims = new HostClaims(options.store.leases, options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS);
  const progress = new ProgressPublisher(options.bus, logger);
  const closing = new AbortController();
  const untilClosed = (signal: AbortSignal) => AbortSignal.any([signal, closing.signal]);

  return {
    runCommands: (cmds, signal) => commands.run(cmds, untilClosed(signal)),
    waitForHeartbeat: (wanted, signal) => heartbeats.wait(wanted, untilClosed(signal)),
    watchHeartbeats: (wanted, signal) => heartbeats.watch(wanted, untilClosed(signal)),
    claimHosts: (incidentId, hosts) => claims.claim(incidentId, hosts),
    releaseHosts: (incidentId, hosts) => claims.release(incidentId, hosts),
    publishProgress: (p) => progress.publish(p),
    close: async () => {
      if (!closing.signal.aborted) closing.abort(new Error('the planner is shutting down'));
      await Promise.all([commands.close(), heartbeats.close(), progress.flush()]);
    },
  };
}
