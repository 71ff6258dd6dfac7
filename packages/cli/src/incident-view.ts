/**
 * How an incident looks on a terminal: `status`, the `up` panel, `drill
 * --wait` and the demo all draw it here. Plain text, no escape codes, so the
 * same lines serve a pipe, a log file and a terminal.
 */
import type { IncidentProgress, ServerProgress, ServerReport } from '@firebreak/shared';

export const finalPhases: ReadonlySet<string> = new Set(['recovered', 'degraded', 'failed']);

export function isFinal(progress: Pick<IncidentProgress, 'phase'>): boolean {
  return finalPhases.has(progress.phase);
}

const BAR_WIDTH = 20;

/** `[##########..........]` for 50 %. */
export function progressBar(percent: number, width = BAR_WIDTH): string {
  const clamped = Math.max(0, Math.min(100, percent));
  const filled = Math.round((clamped / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 120 * 60) return `${Math.round(s / 60)} min ago`;
  return s < 48 * 3600 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86_400)} days ago`;
}

function serverCounts(servers: readonly ServerProgress[]): string {
  const done = servers.filter((s) => s.step === 'done').length;
  return `${done}/${servers.length} servers up`;
}

/** The incident's heading line. */
export function incidentHeading(p: IncidentProgress, now: number): string {
  const trigger = p.trigger === 'drill' ? 'drill' : 'failure';
  const message = p.message ? `  ${p.message}` : '';
  return `${p.incidentId}  ${p.phase.toUpperCase()}  ${trigger} at ${p.site}, ${p.hosts.length} host(s), opened ${clock(p.openedAt)} (${ago(p.openedAt, now)})${message}`;
}

/** One line per server: name, where it goes, bar, percent, step and any message. */
export function serverLines(servers: readonly ServerProgress[], indent = '  '): string[] {
  const nameWidth = Math.max(6, ...servers.map((s) => s.server.length));
  const hostWidth = Math.max(4, ...servers.map((s) => (s.host ?? '-').length));
  return servers.map((s) => {
    const where = `${(s.host ?? '-').padEnd(hostWidth)} ${(s.mode ?? '').padEnd(10)}`;
    const pct = `${String(Math.round(s.percent)).padStart(3)}%`;
    const message = s.message ? `  ${s.message}` : '';
    return `${indent}${s.server.padEnd(nameWidth)} ${where} ${progressBar(s.percent)} ${pct} ${s.step}${message}`;
  });
}

/** Heading plus a bar per server. */
export function renderIncident(p: IncidentProgress, now: number): string[] {
  return [incidentHeading(p, now), ...serverLines(p.servers)];
}

/** One line that says what changed, for pipes and logs (`up` without a terminal, `drill --wait`). */
export function incidentLine(p: IncidentProgress): string {
  // Before planning there are no servers to count; the planner's message says how many there will be.
  if (p.servers.length === 0) return `${clock(p.at)} incident ${p.incidentId} ${p.phase}${p.message ? `  ${p.message}` : ''}`;
  const steps = p.servers.map((s) => `${s.server}:${s.step}${s.step === 'done' || s.step === 'unplaced' ? '' : `(${Math.round(s.percent)}%)`}`);
  return `${clock(p.at)} incident ${p.incidentId} ${p.phase} ${serverCounts(p.servers)}${steps.length > 0 ? `  ${steps.join(' ')}` : ''}`;
}

function ms(value: number | null): string {
  return value === null ? '-' : String(Math.round(value));
}

/** The final report: per server detect/fence/plan/heartbeat times and RTO against its target. */
export function renderReport(p: IncidentProgress): string[] {
  const report: readonly ServerReport[] = p.report ?? [];
  const lines = [`incident ${p.incidentId} ${p.phase}: ${report.filter((r) => r.outcome === 'recovered').length} of ${report.length} servers recovered`];
  if (report.length === 0) return lines;
  const nameWidth = Math.max(6, ...report.map((r) => r.server.length));
  lines.push(`  ${'server'.padEnd(nameWidth)}  outcome      detect ms  fence ms  plan ms  heartbeat ms  RTO s / target s`);
  for (const r of report) {
    const rto = r.rtoSeconds === null ? '-' : r.rtoSeconds.toFixed(1);
    const target = r.rtoTargetSeconds === undefined ? '' : ` / ${r.rtoTargetSeconds}`;
    const late = r.rtoSeconds !== null && r.rtoTargetSeconds !== undefined && r.rtoSeconds > r.rtoTargetSeconds ? '  OVER TARGET' : '';
    lines.push(
      `  ${r.server.padEnd(nameWidth)}  ${r.outcome.padEnd(11)}  ${ms(r.detectMs).padStart(9)}  ${ms(r.fenceMs).padStart(8)}  ${ms(r.planMs).padStart(7)}  ${ms(r.heartbeatMs).padStart(12)}  ${rto}${target}${late}`,
    );
  }
  return lines;
}
