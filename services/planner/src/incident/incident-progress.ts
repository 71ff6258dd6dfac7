/**
 * What dashboards and the CLI see of an incident: its phase and every
 * server's step, derived from the machine's context (never stored twice).
 */
import type { IncidentPhase, IncidentProgress, ServerReport } from '@firebreak/shared';
import type { IncidentContext } from './incident.machine.ts';
import { stepsOf } from './recovery-steps.ts';

const phases: Record<string, IncidentPhase> = {
  detected: 'detected',
  fencing: 'fencing',
  planning: 'planning',
  claiming: 'claiming',
  borrowing: 'claiming',
  releasing: 'planning',
  recovering: 'recovering',
  verifying: 'verifying',
  releasingFailed: 'verifying',
  outcome: 'verifying',
  drilling: 'verifying',
  cleanup: 'cleanup',
  recovered: 'recovered',
  degraded: 'degraded',
  failed: 'failed',
};

const stepProgress: Record<string, IncidentProgress['servers'][number]['step']> = {
  prepare: 'storage',
  storage: 'storage',
  network: 'network',
  boot: 'boot',
  'power-on': 'power-on',
  'vm-define': 'boot',
  'vm-start': 'power-on',
  heartbeat: 'heartbeat',
};

export function phaseOf(state: string): IncidentPhase {
  return phases[state] ?? 'detected';
}

export function incidentProgress(state: string, context: IncidentContext, now: number): IncidentProgress {
  const servers: IncidentProgress['servers'] = [];
  for (const t of Object.values(context.targets)) {
    if (t.target.mode === 'hypervisor') continue;
    const host = t.target.mode === 'vm' ? t.target.hypervisor : t.target.host;
    const steps = stepsOf(t.target);
    const index = t.step === null ? 0 : steps.indexOf(t.step);
    servers.push({
      server: t.target.server,
      host,
      mode: t.target.mode,
      step: t.status === 'done' ? 'done' : t.status === 'failed' ? 'failed' : t.step === null ? 'pending' : (stepProgress[t.step] ?? 'pending'),
      percent: t.status === 'done' ? 100 : Math.round((100 * Math.max(0, index)) / steps.length),
      ...(t.error !== null && { message: t.error }),
    });
  }
  for (const u of context.unrecovered) {
    if (servers.some((s) => s.server === u.server)) continue;
    servers.push({ server: u.server, host: null, mode: null, step: 'unplaced', percent: 0, message: u.reason });
  }
  servers.sort((a, b) => a.server.localeCompare(b.server));
  const done = servers.filter((s) => s.step === 'done').length;
  return {
    incidentId: context.incidentId,
    site: context.site,
    phase: phaseOf(state),
    trigger: context.trigger,
    openedAt: context.detectedAt,
    at: now,
    hosts: context.hosts,
    servers,
    message: context.error ?? `${done} of ${context.servers.length} servers recovered`,
    ...(context.cleanup !== null && { cleanup: { complete: context.cleanup.left.length === 0, restored: context.cleanup.restored, left: context.cleanup.left } }),
  };
}

/** Per-server timings for the final report. */
export function serverTimings(context: IncidentContext, rtoTargets: ReadonlyMap<string, number> = new Map()): ServerReport[] {
  const fenceMs = context.fencedAt === null ? null : context.fencedAt - context.detectedAt;
  const planMs = context.plannedAt === null ? null : context.plannedAt - (context.fencedAt ?? context.detectedAt);
  return context.servers.map((server) => {
    const target = context.targets[server];
    const heartbeatAt = target?.status === 'done' ? target.heartbeatAt : null;
    return {
      server,
      outcome: heartbeatAt === null ? 'unrecovered' : 'recovered',
      detectMs: context.detectedAt - context.firstFailureAt,
      fenceMs,
      planMs,
      heartbeatMs: heartbeatAt === null ? null : heartbeatAt - context.detectedAt,
      rtoSeconds: heartbeatAt === null ? null : (heartbeatAt - context.firstFailureAt) / 1000,
      ...(rtoTargets.has(server) && { rtoTargetSeconds: rtoTargets.get(server) as number }),
    };
  });
}
