import { z } from 'zod';
import { EpochMs, Id } from './common.schema.ts';

export const IncidentPhase = z.enum([
  'detected',
  'fencing',
  'planning',
  'claiming',
  'recovering',
  'verifying',
  'cleanup',
  'recovered',
  'degraded',
  'failed',
]);
export type IncidentPhase = z.infer<typeof IncidentPhase>;

export const ServerStep = z.enum(['pending', 'storage', 'network', 'boot', 'power-on', 'heartbeat', 'done', 'failed', 'unplaced']);

export const ServerProgress = z.object({
  server: Id,
  host: Id.nullable(),
  mode: z.enum(['bare-metal', 'vm']).nullable(),
  step: ServerStep,
  /** 0-100 through the server's recovery steps. */
  percent: z.number().min(0).max(100),
  message: z.string().optional(),
});
export type ServerProgress = z.infer<typeof ServerProgress>;

/** One server's line in an incident's final report; durations in ms from detection (detect: from the failure). */
export const ServerReport = z.object({
  server: Id,
  outcome: z.enum(['recovered', 'unrecovered']),
  detectMs: z.number(),
  fenceMs: z.number().nullable(),
  planMs: z.number().nullable(),
  heartbeatMs: z.number().nullable(),
  /** Failure (or drill start) to heartbeat, against the server's target. */
  rtoSeconds: z.number().nullable(),
  rtoTargetSeconds: z.number().optional(),
});
export type ServerReport = z.infer<typeof ServerReport>;

/** One thing a drill borrowed or made, as its cleanup found it. */
export const CleanupItem = z.object({
  /** The host it was on (for a VM, its hypervisor). */
  host: Id.optional(),
  /** The server whose rehearsal it served. */
  server: Id.optional(),
  /** What it is and what became of it, as an operator would check it: "host r2-h08 powered off and returned", "clone lun-7-drill-x: delete failed (array timeout)". */
  what: z.string().min(1),
});
export type CleanupItem = z.infer<typeof CleanupItem>;

/** On a drill's final phase: whether its cleanup restored everything the drill borrowed or made. */
export const DrillCleanup = z.object({
  /** True only when nothing is left: every borrowed host given back, every drill VLAN, clone, boot entry and VM undone. */
  complete: z.boolean(),
  restored: z.array(CleanupItem).default([]),
  /** What is still borrowed or changed, each with why: an operator must finish these by hand. */
  left: z.array(CleanupItem).default([]),
});
export type DrillCleanup = z.infer<typeof DrillCleanup>;

/** Published on fb.incident.<id>.<phase> for dashboards and the CLI. */
export const IncidentProgress = z.object({
  incidentId: Id,
  site: Id,
  phase: IncidentPhase,
  trigger: z.enum(['event', 'drill']),
  openedAt: EpochMs,
  at: EpochMs,
  hosts: z.array(Id),
  servers: z.array(ServerProgress).default([]),
  message: z.string().optional(),
  /** On the final phase: per-server timings. */
  report: z.array(ServerReport).optional(),
  /** On a drill's final phase: what its cleanup restored and what it left (absent before cleanup ran, and on failures). */
  cleanup: DrillCleanup.optional(),
});
export type IncidentProgress = z.infer<typeof IncidentProgress>;
