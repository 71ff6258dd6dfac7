import { z } from 'zod';
import { EpochMs, FailureDomain, Id, PriorityTier } from './common.schema.ts';

/**
 * What-if readiness: for a failure domain, what the planner would do if it
 * failed now with today's spares and repurposable hosts — an admission-control
 * check an operator runs before trouble, not during it.
 */

/** Asked on fb.readiness.check (request/reply); no domains means every domain of the site. */
export const ReadinessCheck = z.object({
  site: Id,
  domains: z.array(FailureDomain).optional(),
});
export type ReadinessCheck = z.infer<typeof ReadinessCheck>;

export const UnplacedServer = z.object({
  server: Id,
  priority: PriorityTier,
  reason: z.string(),
});
export type UnplacedServer = z.infer<typeof UnplacedServer>;

export const DomainReadiness = z.object({
  domain: FailureDomain,
  /** Production hosts in the domain that run a server. */
  hosts: z.number().int().nonnegative(),
  servers: z.number().int().nonnegative(),
  /** True when every server of the domain would be placed. */
  ready: z.boolean(),
  bareMetal: z.number().int().nonnegative(),
  vms: z.number().int().nonnegative(),
  conversions: z.number().int().nonnegative(),
  preemptions: z.number().int().nonnegative(),
  unplaced: z.array(UnplacedServer),
});
export type DomainReadiness = z.infer<typeof DomainReadiness>;

/** Published on fb.readiness.<site> periodically, and the reply to a check. */
export const ReadinessReport = z.object({
  site: Id,
  at: EpochMs,
  domains: z.array(DomainReadiness),
});
export type ReadinessReport = z.infer<typeof ReadinessReport>;
