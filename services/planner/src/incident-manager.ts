/**
 * The planner's incidents: opens one per failure (or drill), joins
 * overlapping failures to an open one, persists each actor's snapshot and
 * what it did to the fleet (the ledger) after every transition, resumes open
 * incidents after a restart, publishes progress and the final report. An
 * event's handler resolves only once what it caused is saved, so the event is
 * acked only then.
 */
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { createActor, type Actor } from 'xstate';
import { siteDomains, type DomainFailed, type DrillStart, type FailureDomain, type HostFailed, type HostRecovered, type HostStatus, type Inventory, type LedgerCause, type Logger, type ServerReport, type Store } from '@firebreak/shared';
import type { IncidentEffects } from './incident/effects.ts';
import { boundIncidentMachine, type IncidentActorOptions } from './incident/incident-actors.ts';
import { hostsOfPlan, INCIDENT_MACHINE_ID, INCIDENT_MACHINE_VERSION, type IncidentContext, type IncidentInput } from './incident/incident.machine.ts';
import { incidentProgress, serverTimings } from './incident/incident-progress.ts';
import { ledgerChangeOf } from './incident/incident-ledger.ts';
import { FleetState } from './fleet-state.ts';
import { planPlacement } from './placement/index.ts';
import { currentTraceCarrier, traceContextOf, tracedEffects, type TraceCarrier } from './effects/traced-effects.ts';

const identity = { machineId: INCIDENT_MACHINE_ID, machineVersion: INCIDENT_MACHINE_VERSION };

type IncidentActor = Actor<ReturnType<typeof boundIncidentMachine>>;

interface OpenIncident {
  actor: IncidentActor;
  hosts: Set<string>;
  drillId: string | null;
  /** Saves run one after another, so the newest snapshot is the one stored. */
  saving: Promise<void>;
  /** The last save failed: the next wait for durability saves again. */
  unsaved: boolean;
  lastProgress: string;
  /** The trace the incident's effects join. */
  trace: Context;
  /** A drill's end: its duration counts from its request, across planner handovers. */
  drillTimer?: NodeJS.Timeout;
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
  /** The site this planner leads: its fencing token guards the ledger's entries. */
  site: string;
  store: Pick<Store, 'snapshots' | 'ledger'>;
  effects: IncidentEffects;
  logger: Logger;
  fencingToken: () => number;
  /** This planner's instance id: the lease owner executors check commands against. */
  issuer: string;
  actor?: Partial<Pick<IncidentActorOptions, 'stepTimeoutMs' | 'bmcFenceTimeoutMs' | 'heartbeatTimeoutMs' | 'policy'>>;
  input?: Partial<Pick<IncidentInput, 'maxAttempts' | 'retryBaseMs' | 'maxReplans'>>;
  clock?: () => number;
  /** After an incident's final state: capacity has changed. */
  onIncidentClosed?: (incidentId: string, outcome: string) => void;
}

export class IncidentManager {
  private readonly open = new Map<string, OpenIncident>();
  /** Where servers run and what hosts are: the fleet ledger, through its cache. */
  private readonly fleet: FleetState;
  private readonly machine: ReturnType<typeof boundIncidentMachine>;
  /** The given effects, each call a span in its incident's trace. */
  private readonly effects: IncidentEffects;
  private readonly clock: () => number;
  private readonly rtoTargets: Map<string, number>;
  private readonly rackOf: Map<string, string>;
  /** Drills were stopped because a real failure needed their hosts: once they are all back, what stayed down is planned again. */
  private preempted = false;

  constructor(private readonly options: IncidentManagerOptions) {
    this.effects = tracedEffects(options.effects, (id) => this.open.get(id)?.trace ?? ROOT_CONTEXT);
    this.clock = options.clock ?? Date.now;
    this.fleet = new FleetState({ ledger: options.store.ledger, inventory: options.inventory, site: options.site, fencingToken: options.fencingToken, clock: this.clock, logger: options.logger });
    this.rtoTargets = new Map(options.inventory.servers.map((s) => [s.id, s.rtoSeconds]));
    this.rackOf = new Map(options.inventory.hosts.map((h) => [h.id, h.rack]));
    this.machine = boundIncidentMachine({
      inventory: options.inventory,
      effects: this.effects,
      fencingToken: options.fencingToken,
      issuer: options.issuer,
      candidates: () => this.candidates(),
      drillCandidates: () => this.drillCandidates(),
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
      serverHosts: this.fleet.running(),
      candidates: this.candidates().filter((h) => !held.has(h)),
      existingVms: this.existingVms(),
      down: [...this.failedHosts()],
    };
  }

  /** Reads the fleet ledger (seeding what it lacks from the inventory), then resumes every incident a previous planner left open. */
  async resume(): Promise<string[]> {
    await this.fleet.load();
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

  /** Resolves once the incident (or the join) it opens is saved. */
  async onHostFailed(event: HostFailed): Promise<void> {
    // A host an open incident is provisioning goes quiet while it reboots: that incident judges it (a dead target is re-planned).
    if (this.claimedByOpenIncident(event.host)) {
      this.options.logger.info({ host: event.host, cause: event.cause }, 'failure verdict for a host an open incident is provisioning; left to that incident');
      return;
    }
    // An idle host whose BMC answers is usable (the detector may just have seen a spare powered off); a power-on will tell.
    const idleWithLiveBmc = event.evidence.bmc?.reachable === true && !this.fleet.runsServer(event.host);
    if (!idleWithLiveBmc) await this.markDown([event.host], { kind: 'detector', id: `host-failed-${event.host}-${event.epoch}` });
    await this.failure(`inc-${event.host}-${event.epoch}`, event.site, [event.host], event.cause === 'bmc-unreachable' ? [event.host] : [], event.evidence.lastHeartbeatAt ?? event.detectedAt, event.detectedAt);
  }

  /** Resolves once the incident (or the join) it opens is saved. */
  async onDomainFailed(event: DomainFailed): Promise<void> {
    // A domain whose BMCs are gone burned whole. Whatever took a domain (fire, power, its switch) took its idle hosts
    // with it too, though nobody heard a powered-off spare go: none of them may take a server.
    const members = this.hostsOfDomain(event.domain);
    const gone = event.causes.includes('bmc-unreachable') ? [...event.hosts, ...members] : [...event.hosts, ...members.filter((h) => !this.fleet.runsServer(h))];
    await this.markDown(gone, { kind: 'detector', id: `domain-failed-${event.domain.kind}-${event.domain.id}-${event.epoch}` });
    const bmcGone = event.causes.includes('bmc-unreachable') ? event.hosts : [];
    await this.failure(`inc-${event.domain.kind}-${event.domain.id}-${event.epoch}`, event.domain.site, event.hosts, bmcGone, event.firstFailureAt, event.detectedAt);
  }

  /** Resolves once the drill's incident is saved. */
  async onDrillStart(event: DrillStart): Promise<void> {
    const id = `drill-${event.drillId}`;
    const open = this.open.get(id);
    if (open) return this.durable(open);
    const hosts = 'hosts' in event.scope ? event.scope.hosts : this.hostsOfDomain(event.scope.domain);
    const site = 'hosts' in event.scope ? event.scope.site : event.scope.domain.site;
    await this.start({
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
    for (const o of this.open.values()) {
      clearTimeout(o.drillTimer);
      o.actor.stop();
    }
    await Promise.all([...this.open.values()].map((o) => o.saving));
    this.open.clear();
  }

  private async failure(id: string, site: string, hosts: string[], bmcGone: string[], firstFailureAt: number, detectedAt: number): Promise<void> {
    const already = this.open.get(id);
    if (already) return this.durable(already);
    const fresh = hosts.filter((h) => ![...this.open.values()].some((o) => o.drillId === null && o.hosts.has(h)));
    if (fresh.length === 0) {
      this.options.logger.info({ incidentId: id, hosts }, 'failure already in an open incident');
      // A redelivered event: the incident it joined must be saved before it is acked.
      await Promise.all([...this.open.values()].filter((o) => o.drillId === null && hosts.some((h) => o.hosts.has(h))).map((o) => this.durable(o)));
      return;
    }
    // Overlap: same rack as an open incident that has not claimed hosts yet joins it.
    const racks = this.racksOf(fresh);
    for (const [openId, o] of this.open) {
      const ctx = o.actor.getSnapshot().context;
      if (o.drillId !== null || ctx.claimed.length > 0 || !ctx.racks.some((r) => racks.includes(r))) continue;
      o.actor.send({ type: 'join', hosts: fresh, racks, serverHosts: this.fleet.serversOn(fresh), bmcGone: bmcGone.filter((h) => fresh.includes(h)) });
      for (const h of fresh) o.hosts.add(h);
      this.options.logger.info({ incidentId: openId, joined: fresh }, 'failure joins the open incident');
      return this.durable(o);
    }
    this.preemptDrills(fresh);
    const input = this.baseInput(id, site, fresh, bmcGone.filter((h) => fresh.includes(h)), firstFailureAt, detectedAt);
    if (Object.keys(input.serverHosts).length === 0) {
      this.options.logger.info({ hosts: fresh }, 'failed hosts ran no server: nothing to recover');
      return;
    }
    this.preemptDrillsFor(input);
    await this.start(input);
  }

  /** Production first: a drill whose borrowed hosts or rehearsed domain just failed for real stops and gives its hosts back. */
  private preemptDrills(failed: readonly string[]): void {
    const racks = this.racksOf(failed);
    for (const o of this.open.values()) {
      if (o.drillId === null) continue;
      const ctx = o.actor.getSnapshot().context;
      const borrowed = [...ctx.claimed, ...(ctx.plan ? hostsOfPlan(ctx.plan) : [])];
      if (borrowed.some((h) => failed.includes(h)) || ctx.racks.some((r) => racks.includes(r)) || ctx.hosts.some((h) => failed.includes(h))) this.stopDrill(o, 'a real failure hit what it borrowed or rehearses');
    }
  }

  /**
   * Production first: when the capacity left cannot place every server of a real failure and drills hold
   * hosts, those drills stop; once they give their hosts back, what was not placed is planned again.
   */
  private preemptDrillsFor(input: IncidentInput): void {
    const drills = [...this.open.values()].filter((o) => o.drillId !== null && o.actor.getSnapshot().context.claimed.length > 0);
    if (drills.length === 0) return;
    const plan = planPlacement({
      inventory: this.options.inventory,
      servers: Object.keys(input.serverHosts),
      candidates: this.candidates(),
      failed: { hosts: input.hosts, racks: input.racks },
      ...(this.options.actor?.policy !== undefined && { policy: this.options.actor.policy }),
      existingVms: this.existingVms(),
    });
    if (plan.unplaced.length === 0) return;
    this.preempted = true;
    for (const o of drills) this.stopDrill(o, `a real failure needs capacity: ${plan.unplaced.length} server(s) would stay down`);
  }

  private stopDrill(o: OpenIncident, why: string): void {
    if (o.actor.getSnapshot().context.stopped) return;
    this.options.logger.warn({ drillId: o.drillId, why }, 'stopping a drill: production comes first');
    o.actor.send({ type: 'drill.stop' });
  }

  /**
   * Capacity came back (a drill gave its hosts back, a host recovered): servers an incident could not place
   * are planned again, in a new incident over the hosts they last ran on (fenced again on the fabric).
   */
  private async retryUnrecovered(): Promise<void> {
    const inOpen = new Set([...this.open.values()].flatMap((o) => Object.keys(o.actor.getSnapshot().context.serverHosts)));
    const waiting = new Map([...this.fleet.unrecovered()].filter(([server]) => !inOpen.has(server)));
    if (waiting.size === 0) return;
    const hosts = [...new Set(waiting.values())].sort();
    const now = this.clock();
    const id = `inc-retry-${now}`;
    this.options.logger.info({ incidentId: id, servers: [...waiting.keys()] }, 'capacity came back: planning the servers left unrecovered again');
    await this.start({ ...this.baseInput(id, this.options.site, hosts, hosts, now, now), serverHosts: Object.fromEntries(waiting) });
  }

  private baseInput(id: string, site: string, hosts: string[], bmcGone: string[], firstFailureAt: number, detectedAt: number): IncidentInput {
    return {
      incidentId: id,
      site,
      trigger: 'event',
      hosts,
      racks: this.racksOf(hosts),
      serverHosts: this.fleet.serversOn(hosts),
      bmcGone,
      firstFailureAt,
      detectedAt,
      // The consumer runs each event in its trace: the incident continues it.
      traceCarrier: currentTraceCarrier(),
      ...this.options.input,
    };
  }

  private async start(input: IncidentInput): Promise<void> {
    const actor = createActor(this.machine, { input });
    this.options.logger.info({ incidentId: input.incidentId, hosts: input.hosts.length, servers: Object.keys(input.serverHosts).length, trigger: input.trigger }, 'incident opened');
    await this.durable(this.track(input.incidentId, actor, input.hosts, input.drillId ?? null, input.traceCarrier));
  }

  private track(id: string, actor: IncidentActor, hosts: readonly string[], drillId: string | null, traceCarrier: TraceCarrier | undefined): OpenIncident {
    const entry: OpenIncident = { actor, hosts: new Set(hosts), drillId, saving: Promise.resolve(), unsaved: false, lastProgress: '', trace: traceContextOf(traceCarrier) };
    this.open.set(id, entry);
    if (drillId !== null) {
      const { detectedAt, drillMaxMs } = actor.getSnapshot().context;
      entry.drillTimer = setTimeout(() => {
        this.options.logger.info({ incidentId: id, drillId }, 'drill time is up; stopping it');
        actor.send({ type: 'drill.stop' });
      }, Math.max(0, detectedAt + drillMaxMs - this.clock()));
      entry.drillTimer.unref();
    }
    actor.subscribe({
      next: (snapshot) => {
        const report = snapshot.status === 'done' ? serverTimings(snapshot.context, this.rtoTargets) : undefined;
        // Progress goes out once the state behind it is saved: whoever reads "recovered" finds the ledger saying where.
        entry.saving = entry.saving
          .then(() => this.persist(id, entry))
          .catch((err: unknown) => {
            entry.unsaved = true;
            this.options.logger.error({ incidentId: id, err }, 'could not persist the incident and its ledger changes; saving again on the next transition or event');
          })
          .then(() => this.progress(entry, String(snapshot.value), snapshot.context, report));
        if (report) {
          const context = snapshot.context;
          void entry.saving.then(() => this.finish(id, context, String(snapshot.value), report));
        }
      },
      error: (err) => this.options.logger.error({ incidentId: id, err }, 'incident actor failed'),
    });
    actor.start();
    return entry;
  }

  /** Saves the newest snapshot, then makes the ledger say what it did to the fleet. */
  private async persist(id: string, entry: OpenIncident): Promise<void> {
    const snapshot = entry.actor.getSnapshot();
    const final = snapshot.status === 'done';
    await this.options.store.snapshots.save(id, { ...identity, snapshot: entry.actor.getPersistedSnapshot() as Record<string, unknown> });
    const { context } = snapshot;
    const change = ledgerChangeOf(context, final ? String(snapshot.value) : null, (h) => this.fleet.statusOf(h));
    const why: LedgerCause = context.drillId === null ? { kind: 'incident', id } : { kind: 'drill', id: context.drillId };
    await this.fleet.record(why, change);
    if (change.giveBack.length > 0) await this.fleet.giveBack(why, change.giveBack);
    if (final) await this.options.store.snapshots.close(id);
    entry.unsaved = false;
  }

  /** Resolves once everything the incident has done so far is saved; throws if it cannot be. */
  private async durable(entry: OpenIncident): Promise<void> {
    await entry.saving;
    if (!entry.unsaved) return;
    const id = entry.actor.getSnapshot().context.incidentId;
    const saved = this.persist(id, entry);
    entry.saving = saved.catch(() => {});
    await saved;
  }

  private claimedByOpenIncident(host: string): boolean {
    return [...this.open.values()].some((o) => o.actor.getSnapshot().context.claimed.includes(host));
  }

  private markDown(hosts: readonly string[], why: LedgerCause): Promise<void> {
    return this.fleet.record(why, { hosts: new Map(hosts.map((h) => [h, { role: 'down' }])) });
  }

  /** `report` is given on the final snapshot only. */
  private progress(entry: OpenIncident, state: string, context: IncidentContext, report: ServerReport[] | undefined): void {
    const progress = incidentProgress(state, context, this.clock());
    const key = JSON.stringify({ ...progress, at: 0 });
    if (key === entry.lastProgress) return;
    entry.lastProgress = key;
    this.effects.publishProgress(report ? { ...progress, report } : progress);
  }

  /** After the final state is saved (or could not be): the ledger holds the outcome, so capacity has changed. */
  private finish(id: string, context: IncidentContext, outcome: string, report: ServerReport[]): void {
    clearTimeout(this.open.get(id)?.drillTimer);
    this.open.delete(id);
    this.options.logger.info({ incidentId: id, outcome, unrecovered: context.unrecovered.length, report }, 'incident closed');
    this.options.onIncidentClosed?.(id, outcome);
    // A drill gave its hosts back; or the incident that stopped drills for capacity ended after they did.
    const drillsOpen = [...this.open.values()].some((o) => o.drillId !== null);
    if (context.trigger === 'drill') this.capacityReturned();
    else if (this.preempted && !drillsOpen) {
      this.preempted = false;
      this.capacityReturned();
    }
  }

  /**
   * What a drill may borrow: spares and hosts that run nothing, less those failed. Never a repurposable host
   * (its own work is production to a drill) nor a hypervisor (its ports carry production VMs).
   */
  private drillCandidates(): string[] {
    const failed = this.failedHosts();
    return this.options.inventory.hosts
      .filter((h) => {
        const role = this.fleet.statusOf(h.id)?.role;
        return (role === 'spare' || role === 'idle') && h.site === this.options.site && !failed.has(h.id) && !this.fleet.runsServer(h.id);
      })
      .map((h) => h.id);
  }

  /** Hosts that may take a server, as the ledger says (spare, repurposable, an inventory hypervisor), less those failed. */
  private candidates(): string[] {
    const failed = this.failedHosts();
    return this.options.inventory.hosts.filter((h) => this.fleet.isCandidate(h.id) && !failed.has(h.id)).map((h) => h.id);
  }

  /**
   * The host is heartbeating again. A host that was idle goes back to what
   * it was; one whose work was moved away is quarantined for an operator to
   * decide (failback, or make it a spare). Resolves once the ledger says so.
   */
  async onHostRecovered(event: HostRecovered): Promise<void> {
    if (!this.fleet.isDown(event.host) || this.openIncidentHosts().includes(event.host)) return;
    const seeded = this.fleet.seededStatusOf(event.host);
    const status: HostStatus =
      seeded === undefined || seeded.role === 'home' || (seeded.role === 'hypervisor' && seeded.servers.length > 0)
        ? { role: 'quarantined', reason: 'came back after a failure while its work runs elsewhere' }
        : seeded;
    await this.fleet.record({ kind: 'detector', id: `host-recovered-${event.host}-${event.epoch}` }, { hosts: new Map([[event.host, status]]) });
    if (status.role !== 'quarantined') this.capacityReturned();
  }

  private capacityReturned(): void {
    this.retryUnrecovered().catch((err: unknown) => this.options.logger.error({ err }, 'could not plan the unrecovered servers again; the next capacity change tries again'));
  }

  /** Hosts the ledger says are down, and hosts of open incidents. */
  private failedHosts(): Set<string> {
    return new Set([...this.openIncidentHosts(), ...this.fleet.downHosts()]);
  }

  /** Hosts that failed in an open incident (not drills: their hosts are only rehearsed as failed). */
  private openIncidentHosts(): string[] {
    return [...this.open.values()].filter((o) => o.drillId === null).flatMap((o) => [...o.hosts]);
  }

  private existingVms(): { server: string; hypervisor: string }[] {
    return this.fleet.existingVms();
  }

  private racksOf(hosts: readonly string[]): string[] {
    return [...new Set(hosts.map((h) => this.rackOf.get(h)).filter((r): r is string => r !== undefined))].sort();
  }

  /** A domain's hosts as the detector correlates them (a host's PDU and ToR are its rack's unless it names its own). */
  private hostsOfDomain(domain: FailureDomain): string[] {
    return (siteDomains(this.options.inventory, domain.site).hostsOf(domain) ?? []).map((h) => h.id);
  }
}
