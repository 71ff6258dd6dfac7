/**
 * What the detector last said about each host, folded from its verdicts
 * (`host.failed`, `host.suspect`, `host.recovered`, `domain.failed`). `status`
 * folds the stored history; `up` folds them live. Given the inventory, a
 * failed domain takes all its hosts down, idle spares too, as the planner
 * takes them: nobody heard a powered-off spare go, but it burned with its rack.
 */
import { DomainFailed, HostFailed, HostRecovered, HostSuspect, siteDomains, topics, type FailureDomain, type Inventory, type SiteDomains } from '@firebreak/shared';

export type HostVerdictState = 'failed' | 'suspect' | 'recovered';

export interface HostState {
  host: string;
  site: string;
  /** Null when only a domain verdict named the host and the domain is not a rack. */
  rack: string | null;
  state: HostVerdictState;
  since: number;
  cause: string | null;
}

export class HostStates {
  private readonly hosts = new Map<string, HostState>();
  private readonly sites = new Map<string, SiteDomains>();

  constructor(private readonly inventory?: Inventory) {}

  /** Folds one message from `fb.evt.>`; anything else or anything invalid is ignored. */
  apply(subject: string, data: unknown): void {
    switch (subject) {
      case topics.hostFailed.subject: {
        const e = HostFailed.safeParse(data);
        if (e.success) this.set({ host: e.data.host, site: e.data.site, rack: e.data.rack, state: 'failed', since: e.data.detectedAt, cause: e.data.cause });
        break;
      }
      case topics.hostSuspect.subject: {
        const e = HostSuspect.safeParse(data);
        if (e.success) this.set({ host: e.data.host, site: e.data.site, rack: e.data.rack, state: 'suspect', since: e.data.detectedAt, cause: 'isolated' });
        break;
      }
      case topics.hostRecovered.subject: {
        const e = HostRecovered.safeParse(data);
        if (e.success) this.set({ host: e.data.host, site: e.data.site, rack: e.data.rack, state: 'recovered', since: e.data.detectedAt, cause: null });
        break;
      }
      case topics.domainFailed.subject: {
        const e = DomainFailed.safeParse(data);
        if (!e.success) break;
        const { domain, hosts, causes, detectedAt } = e.data;
        for (const host of new Set([...hosts, ...this.membersOf(domain)])) {
          const rack = domain.kind === 'rack' ? domain.id : (this.hosts.get(host)?.rack ?? null);
          this.set({ host, site: domain.site, rack, state: 'failed', since: detectedAt, cause: `${domain.kind} ${domain.id}: ${causes.join(', ')}` });
        }
        break;
      }
      default:
        break;
    }
  }

  get(host: string): HostState | undefined {
    return this.hosts.get(host);
  }

  /** Hosts whose newest verdict is failed or suspect, by host id. */
  notReady(site?: string): HostState[] {
    return [...this.hosts.values()]
      .filter((h) => h.state !== 'recovered' && (site === undefined || h.site === site))
      .sort((a, b) => a.host.localeCompare(b.host));
  }

  /** Every host of the domain the inventory knows of; none without an inventory. */
  private membersOf(domain: FailureDomain): string[] {
    if (this.inventory === undefined) return [];
    let site = this.sites.get(domain.site);
    if (site === undefined) this.sites.set(domain.site, (site = siteDomains(this.inventory, domain.site)));
    return (site.hostsOf(domain) ?? []).map((h) => h.id);
  }

  /** A verdict older than the one held does not win (two detectors, or replay out of order). */
  private set(next: HostState): void {
    const held = this.hosts.get(next.host);
    if (held !== undefined && held.since > next.since) return;
    this.hosts.set(next.host, next);
  }
}
