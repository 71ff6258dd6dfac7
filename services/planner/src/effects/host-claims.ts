/**
 * Host claims: a Redis lease per host, owned by the incident rather than by
 * the planner process, so a planner that restarts and resumes the incident
 * still holds what it claimed, and a host is never given to two incidents.
 */
import { FirebreakError, type LeaseStore } from '@firebreak/shared';
import type { ClaimOutcome } from '../incident/effects.ts';

/** Recovery holds the host until the incident releases it; the TTL only frees hosts of an incident nobody runs any more. */
export const DEFAULT_CLAIM_TTL_MS = 2 * 60 * 60_000;

export function claimOwner(incidentId: string): string {
  return `incident:${incidentId}`;
}

function failedHosts(hosts: readonly string[], outcomes: readonly PromiseSettledResult<unknown>[]): { hosts: string[]; cause: unknown } {
  const failed = hosts.filter((_, i) => outcomes[i]?.status === 'rejected');
  const first = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  return { hosts: failed, cause: first?.reason };
}

export class HostClaims {
  constructor(
    private readonly leases: Pick<LeaseStore, 'acquire' | 'release'>,
    private readonly ttlMs: number = DEFAULT_CLAIM_TTL_MS,
  ) {}

  /**
   * Claims every host or learns who holds it. When Redis fails for some
   * hosts, throws a transient error after the others are settled: the hosts
   * claimed meanwhile stay the incident's, and claiming again is harmless.
   */
  async claim(incidentId: string, hosts: readonly string[]): Promise<ClaimOutcome> {
    const owner = claimOwner(incidentId);
    const unique = [...new Set(hosts)];
    const outcomes = await Promise.allSettled(unique.map((host) => this.leases.acquire(host, owner, this.ttlMs)));
    const failed = failedHosts(unique, outcomes);
    if (failed.hosts.length > 0) {
      throw FirebreakError.transient(
        `could not claim host(s) ${failed.hosts.join(', ')} for incident ${incidentId}: the lease store did not answer (${String(failed.cause)}); claim again`,
        failed.cause,
      );
    }
    const outcome: ClaimOutcome = { claimed: [], lost: [] };
    unique.forEach((host, i) => {
      const result = outcomes[i];
      if (result?.status !== 'fulfilled') return;
      // The store renews a lease for its own holder, but a holder that is us is ours whichever way it is reported.
      if (result.value.acquired || result.value.holder.owner === owner) outcome.claimed.push(host);
      else outcome.lost.push({ host, holder: result.value.holder.owner });
    });
    return outcome;
  }

  /** Releases only leases this incident holds; a host that expired or went to another incident is left alone. */
  async release(incidentId: string, hosts: readonly string[]): Promise<void> {
    const owner = claimOwner(incidentId);
    const unique = [...new Set(hosts)];
    const outcomes = await Promise.allSettled(unique.map((host) => this.leases.release(host, owner)));
    const failed = failedHosts(unique, outcomes);
    if (failed.hosts.length > 0) {
      throw FirebreakError.transient(
        `could not release host(s) ${failed.hosts.join(', ')} of incident ${incidentId}: the lease store did not answer (${String(failed.cause)}); release again`,
        failed.cause,
      );
    }
  }
}
