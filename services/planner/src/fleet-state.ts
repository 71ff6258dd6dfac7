/**
 * The planner's view of the fleet ledger: a cache of every server's placement
 * and every host's status, read from Redis when the planner is elected and
 * changed only through the ledger. Nothing here is true until Redis has it:
 * `record` resolves once the ledger holds the change.
 */
import {
  ledgerDifferences,
  ledgerSeedOf,
  LedgerConflictError,
  type FleetLedger,
  type HostEntry,
  type HostStatus,
  type Inventory,
  type LedgerCause,
  type Logger,
  type ServerEntry,
  type ServerPlacement,
} from '@firebreak/shared';

export interface FleetStateOptions {
  ledger: Pick<FleetLedger, 'apply' | 'read' | 'seed' | 'history'>;
  inventory: Inventory;
  site: string;
  fencingToken: () => number;
  clock: () => number;
  logger: Logger;
}

/** A placement that runs the server somewhere: its host, or for a VM its hypervisor. */
export type Running = { mode: 'bare-metal' | 'vm'; host: string };

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class FleetState {
  private servers = new Map<string, ServerEntry>();
  private hosts = new Map<string, HostEntry>();
  /** What the inventory says of each host, kept from `load`: a host that comes back idle goes back to it. */
  private seeded = new Map<string, HostStatus>();
  /** Changes go to Redis one after another, so each names the version the one before it wrote. */
  private writing: Promise<void> = Promise.resolve();
  private readonly siteHosts: Set<string>;

  constructor(private readonly options: FleetStateOptions) {
    this.siteHosts = new Set(options.inventory.hosts.filter((h) => h.site === options.site).map((h) => h.id));
  }

  /** Seeds what the ledger lacks from the inventory, then reads it whole. */
  async load(): Promise<void> {
    const seed = ledgerSeedOf(this.options.inventory, this.options.clock());
    this.seeded = seed.hosts;
    const added = await this.options.ledger.seed(seed);
    await this.reload();
    const differences = ledgerDifferences(seed, { servers: this.servers, hosts: this.hosts });
    this.options.logger.info({ seeded: added, differences: differences.length }, 'fleet ledger loaded');
    if (differences.length > 0) this.options.logger.info({ differences: differences.slice(0, 50) }, 'the ledger has moved on from the inventory; the ledger is the truth');
  }

  placementOf(server: string): ServerPlacement | undefined {
    return this.servers.get(server)?.placement;
  }

  statusOf(host: string): HostStatus | undefined {
    return this.hosts.get(host)?.status;
  }

  /** Where each server runs now. */
  running(): Map<string, Running> {
    const running = new Map<string, Running>();
    for (const [id, e] of this.servers) {
      if (e.placement.state === 'bare-metal') running.set(id, { mode: 'bare-metal', host: e.placement.host });
      else if (e.placement.state === 'vm') running.set(id, { mode: 'vm', host: e.placement.hypervisor });
    }
    return running;
  }

  /** Servers a recovery ended without placing, each with the host it last ran on. */
  unrecovered(): Map<string, string> {
    return new Map([...this.servers].flatMap(([id, e]) => (e.placement.state === 'unrecovered' ? [[id, e.placement.host] as const] : [])));
  }

  /** Servers running on these hosts, each with its host (a VM's: its hypervisor). */
  serversOn(hosts: readonly string[]): Record<string, string> {
    const set = new Set(hosts);
    return Object.fromEntries([...this.running()].filter(([, r]) => set.has(r.host)).map(([server, r]) => [server, r.host]));
  }

  /** The host runs a server, or did until it failed. */
  runsServer(host: string): boolean {
    const status = this.statusOf(host);
    if (status?.role === 'home' || (status?.role === 'hypervisor' && status.servers.length > 0)) return true;
    return [...this.servers.values()].some((e) => 'host' in e.placement && e.placement.host === host && e.placement.state !== 'unrecovered');
  }

  /** What the inventory made of the host, before any incident. */
  seededStatusOf(host: string): HostStatus | undefined {
    return this.seeded.get(host);
  }

  isDown(host: string): boolean {
    return this.statusOf(host)?.role === 'down';
  }

  /** Hosts the ledger says are down. */
  downHosts(): string[] {
    return [...this.hosts].filter(([, e]) => e.status.role === 'down').map(([id]) => id);
  }

  /** Free to take a server: a spare, a repurposable host, or a hypervisor the inventory made one. */
  isCandidate(host: string): boolean {
    const status = this.statusOf(host);
    if (status === undefined || !this.siteHosts.has(host)) return false;
    return status.role === 'spare' || status.role === 'repurposable' || (status.role === 'hypervisor' && !status.converted);
  }

  existingVms(): { server: string; hypervisor: string }[] {
    return [...this.running()].filter(([, r]) => r.mode === 'vm').map(([server, r]) => ({ server, hypervisor: r.host }));
  }

  /**
   * Makes the ledger say this of these servers and hosts; entries already so
   * are left alone. Resolves once Redis holds it; a deposed planner's change
   * is refused (StaleLedgerTokenError).
   */
  record(why: LedgerCause, change: { servers?: Map<string, ServerPlacement>; hosts?: Map<string, HostStatus> }): Promise<void> {
    const run = this.writing.then(() => this.write(why, change));
    this.writing = run.catch(() => {});
    return run;
  }

  /**
   * Hosts a drill borrowed go back to the status they had before it, as the
   * ledger's history tells; a host whose status changed since (a real
   * failure took it) keeps its new one.
   */
  async giveBack(why: LedgerCause, hosts: readonly string[]): Promise<void> {
    const back = new Map<string, HostStatus>();
    for (const host of hosts) {
      const now = this.statusOf(host);
      if (now?.role !== 'borrowed' || now.drill !== why.id) continue;
      const before = (await this.options.ledger.history('host', host)).findLast((r) => r.status !== undefined && !(r.status.role === 'borrowed' && r.status.drill === why.id));
      back.set(host, before?.status ?? { role: 'spare' });
    }
    if (back.size > 0) await this.record(why, { hosts: back });
  }

  private async write(why: LedgerCause, change: { servers?: Map<string, ServerPlacement>; hosts?: Map<string, HostStatus> }, retried = false): Promise<void> {
    const servers = [...(change.servers ?? [])].filter(([id, p]) => !same(this.placementOf(id), p)).map(([id, placement]) => ({ id, version: this.servers.get(id)?.version ?? 0, placement }));
    const hosts = [...(change.hosts ?? [])].filter(([id, s]) => !same(this.statusOf(id), s)).map(([id, status]) => ({ id, version: this.hosts.get(id)?.version ?? 0, status }));
    if (servers.length + hosts.length === 0) return;
    try {
      const written = await this.options.ledger.apply({ site: this.options.site, token: this.options.fencingToken(), why, at: this.options.clock(), servers, hosts });
      for (const [id, e] of written.servers) this.servers.set(id, e);
      for (const [id, e] of written.hosts) this.hosts.set(id, e);
    } catch (err) {
      // Someone changed an entry since this planner read it (an operator, or a planner before a handover): read again and redo the change on what is there now.
      if (!(err instanceof LedgerConflictError) || retried) throw err;
      this.options.logger.warn({ err }, 'fleet ledger changed under this planner; reading it again');
      await this.reload();
      await this.write(why, change, true);
    }
  }

  private async reload(): Promise<void> {
    const state = await this.options.ledger.read();
    this.servers = state.servers;
    this.hosts = state.hosts;
  }
}
