/**
 * Turns confirmed host failures into verdicts. Failures that land together in
 * one failure domain become a single `domain.failed` naming exactly those
 * hosts; a few unrelated deaths stay individual `host.failed` verdicts.
 *
 * Hosts of a burned rack stop at the same instant but expire up to one
 * heartbeat interval apart (their heartbeats are spread across the second).
 * So a decision waits while a domain-mate is *overdue* — silent for longer
 * than a healthy host ever is, but not yet expired — and at most `maxHoldMs`.
 * A single killed host has no overdue neighbours and is reported after the
 * short gather window alone.
 */
import type { Evidence, FailureCause, FailureDomain } from '@firebreak/shared';
import { domainKey, type DomainMap } from './failure-domains.ts';

export interface FailureCandidate {
  host: string;
  cause: FailureCause;
  evidence: Evidence;
  /** Same for every detector that saw this failure: the basis of bus dedupe. */
  epoch: number;
  /** When this detector confirmed the failure. */
  confirmedAt: number;
}

export interface CorrelatorOptions {
  domains: DomainMap;
  /** Gather window after the first pending failure. */
  windowMs: number;
  /** Never hold a failure longer than this waiting for overdue neighbours. */
  maxHoldMs: number;
  /** A domain failure needs at least this many failed hosts… */
  minHosts: number;
  /** …and at least this share of the domain's monitored hosts. */
  minFraction: number;
  /** Hosts that are expected to heartbeat (armed), for the share. */
  isMonitored(hostId: string): boolean;
  /** Silent longer than a healthy host ever is, and not yet reported. */
  isOverdue(hostId: string): boolean;
  clock?: () => number;
  emitHost(candidate: FailureCandidate): void;
  emitDomain(domain: FailureDomain, failures: FailureCandidate[]): void;
}

const kindOrder: Record<FailureDomain['kind'], number> = { rack: 0, tor: 1, pdu: 2, site: 3 };

export class Correlator {
  private readonly pending = new Map<string, FailureCandidate>();
  private firstPendingAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly clock: () => number;

  constructor(private readonly options: CorrelatorOptions) {
    this.clock = options.clock ?? Date.now;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  add(candidate: FailureCandidate): void {
    if (this.pending.has(candidate.host)) return;
    if (this.pending.size === 0) this.firstPendingAt = this.clock();
    this.pending.set(candidate.host, candidate);
    this.schedule(this.options.windowMs);
  }

  /** A pending host came back before anything was decided: a false alarm. */
  withdraw(host: string): void {
    this.pending.delete(host);
  }

  /** Decides what can be decided now; returns true when nothing is left pending. */
  evaluate(now = this.clock()): boolean {
    if (this.pending.size === 0) return true;
    const held = now - this.firstPendingAt;
    if (held < this.options.windowMs) return false;
    if (held < this.options.maxHoldMs && this.anyOverdueNeighbour()) return false;

    const remaining = new Map(this.pending);
    for (;;) {
      const best = this.bestDomain(remaining);
      if (!best) break;
      const failures = best.hosts.map((h) => remaining.get(h)).filter((c): c is FailureCandidate => c !== undefined);
      for (const c of failures) remaining.delete(c.host);
      this.options.emitDomain(best.domain, failures);
    }
    for (const c of remaining.values()) this.options.emitHost(c);
    this.pending.clear();
    return true;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.evaluate()) this.schedule(Math.max(10, Math.min(50, this.options.windowMs)));
    }, delayMs);
    // The bus connection keeps a detector alive; a pending decision must not keep a test alive.
    this.timer.unref();
  }

  private anyOverdueNeighbour(): boolean {
    const seen = new Set<string>();
    for (const host of this.pending.keys()) {
      for (const domain of this.options.domains.domainsOf(host)) {
        const key = domainKey(domain);
        if (seen.has(key)) continue;
        seen.add(key);
        for (const mate of this.options.domains.hostsOf(domain)) {
          if (!this.pending.has(mate) && this.options.isOverdue(mate)) return true;
        }
      }
    }
    return false;
  }

  /** The qualifying domain that explains the most pending failures; ties go to the smaller domain, then rack < tor < pdu. */
  private bestDomain(remaining: ReadonlyMap<string, FailureCandidate>): { domain: FailureDomain; hosts: string[] } | undefined {
    let best: { domain: FailureDomain; hosts: string[]; size: number } | undefined;
    const seen = new Set<string>();
    for (const host of remaining.keys()) {
      for (const domain of this.options.domains.domainsOf(host)) {
        const key = domainKey(domain);
        if (seen.has(key)) continue;
        seen.add(key);
        const members = this.options.domains.hostsOf(domain);
        const failed = members.filter((h) => remaining.has(h));
        const monitored = members.filter((h) => remaining.has(h) || this.options.isMonitored(h)).length;
        if (failed.length < this.options.minHosts || failed.length < this.options.minFraction * monitored) continue;
        const better =
          !best ||
          failed.length > best.hosts.length ||
          (failed.length === best.hosts.length &&
            (members.length < best.size || (members.length === best.size && kindOrder[domain.kind] < kindOrder[best.domain.kind])));
        if (better) best = { domain, hosts: failed.sort(), size: members.length };
      }
    }
    return best && { domain: best.domain, hosts: best.hosts };
  }
}
