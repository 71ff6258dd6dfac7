/**
 * Whether a command comes from the planner that leads its site now: its
 * fencing token and issuer must be those of the current holder of the site's
 * planner lease. Nothing a command carries is ever written back, so a forged
 * token — lower, equal, or higher — can neither act nor make a real leader's
 * later commands look stale.
 *
 * The holder is cached for a moment (never past the lease's own expiry) and
 * read again on any mismatch, so a new leader's first command is accepted at
 * once and a deposed one's are refused within `cacheMs` of a handover.
 */
import { plannerLeaseKey, type LeaseHolder, type LeaseStore } from '@firebreak/shared';

export type LeaseVerdict = { accepted: true } | { accepted: false; reason: string };

export interface LeaseAuthorityOptions {
  leases: Pick<LeaseStore, 'holder'>;
  /** How long a holder read from the store is trusted; default 500 ms. */
  cacheMs?: number;
  clock?: () => number;
}

interface Cached {
  holder: LeaseHolder | undefined;
  until: number;
}

export class LeaseAuthority {
  private readonly cache = new Map<string, Cached>();
  private readonly reads = new Map<string, Promise<Cached>>();
  private readonly cacheMs: number;
  private readonly clock: () => number;

  constructor(private readonly options: LeaseAuthorityOptions) {
    this.cacheMs = options.cacheMs ?? 500;
    this.clock = options.clock ?? Date.now;
  }

  async check(command: { site: string; fencingToken: number; issuer: string }): Promise<LeaseVerdict> {
    const cached = this.cache.get(command.site);
    if (cached !== undefined && cached.until > this.clock() && matches(cached.holder, command)) return { accepted: true };
    const { holder } = await this.read(command.site);
    if (matches(holder, command)) return { accepted: true };
    return { accepted: false, reason: refusal(command, holder) };
  }

  /** One read per site at a time: a burst of mismatching commands shares it. */
  private read(site: string): Promise<Cached> {
    let pending = this.reads.get(site);
    if (pending === undefined) {
      const startedAt = this.clock();
      pending = this.options.leases
        .holder(plannerLeaseKey(site))
        .then((holder) => {
          const entry = { holder, until: startedAt + Math.min(this.cacheMs, holder?.expiresInMs ?? 0) };
          this.cache.set(site, entry);
          return entry;
        })
        .finally(() => this.reads.delete(site));
      this.reads.set(site, pending);
    }
    return pending;
  }
}

function matches(holder: LeaseHolder | undefined, command: { fencingToken: number; issuer: string }): boolean {
  return holder !== undefined && holder.token === command.fencingToken && holder.owner === command.issuer;
}

function refusal(command: { site: string; fencingToken: number; issuer: string }, holder: LeaseHolder | undefined): string {
  const from = `command from "${command.issuer}" with fencing token ${command.fencingToken}`;
  if (holder === undefined) return `${from} refused: no planner holds the lease for site ${command.site} (none elected, or its lease expired)`;
  if (command.fencingToken < holder.token) return `${from} refused: stale, the site ${command.site} lease is now held with token ${holder.token} (the issuer has lost its lease)`;
  if (command.fencingToken > holder.token) return `${from} refused: token above the lease holder's ${holder.token} for site ${command.site} (never issued)`;
  return `${from} refused: the site ${command.site} lease is held by another planner with that token (issuer does not match)`;
}
