/**
 * The detector: heartbeats, BMC health and SNMP link traps in; verdicts out.
 * It never acts on hardware. A silent host is asked about over its BMC before
 * any verdict: on and healthy means isolated (`host.suspect`, no failover);
 * off, critical or unreachable means failed, and failures that land together
 * in one failure domain are reported as one `domain.failed`. While its own
 * connection to NATS is down it hears no host, so it judges no silence
 * (issue #15): a NATS outage must not read as the whole fleet dying.
 */
import { subjects, type Bus, type Evidence, type FailureCause, type Inventory, type Logger } from '@firebreak/shared';
import { classify, type BmcEvidence, BmcProber } from './bmc/bmc-prober.ts';
import { BmcHealthPoller } from './bmc/health-poller.ts';
import { Correlator, type FailureCandidate } from './correlation/correlator.ts';
import { buildDomainMap } from './correlation/failure-domains.ts';
import { mateMayFail, maxHoldMs } from './correlation/mate-may-fail.ts';
import { watchConnection } from './connection-watch.ts';
import { expiryHorizonMs, HeartbeatTracker, type ExpiredInfo, type HeartbeatMode } from './heartbeat/heartbeat-tracker.ts';
import { DetectorMetrics } from './metrics.ts';
import { LinkState } from './snmp/link-state.ts';
import { startTrapReceiver } from './snmp/trap-receiver.ts';
import { VerdictPublisher } from './verdicts.ts';

export interface DetectorOptions {
  inventory: Inventory;
  bus: Bus;
  logger: Logger;
  /** Names this detector in verdicts. */
  detectorId: string;
  heartbeat: HeartbeatMode;
  bmcTimeoutMs: number;
  /** 0 turns BMC health polling off. */
  bmcPollIntervalMs: number;
  bmcPollConcurrency: number;
  /** UDP port for SNMP traps; undefined turns the receiver off, 0 picks a free port. */
  trapPort?: number;
  /** SNMP communities accepted on traps; by default every inventory switch's. */
  trapCommunities?: string[];
  correlation: { windowMs: number; minHosts: number; minFraction: number };
  /** A recovered host must stay up this long before `host.recovered`: flapping is damped. */
  recoverHoldMs: number;
  /** Retry delays of a verdict JetStream did not acknowledge; default 250 ms doubling to 5 s. */
  verdictBackoff?: { initialMs: number; maxMs: number };
}

export interface Detector {
  readonly trapPort: number | undefined;
  stats(): Record<string, unknown>;
  stop(): Promise<void>;
}

/** What the detector knows about a host it has doubts about; healthy hosts have no entry. */
interface Doubt {
  state: 'probing' | 'pending' | 'failed' | 'suspect';
  epoch: number;
  since: number;
  recoverTimer?: NodeJS.Timeout;
}

/** BMC-reported failures of a host that still heartbeats share an epoch per window, so peers agree. */
const BMC_EPOCH_BUCKET_MS = 60_000;

/** Hosts the inventory has running a server, bare metal or as a VM's hypervisor. */
function serverHosts(inventory: Inventory): Set<string> {
  return new Set((inventory.assignments ?? []).map((a) => (a.mode === 'bare-metal' ? a.host : a.hypervisor)));
}

export async function startDetector(options: DetectorOptions): Promise<Detector> {
  const { inventory, bus, logger, detectorId } = options;
  const hostsById = new Map(inventory.hosts.map((h) => [h.id, h]));
  const expected = serverHosts(inventory);
  const verdicts = new VerdictPublisher(bus, logger, options.verdictBackoff === undefined ? {} : { backoff: options.verdictBackoff });
  const metrics = new DetectorMetrics();
  metrics.observeVerdictsWaiting(() => verdicts.waiting);
  const doubts = new Map<string, Doubt>();
  const intervalMs = options.heartbeat.intervalMs;

  const prober = new BmcProber(inventory, { timeoutMs: options.bmcTimeoutMs, logger });
  const publishFailure = (c: FailureCandidate): void => {
    const host = hostsById.get(c.host);
    if (!host) return;
    metrics.detected(Date.now() - (c.evidence.lastHeartbeatAt ?? Date.now()));
    void verdicts.hostFailed({
      host: host.id,
      site: host.site,
      rack: host.rack,
      epoch: c.epoch,
      detectedAt: Date.now(),
      detector: detectorId,
      cause: c.cause,
      evidence: c.evidence,
    });
  };

  const correlator = new Correlator({
    domains: buildDomainMap(inventory),
    windowMs: options.correlation.windowMs,
    maxHoldMs: maxHoldMs(expiryHorizonMs(options.heartbeat), options.bmcTimeoutMs, options.correlation.windowMs),
    minHosts: options.correlation.minHosts,
    minFraction: options.correlation.minFraction,
    isMonitored: (id) => tracker.isArmed(id),
    mayFail: (id, quietForMs) =>
      mateMayFail({ armed: tracker.isArmed(id), doubt: doubts.get(id)?.state, silenceMs: tracker.silenceMs(id) }, intervalMs, quietForMs),
    emitHost: (c) => {
      const d = doubts.get(c.host);
      if (d) d.state = 'failed';
      publishFailure(c);
    },
    emitDomain: (domain, failures) => {
      for (const c of failures) {
        const d = doubts.get(c.host);
        if (d) d.state = 'failed';
        metrics.detected(Date.now() - (c.evidence.lastHeartbeatAt ?? Date.now()));
      }
      const lastBeats = failures.map((c) => c.evidence.lastHeartbeatAt ?? c.confirmedAt);
      void verdicts.domainFailed({
        domain,
        hosts: failures.map((c) => c.host),
        causes: [...new Set(failures.map((c) => c.cause))],
        firstFailureAt: Math.min(...lastBeats),
        detectedAt: Date.now(),
        epoch: Math.min(...failures.map((c) => c.epoch)),
        detector: detectorId,
      });
    },
  });

  /**
   * An idle machine its BMC says was switched off (a spare a drill gave back, a
   * repurposable host being repurposed) has failed nobody: stop expecting its
   * heartbeats until it is heard again. True when that is what happened.
   */
  const switchedOffIdle = (hostId: string, cause: FailureCause): boolean => {
    if (cause !== 'bmc-power-off' || expected.has(hostId) || tracker.serverOf(hostId) !== null) return false;
    tracker.disarm(hostId);
    logger.info({ host: hostId }, 'idle host switched off; no longer expecting its heartbeats');
    return true;
  };

  /** Asks the BMC, then reports the host isolated or hands the failure to the correlator. */
  const investigate = async (hostId: string, epoch: number, evidence: Evidence, fallbackCause: FailureCause): Promise<void> => {
    const host = hostsById.get(hostId);
    if (!host || doubts.has(hostId)) return;
    const doubt: Doubt = { state: 'probing', epoch, since: Date.now() };
    doubts.set(hostId, doubt);
    const bmc: BmcEvidence = await prober.probe(hostId);
    if (doubts.get(hostId) !== doubt) return; // it came back while we asked
    const verdict = classify(bmc);
    if (verdict.kind === 'failed' && switchedOffIdle(hostId, verdict.cause)) {
      doubts.delete(hostId);
      return;
    }
    const full: Evidence = { ...evidence, bmc };
    if (verdict.kind === 'suspect') {
      doubt.state = 'suspect';
      void verdicts.hostSuspect({ host: host.id, site: host.site, rack: host.rack, epoch, detectedAt: Date.now(), detector: detectorId, evidence: full });
      return;
    }
    doubt.state = 'pending';
    // A dead BMC outranks the link: it tells the planner to fence on the fabric at once.
    const cause = fallbackCause === 'link-down' && verdict.cause !== 'bmc-unreachable' ? 'link-down' : verdict.cause;
    correlator.add({ host: hostId, cause, evidence: full, epoch, confirmedAt: Date.now() });
  };

  const onExpired = (info: ExpiredInfo): void => {
    const heard = !Number.isNaN(info.lastHeartbeatAt);
    void investigate(
      info.host,
      // A host expected but never heard from: its epoch is when the wait began.
      heard ? info.lastHeartbeatAt : Math.floor(info.receivedAt),
      { lastHeartbeatAt: heard ? info.lastHeartbeatAt : null, missedHeartbeats: info.missed, ...(info.phi !== undefined && { phi: info.phi }) },
      'heartbeat-lost',
    );
  };
  /** The host's last heartbeat, or null when none has been heard since start. */
  const lastBeatOf = (hostId: string): number | null => {
    const at = tracker.lastHeartbeatAt(hostId);
    return Number.isNaN(at) ? null : at;
  };

  /** Date.now() when silence was last judged again after a NATS outage. */
  let listeningSince = 0;

  // Callbacks above refer to the tracker; they run only after start().
  const tracker = new HeartbeatTracker(
    inventory.hosts.map((h) => ({ id: h.id, site: h.site, rack: h.rack })),
    {
      mode: options.heartbeat,
      onExpired,
      onResumed: (info) => {
        const doubt = doubts.get(info.host);
        if (!doubt) return;
        if (doubt.state === 'probing' || doubt.state === 'pending') {
          // A false alarm caught in time: nothing was published.
          correlator.withdraw(info.host);
          doubts.delete(info.host);
          return;
        }
        clearTimeout(doubt.recoverTimer);
        const resumedAt = Date.now();
        const confirm = (): void => {
          if (doubts.get(info.host) !== doubt || tracker.isExpired(info.host)) return;
          // Staying up counts only while a fall could have been heard.
          const upForMs = tracker.isDeaf() ? 0 : Date.now() - Math.max(resumedAt, listeningSince);
          if (upForMs < options.recoverHoldMs) {
            doubt.recoverTimer = setTimeout(confirm, options.recoverHoldMs - upForMs);
            return;
          }
          doubts.delete(info.host);
          const host = hostsById.get(info.host);
          if (!host) return;
          void verdicts.hostRecovered({
            host: host.id,
            site: host.site,
            rack: host.rack,
            epoch: doubt.epoch,
            detectedAt: Date.now(),
            detector: detectorId,
            server: info.server,
            downForMs: Math.max(0, Date.now() - doubt.since),
          });
        };
        doubt.recoverTimer = setTimeout(confirm, options.recoverHoldMs);
      },
      onHearing: (info) => {
        listeningSince = Date.now();
        logger.info(info, 'resumed judging heartbeat silence: NATS is back; every host has a full horizon to be heard');
      },
      onUnknownHost: (subject) => logger.warn({ subject }, 'heartbeat from a host not in the inventory; counted and ignored'),
    },
  );
  // Hosts that run a server must heartbeat, whether or not one is heard before they die.
  tracker.expect(expected);
  tracker.start();
  metrics.observe(() => tracker.stats());
  const connection = watchConnection(bus.nc, {
    disconnected: () => {
      if (!tracker.isDeaf()) logger.warn({ armed: tracker.stats().armed }, 'stopped judging heartbeat silence: NATS is disconnected, so no host can be heard');
      tracker.deafen();
    },
    reconnected: () => tracker.reconnected(),
  });

  const sub = bus.nc.subscribe(subjects.heartbeatAll, { callback: (_err, msg) => void tracker.observe(msg.subject, msg.data) });

  const poller =
    options.bmcPollIntervalMs > 0
      ? new BmcHealthPoller(prober, () => inventory.hosts.filter((h) => tracker.isArmed(h.id) && !doubts.has(h.id)).map((h) => h.id), {
          intervalMs: options.bmcPollIntervalMs,
          maxConcurrent: options.bmcPollConcurrency,
          backoff: { initialMs: options.bmcPollIntervalMs, maxMs: options.bmcPollIntervalMs * 16 },
          isExpectedOn: (id) => tracker.isArmed(id) && !tracker.isExpired(id),
          logger,
          onUnhealthy: (hostId, bmc, cause) => {
            if (doubts.has(hostId) || switchedOffIdle(hostId, cause)) return;
            const lastBeat = lastBeatOf(hostId);
            const epoch = Math.floor((lastBeat ?? Date.now()) / BMC_EPOCH_BUCKET_MS) * BMC_EPOCH_BUCKET_MS;
            doubts.set(hostId, { state: 'pending', epoch, since: Date.now() });
            correlator.add({ host: hostId, cause, evidence: { lastHeartbeatAt: lastBeat, bmc }, epoch, confirmedAt: Date.now() });
          },
        })
      : undefined;
  poller?.start();

  const links = new LinkState(inventory);
  const traps =
    options.trapPort === undefined
      ? undefined
      : await startTrapReceiver({
          port: options.trapPort,
          inventory,
          communities: options.trapCommunities ?? [],
          logger,
          onLink: (event) => {
            if (!event.host) return;
            links.update(event.host, event.switch, event.port, event.state);
            if (event.state === 'down' && links.allLinksDown(event.host) && tracker.isArmed(event.host)) {
              const lastBeat = lastBeatOf(event.host);
              void investigate(
                event.host,
                lastBeat ?? Date.now(),
                { lastHeartbeatAt: lastBeat, link: { switch: event.switch, port: event.port, status: 'down' } },
                'link-down',
              );
            }
          },
        });

  return {
    trapPort: traps?.port,
    stats: () => ({ heartbeats: tracker.stats(), deaf: tracker.isDeaf(), traps: traps?.stats(), bmcPoll: poller?.stats(), doubts: doubts.size, verdictsWaiting: verdicts.waiting }),
    stop: async () => {
      sub.unsubscribe();
      connection.stop();
      tracker.stop();
      await poller?.stop();
      correlator.stop();
      for (const d of doubts.values()) clearTimeout(d.recoverTimer);
      await traps?.stop();
      await prober.close();
      // Last: verdicts the steps above still produced are given up with the rest, each logged.
      verdicts.stop();
    },
  };
}
