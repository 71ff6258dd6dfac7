import { z } from 'zod';
import { EpochMs, FailureDomain, Id } from './common.schema.ts';

/** Sent by a host agent about once a second on fb.hb.<site>.<rack>.<host>. */
export const Heartbeat = z.object({
  host: Id,
  site: Id,
  rack: Id,
  /** The server identity this host currently runs, if any. */
  server: Id.nullable(),
  /** True while the host runs a drill's rehearsal of that server (drill VLANs, cloned LUNs), not the server itself. */
  drill: z.boolean().optional(),
  seq: z.number().int().nonnegative(),
  sentAt: EpochMs,
});
export type Heartbeat = z.infer<typeof Heartbeat>;

export const FailureCause = z.enum([
  'heartbeat-lost',
  'bmc-unreachable',
  'bmc-power-off',
  'bmc-critical',
  'link-down',
  'pdu-trap',
]);
export type FailureCause = z.infer<typeof FailureCause>;

/** What the detector saw, so an operator can audit a verdict. */
export const Evidence = z.object({
  lastHeartbeatAt: EpochMs.nullable().optional(),
  missedHeartbeats: z.number().int().nonnegative().optional(),
  phi: z.number().nonnegative().optional(),
  bmc: z
    .object({
      reachable: z.boolean(),
      powerState: z.enum(['on', 'off', 'unknown']).optional(),
      health: z.enum(['OK', 'Warning', 'Critical', 'unknown']).optional(),
      error: z.string().optional(),
    })
    .optional(),
  link: z.object({ switch: Id, port: z.number().int().min(1), status: z.enum(['up', 'down']) }).optional(),
});
export type Evidence = z.infer<typeof Evidence>;

const hostVerdictBase = {
  host: Id,
  site: Id,
  rack: Id,
  /**
   * Bumped each time the host goes from healthy to failed; two detectors that
   * see the same failure publish the same (host, epoch) and dedupe on the bus.
   */
  epoch: z.number().int().nonnegative(),
  detectedAt: EpochMs,
  detector: z.string().min(1),
};

export const HostFailed = z.object({ ...hostVerdictBase, cause: FailureCause, evidence: Evidence });
export type HostFailed = z.infer<typeof HostFailed>;

/** Heartbeats stopped but the BMC says the system is on and healthy: isolated, no failover. */
export const HostSuspect = z.object({ ...hostVerdictBase, evidence: Evidence });
export type HostSuspect = z.infer<typeof HostSuspect>;

export const HostRecovered = z.object({
  ...hostVerdictBase,
  server: Id.nullable(),
  downForMs: z.number().int().nonnegative().optional(),
});
export type HostRecovered = z.infer<typeof HostRecovered>;

export const DomainFailed = z.object({
  domain: FailureDomain,
  hosts: z.array(Id).min(1, 'a domain failure names at least one host'),
  causes: z.array(FailureCause).min(1),
  firstFailureAt: EpochMs,
  detectedAt: EpochMs,
  /** Stable across detectors for one failure, for bus dedupe. */
  epoch: z.number().int().nonnegative(),
  detector: z.string().min(1),
});
export type DomainFailed = z.infer<typeof DomainFailed>;

/** What a drill rehearses: a whole failure domain or a list of hosts. */
export const DrillScope = z.union([
  z.object({ domain: FailureDomain }),
  z.object({ site: Id, hosts: z.array(Id).min(1) }),
]);
export type DrillScope = z.infer<typeof DrillScope>;

export const DrillStart = z.object({
  drillId: Id,
  scope: DrillScope,
  requestedBy: z.string().min(1),
  requestedAt: EpochMs,
  /** Stop and clean up on its own after this long. */
  maxDurationSeconds: z.number().int().positive().default(3600),
});
export type DrillStart = z.infer<typeof DrillStart>;

export const DrillStop = z.object({
  drillId: Id,
  requestedBy: z.string().min(1),
  requestedAt: EpochMs,
  reason: z.string().optional(),
});
export type DrillStop = z.infer<typeof DrillStop>;
