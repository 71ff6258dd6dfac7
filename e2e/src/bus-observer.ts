/**
 * What an operator's dashboard would see on the bus: every incident's
 * progress and, per server identity, the newest heartbeat and where it came
 * from. Core subscriptions: JetStream subjects are delivered to them too.
 */
import { topics, type Bus, type CoreSubscription, type DomainFailed, type HostFailed, type IncidentProgress } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';

export interface SeenHeartbeat {
  host: string;
  at: number;
}

const finalPhases = new Set(['recovered', 'degraded', 'failed']);

export class BusObserver {
  /** Every progress message per incident, in arrival order. */
  readonly incidents = new Map<string, IncidentProgress[]>();
  /** Newest heartbeat per server identity (VMs and bare metal alike), drill rehearsals left out. */
  readonly serverHeartbeats = new Map<string, SeenHeartbeat>();
  /** Hosts that heartbeat at all, with the newest time. */
  readonly hostHeartbeats = new Map<string, number>();
  /** The detector's failure verdicts, in arrival order (a verdict JetStream deduped arrives once). */
  readonly hostFailures: HostFailed[] = [];
  readonly domainFailures: DomainFailed[] = [];

  private constructor(private readonly subscriptions: CoreSubscription[]) {}

  /** `heartbeats: false` skips reading every heartbeat (a benchmark's 10,000 a second would load its process). */
  static async start(bus: Bus, options: { heartbeats?: boolean } = {}): Promise<BusObserver> {
    const subscriptions: CoreSubscription[] = [];
    const observer = new BusObserver(subscriptions);
    subscriptions.push(
      await bus.subscribeCore(topics.incidents, (p) => {
        const list = observer.incidents.get(p.incidentId) ?? [];
        list.push(p);
        observer.incidents.set(p.incidentId, list);
      }),
    );
    subscriptions.push(
      await bus.subscribeCore(topics.hostFailed, (v) => void observer.hostFailures.push(v)),
      await bus.subscribeCore(topics.domainFailed, (v) => void observer.domainFailures.push(v)),
    );
    if (options.heartbeats === false) return observer;
    subscriptions.push(
      await bus.subscribeCore(topics.heartbeats, (hb) => {
        const at = Date.now();
        observer.hostHeartbeats.set(hb.host, at);
        // A drill's rehearsal heartbeats under the server's name; it is not the server running.
        if (hb.server !== null && hb.drill !== true) observer.serverHeartbeats.set(hb.server, { host: hb.host, at });
      }),
    );
    return observer;
  }

  waitForHeartbeats(hosts: number, timeoutMs: number): Promise<void> {
    return waitFor(`heartbeats from ${hosts} hosts`, () => this.hostHeartbeats.size >= hosts, timeoutMs);
  }

  /** The incidents whose progress names any of `hosts`. */
  incidentsFor(hosts: readonly string[]): string[] {
    return [...this.incidents].filter(([, list]) => list.some((p) => p.hosts.some((h) => hosts.includes(h)))).map(([id]) => id);
  }

  /** Resolves with the final progress (with its report) of the first incident that `match`es and ends. */
  async waitForOutcome(what: string, match: (p: IncidentProgress) => boolean, timeoutMs: number): Promise<IncidentProgress> {
    let final: IncidentProgress | undefined;
    await waitFor(
      `${what} to end`,
      () => {
        for (const list of this.incidents.values()) {
          const last = list[list.length - 1];
          if (last && finalPhases.has(last.phase) && match(last)) final = last;
        }
        return final !== undefined;
      },
      timeoutMs,
    );
    return final as IncidentProgress;
  }

  phasesOf(incidentId: string): string[] {
    return (this.incidents.get(incidentId) ?? []).map((p) => p.phase).filter((phase, i, all) => all[i - 1] !== phase);
  }

  async stop(): Promise<void> {
    for (const s of this.subscriptions) await s.stop();
  }
}
