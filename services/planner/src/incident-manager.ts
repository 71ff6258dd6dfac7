/**
 * The planner's incidents: opens one per failure (or drill), joins
 * overlapping failures to an open one, persists each actor's snapshot after
 * every transition, resumes open incidents after a restart, publishes
 * progress and the final report.
 */
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { createActor, type Actor } from 'xstate';
import type { DomainFailed, DrillStart, FailureDomain, HostFailed, HostRecovered, Inventory, Logger, ServerReport, Store } from '@firebreak/shared';
import type { IncidentEffects } from './incident/effects.ts';
import { boundIncidentMachine, type IncidentActorOptions } from './incident/incident-actors.ts';
import { hostsOfPlan, INCIDENT_MACHINE_ID, INCIDENT_MACHINE_VERSION, type IncidentContext, type IncidentInput } from './incident/incident.machine.ts';
import { incidentProgress, serverTimings } from './incident/incident-progress.ts';
import { siteDomains } from './failure-domains.ts';
import { currentTraceCarrier, traceContextOf, tracedEffects, type TraceCarrier } from './effects/traced-effects.ts';

const identity = { machineId: INCIDENT_MACHINE_ID, machineVersion: INCIDENT_MACHINE_VERSION };

type IncidentActor = Actor<ReturnType<typeof boundIncidentMachine>>;

interface OpenIncident {
  actor: IncidentActor;
  hosts: Set<string>;
  drillId: string | null;
  /** Saves run one after another, so the newest snapshot is the one stored. */
  saving: Promise<void>;
  lastProgress: string;
  /** The trace the incident's effects join. */
  trace: Context;
}

/** What the planner knows of the fleet now: what an incident opened this instant would plan with. */
export interface FleetView {
  /** Where each server runs: its host, or for a VM its hypervisor. */
  serverHosts: ReadonlyMap<string, { mode: 'bare-metal' | 'vm'; host: string }>;
  /** Hosts a new incident could take: the incidents' candidates less the hosts open incidents have planned or claimed. */
  candidates: readonly string[];
  existingVms: readonly { server: string; hypervisor: string }[];
  /** Hosts failed in an open incident: their servers are being recovered already. */
  down: readonly string[];
}

export interface IncidentManagerOptions {
  inventory: Inventory;
  store: Store;
  effects: IncidentEffects;
  logger: Logger;
  fencingToken: () => number;
  actor?: Partial<Pick<IncidentActorOptions, 'stepTimeoutMs' | 'bmcFenceTimeoutMs' | 'heartbeatTimeoutMs' | 'policy'>>;
  input?: Partial<Pick<IncidentInput, 'maxAttempts' | 'retryBaseMs' | 'maxReplans'>>;
  clock?: () => number;
  /** After an incident's final state: capacity has changed. */
  onIncidentClosed?: (incidentId: string, outcome: string) => void;
}

export class IncidentManager {
  private readonly open = new Map<string, OpenIncident>();
  /** Where each server runs now: the inventory's assignments, updated by finished incidents. */
  private readonly serverHost = new Map<string, { mode: 'bare-metal' | 'vm'; host: string }>();
  /** Hosts that now carry a recovered server: no longer free to take. */
  private readonly taken = new Set<string>();
  /**
   * Hosts reported failed, and every host of a failed domain (its spares and
   * repurposable hosts burned with it even if nobody heard them go), until
   * the detector reports them recovered. Never candidates.
   */
  private readonly down = new Set<string>();
  private readonly machine: ReturnType<typeof boundIncidentMachine>;
  /** The given effects, each call a span in its incident's trace. */
  private readonly effects: IncidentEffects;
  private readonly clock: () => number;
  private readonly rtoTargets: Map<string, number>;
  private readonly rackOf: Map<string, string>;

  constructor(private readonly options: IncidentManagerOptions) {
    this.effects = tracedEffects(options.effects, (id) => this.open.get(id)?.trace ?? ROOT_CONTEXT);
    this.clock = options.clock ?? Date.now;
    for (const a of options.inventory.assignments) {
      this.serverHost.set(a.server, a.mode === 'bare-metal' ? { mode: a.mode, host: a.host } : { mode: a.mode, host: a.hypervisor });
    }
    this.rtoTargets = new Map(options.inventory.servers.map((s) => [s.id, s.rtoSeconds]));
    this.rackOf = new Map(options.inventory.hosts.map((h) => [h.id, h.rack]));
    this.machine = boundIncidentMachine({
      inventory: options.inventory,
      effects: this.effects,
      fencingToken: options.fencingToken,
      candidates: () => this.candidates(),
      existingVms: () => this.existingVms(),
      ...options.actor,
      clock: this.clock,
    });
  }

  /** Open incidents by id, for status and tests. */
  incidents(): ReadonlyMap<string, IncidentActor> {
    return new Map([...this.open].map(([id, o]) => [id, o.actor]));
  }

  fleetView(): FleetView {
    const held = new Set<string>();
    for (const o of this.open.values()) {
      const ctx = o.actor.getSnapshot().context;
      for (const h of ctx.claimed) held.add(h);
      if (ctx.plan !== null) for (const h of hostsOfPlan(ctx.plan)) held.add(h);
    }
    return {
      serverHosts: new Map(this.serverHost),
      candidates: this.candidates().filter((h) => !held.has(h)),
      existingVms: this.existingVms(),
      down: [...this.failedHosts()],
    };
  }

  /** Resumes every incident a previous planner left open. */
  async resume(): Promise<string[]> {
    const resumed: string[] = [];
    for (const id of await this.options.store.snapshots.listOpen()) {
      if (this.open.has(id)) continue;
      try {
        const envelope = await this.options.store.snapshots.load(id, identity);
        if (!envelope) continue;
        const actor = createActor(this.machine, { snapshot: envelope.snapshot as never, input: undefined as never });
        const context = actor.getSnapshot().context;
        this.track(id, actor, context.hosts, context.drillId, context.traceCarrier);
        resumed.push(id);
      } catch (err) {
        this.options.logger.error({ incidentId: id, err }, 'cannot resume incident; left open for an operator');
      }
    }
    if (resumed.length > 0) this.options.logger.info({ incidents: resumed }, 'resumed open incidents');
    return resumed;
  }

  onHostFailed(event: HostFailed): void {
    // An idle host whose BMC answers is usable (the detector may just have seen a spare powered off); a power-on will tell.
    const idleWithLiveBmc = event.evidence.bmc?.reachable === true && !this.runsServer(event.host);
    if (!idleWithLiveBmc) this.down.add(event.host);
    this.failure(`inc-${event.host}-${event.epoch}`, event.site, [event.host], event.cause === 'bmc-unreachable' ? [event.host] : [], event.evidence.lastHeartbeatAt ?? event.detectedAt, event.detectedAt);
  }

  onDomainFailed(event: DomainFailed): void {
    // A domain whose BMCs are gone burned whole, its unheard spares too; otherwise only hosts that ran a server are known dead.
    const gone = event.causes.includes('bmc-unreachable') ? [...event.hosts, ...this.hostsOfDomain(event.domain)] : event.hosts.filter((h) => this.runsServer(h));
    for (const h of gone) this.down.add(h);
    const bmcGone = event.causes.includes('bmc-unreachable') ? event.hosts : [];
    this.failure(`inc-${event.domain.kind}-${event.domain.id}-${event.epoch}`, event.domain.site, event.hosts, bmcGone, event.firstFailureAt, event.detectedAt);
  }

  onDrillStart(event: DrillStart): void {
    const id = `drill-${event.drillId}`;
    if (this.open.has(id)) return;
    const hosts = 'hosts' in event.scope ? event.scope.hosts : this.hostsOfDomain(event.scope.domain);
    const site = 'hosts' in event.scope ? event.scope.site : event.scope.domain.site;
    this.start({
      ...this.baseInput(id, site, hosts, [], event.requestedAt, event.requestedAt),
      trigger: 'drill',
      drillId: event.drillId,
      drillMaxMs: event.maxDurationSeconds * 1000,
    });
  }

  onDrillStop(drillId: string): boolean {
    const open = [...this.open.values()].find((o) => o.drillId === drillId);
    open?.actor.send({ type: 'drill.stop' });
    return open !== undefined;
  }

  /** Stops every actor without touching their stored snapshots: another planner resumes them. */
  async stop(): Promise<void> {
    for (const o of this.open.values()) o.actor.stop();
    await Promise.all([...this.open.values()].map((o) => o.saving));
    this.open.clear();
  }

  private failure(id: string, site: string, hosts: string[], bmcGone: string[], firstFailureAt: number, detectedAt: number): void {
    if (this.open.has(id)) return;
    const fresh = hosts.filter((h) => ![...this.open.values()].some((o) => o.drillId === null && o.hosts.has(h)));
    if (fresh.length === 0) {
      this.options.logger.info({ incidentId: id, hosts }, 'failure already in an open incident');
      return;
    }
    // Overlap: same rack as an open incident that has not claimed hosts yet joins it.
    const racks = this.racksOf(fresh);
    for (const [openId, o] of this.open) {
      const ctx = o.actor.getSnapshot().context;
      if (o.drillId !== null || ctx.claimed.length > 0 || !ctx.racks.some((r) => racks.includes(r))) continue;
      o.actor.send({ type: 'join', hosts: fresh, racks, serverHosts: this.serversOn(fresh), bmcGone: bmcGone.filter((h) => fresh.includes(h)) });
      for (const h of fresh) o.hosts.add(h);
      this.options.logger.info({ incidentId: openId, joined: fresh }, 'failure joins the open incident');
      return;
    }
    const input = this.baseInput(id, site, fresh, bmcGone.filter((h) => fresh.includes(h)), firstFailureAt, detectedAt);
    if (Object.keys(input.serverHosts).length === 0) {
      this.options.logger.info({ hosts: fresh }, 'failed hosts ran no server: nothing to recover');
      return;
    }
    this.start(input);
  }

  private baseInput(id: string, site: string, hosts: string[], bmcGone: string[], firstFailureAt: number, detectedAt: number): IncidentInput {
    return {
      incidentId: id,
      site,
      trigger: 'event',
      hosts,
      racks: this.racksOf(hosts),
      serverHosts: this.serversOn(hosts),
      bmcGone,
      firstFailureAt,
      detectedAt,
      // The consumer runs each event in its trace: the incident continues it.
      traceCarrier: currentTraceCarrier(),
      ...this.options.input,
    };
  }

  private start(input: IncidentInput): void {
    const actor = createActor(this.machine, { input });
    this.options.logger.info({ incidentId: input.incidentId, hosts: input.hosts.length, servers: Object.keys(input.serverHosts).length, trigger: input.trigger }, 'incident opened');
    this.track(input.incidentId, actor, input.hosts, input.drillId ?? null, input.traceCarrier);
  }

  private track(id: string, actor: IncidentActor, hosts: readonly string[], drillId: string | null, traceCarrier: TraceCarrier | undefined): void {
    const entry: OpenIncident = { actor, hosts: new Set(hosts), drillId, saving: Promise.resolve(), lastProgress: '', trace: traceContextOf(traceCarrier) };
    this.open.set(id, entry);
    actor.subscribe({
      next: (snapshot) => {
        const persisted = actor.getPersistedSnapshot();
        const final = snapshot.status === 'done';
        entry.saving = entry.saving
          .then(async () => {
            await this.options.store.snapshots.save(id, { ...identity, snapshot: persisted as Record<string, unknown> });
            if (final) await this.options.store.snapshots.close(id);
          })
          .catch((err: unknown) => this.options.logger.error({ incidentId: id, err }, 'could not persist the incident snapshot'));
        const report = final ? serverTimings(snapshot.context, this.rtoTargets) : undefined;
        this.progress(entry, String(snapshot.value), snapshot.context, report);
        if (report) this.finish(id, snapshot.context, String(snapshot.value), report);
      },
      error: (err) => this.options.logger.error({ incidentId: id, err }, 'incident actor failed'),
    });
    actor.start();
  }

  /** `report` is given on the final snapshot only. */
  private progress(entry: OpenIncident, state: string, context: IncidentContext, report: ServerReport[] | undefined): void {
    const progress = incidentProgress(state, context, this.clock());
    const key = JSON.stringify({ ...progress, at: 0 });
    if (key === entry.lastProgress) return;
    entry.lastProgress = key;
    this.effects.publishProgress(report ? { ...progress, report } : progress);
  }

  private finish(id: string, context: IncidentContext, outcome: string, report: ServerReport[]): void {
    this.open.delete(id);
    if (context.trigger === 'event') {
      for (const t of Object.values(context.targets)) {
        if (t.status !== 'done') continue;
        if (t.target.mode === 'hypervisor') this.taken.add(t.target.host);
        else if (t.target.mode === 'bare-metal') {
          this.serverHost.set(t.target.server, { mode: 'bare-metal', host: t.target.host });
          this.taken.add(t.target.host);
        } else this.serverHost.set(t.target.server, { mode: 'vm', host: t.target.hypervisor });
      }
    }
    this.options.logger.info({ incidentId: id, outcome, unrecovered: context.unrecovered.length, report }, 'incident closed');
    this.options.onIncidentClosed?.(id, outcome);
  }

  /** Hosts that may take a server: not production, not failed, not already carrying a recovered server. */
  private candidates(): string[] {
    const failed = this.failedHosts();
    return this.options.inventory.hosts
      .filter((h) => h.role !== 'production' && !failed.has(h.id) && !this.taken.has(h.id))
      .map((h) => h.id);
  }

  private runsServer(host: string): boolean {
    return [...this.serverHost.values()].some((a) => a.host === host);
  }

  /** The host is heartbeating again: it may take work once more. */
  onHostRecovered(event: HostRecovered): void {
    this.down.delete(event.host);
  }

  /** Hosts known down, and hosts of open incidents (not drills: their hosts are only rehearsed as failed). */
  private failedHosts(): Set<string> {
    return new Set([...this.down, ...[...this.open.values()].filter((o) => o.drillId === null).flatMap((o) => [...o.hosts])]);
  }

  private existingVms(): { server: string; hypervisor: string }[] {
    return [...this.serverHost].filter(([, a]) => a.mode === 'vm').map(([server, a]) => ({ server, hypervisor: a.host }));
  }

  private serversOn(hosts: readonly string[]): Record<string, string> {
    const set = new Set(hosts);
    return Object.fromEntries([...this.serverHost].filter(([, a]) => set.has(a.host)).map(([server, a]) => [server, a.host]));
  }

  private racksOf(hosts: readonly string[]): string[] {
    return [...new Set(hosts.map((h) => this.rackOf.get(h)).filter((r): r is string => r !== undefined))].sort();
  }

  /** A domain's hosts as the detector correlates them (a host's PDU and ToR are its rack's unless it names its own). */
  private hostsOfDomain(domain: FailureDomain): string[] {
    return (siteDomains(this.options.inventory, domain.site).hostsOf(domain) ?? []).map((h) => h.id);
  }
}
