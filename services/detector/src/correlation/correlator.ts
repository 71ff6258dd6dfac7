/**
 * Turns confirmed host failures into verdicts. Failures that land together in
 * one failure domain become a single `domain.failed` naming exactly those
 * hosts; a few unrelated deaths stay individual `host.failed` verdicts.
 *
 * Hosts of a burned rack stop at the same instant, but the news of each
 * arrives at its own time: heartbeats expire up to one interval apart (they
 * are spread across the period), link traps and BMC probes trickle in under
 * load. So a decision about a domain waits while a domain-mate may still be
 * failing (`mayFail`: being probed, silent longer than a healthy host ever
 * is, or — once two of the domain have failed — not heard from since the
 * domain's first failure), and at most `maxHoldMs` after that first failure.
 * A single killed host, whose neighbours are all heard from, is reported
 * after the short gather window alone.
 *
 * Failures that share no domain are decided apart: a second rack burning
 * while the first is gathered gets its own window and its own hold.
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
  /** Gather window after a group's first pending failure. */
  windowMs: number;
  /** Never hold a domain's failures longer than this after its first, waiting for mates. */
  maxHoldMs: number;
  /** A domain failure needs at least this many failed hosts… */
  minHosts: number;
  /** …and at least this share of the domain's monitored hosts. */
  minFraction: number;
  /** Hosts that are expected to heartbeat (armed), for the share. */
  isMonitored(hostId: string): boolean;
  /**
   * Whether a mate that is not pending may yet fail, so the domain's decision
   * waits for it. `quietForMs` is given once the domain has two or more
   * failures pending: then a mate not heard from for that long (since the
   * domain's first failure was confirmed) is in doubt too. See mate-may-fail.ts.
   */
  mayFail(hostId: string, quietForMs: number | undefined): boolean;
  clock?: () => number;
  emitHost(candidate: FailureCandidate): void;
  emitDomain(domain: FailureDomain, failures: FailureCandidate[]): void;
}

const kindOrder: Record<FailureDomain['kind'], number> = { rack: 0, tor: 1, pdu: 2, site: 3 };

interface Pending {
  candidate: FailureCandidate;
  /** On the correlator's clock. */
  addedAt: number;
}

export class Correlator {
  private readonly pending = new Map<string, Pending>();
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
    this.pending.set(candidate.host, { candidate, addedAt: this.clock() });
    this.schedule(this.options.windowMs);
  }

  /** A pending host came back before anything was decided: a false alarm. */
  withdraw(host: string): void {
    this.pending.delete(host);
  }

  /** Decides every group of failures that can be decided now; returns true when nothing is left pending. */
  evaluate(now = this.clock()): boolean {
    for (const group of this.groups()) {
      if (this.ready(group, now)) this.decide(group);
    }
    return this.pending.size === 0;
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

  /**
   * Pending hosts joined by the domains they share: each group is decided on
   * its own, so one rack's hold neither delays nor cuts short another's.
   */
  private groups(): string[][] {
    const parent = new Map<string, string>();
    const find = (x: string): string => {
      let root = x;
      while (parent.get(root) !== root) root = parent.get(root) as string;
      parent.set(x, root);
      return root;
    };
    const owner = new Map<string, string>();
    for (const host of this.pending.keys()) {
      parent.set(host, host);
      for (const domain of this.options.domains.domainsOf(host)) {
        const key = domainKey(domain);
        const other = owner.get(key);
        if (other === undefined) owner.set(key, host);
        else parent.set(find(host), find(other));
      }
    }
    const groups = new Map<string, string[]>();
    for (const host of this.pending.keys()) {
      const root = find(host);
      const group = groups.get(root);
      if (group === undefined) groups.set(root, [host]);
      else group.push(host);
    }
    return [...groups.values()];
  }

  private ready(group: readonly string[], now: number): boolean {
    const entries = group.map((h) => this.pending.get(h) as Pending);
    if (now - Math.min(...entries.map((e) => e.addedAt)) < this.options.windowMs) return false;
    return !this.waitingForMates(group, now);
  }

  /** True while a domain of the group, within its hold, has a mate that may yet fail. */
  private waitingForMates(group: readonly string[], now: number): boolean {
    const byDomain = new Map<string, { domain: FailureDomain; firstAt: number; count: number }>();
    for (const host of group) {
      const addedAt = (this.pending.get(host) as Pending).addedAt;
      for (const domain of this.options.domains.domainsOf(host)) {
        const key = domainKey(domain);
        const seen = byDomain.get(key);
        if (seen === undefined) byDomain.set(key, { domain, firstAt: addedAt, count: 1 });
        else {
          seen.firstAt = Math.min(seen.firstAt, addedAt);
          seen.count++;
        }
      }
    }
    for (const { domain, firstAt, count } of byDomain.values()) {
      if (now - firstAt >= this.options.maxHoldMs) continue;
      const quietForMs = count >= 2 ? now - firstAt : undefined;
      for (const mate of this.options.domains.hostsOf(domain)) {
        if (!this.pending.has(mate) && this.options.mayFail(mate, quietForMs)) return true;
      }
    }
    return false;
  }

  private decide(group: readonly string[]): void {
    const remaining = new Map(group.map((h) => [h, (this.pending.get(h) as Pending).candidate]));
    for (const h of group) this.pending.delete(h);
    for (;;) {
      const best = this.bestDomain(remaining);
      if (!best) break;
      const failures = best.hosts.map((h) => remaining.get(h)).filter((c): c is FailureCandidate => c !== undefined);
      for (const c of failures) remaining.delete(c.host);
      this.options.emitDomain(best.domain, failures);
    }
    for (const c of remaining.values()) this.options.emitHost(c);
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
