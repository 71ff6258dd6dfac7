/**
 * How drills look on a terminal: a drill's outcome at the end of `drill
 * --wait`, the stored reports of `drill reports`, the open drills of `drill
 * list`. Plain text, as incident-view draws incidents.
 */
import { describeCleanupItem, drillVerdict, type DrillReport, type DrillScope, type IncidentPhase, type IncidentProgress } from '@firebreak/shared';

export function scopeText(scope: DrillScope): string {
  return 'domain' in scope ? `${scope.domain.kind} ${scope.domain.id}` : `host ${scope.hosts.join(',')}`;
}

/** `4m12s`, `30m`, `1h02m`, `2h`, `38s`: to the second under an hour, to the minute above. */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (h > 0) return m === 0 ? `${h}h` : `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return sec === 0 ? `${m}m` : `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

/** `2026-03-07 03:00:05` (UTC). */
export function timeText(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** The lines after a drill's report: what its cleanup did, and whether it passed and if not why. */
export function renderDrillOutcome(progress: IncidentProgress): string[] {
  const verdict = drillVerdict(progress);
  const lines: string[] = [];
  const cleanup = progress.cleanup;
  if (cleanup === undefined) lines.push('cleanup: the planner did not report what it restored');
  else {
    lines.push(`cleanup: ${cleanup.complete && cleanup.left.length === 0 ? 'restored everything' : 'INCOMPLETE'} (${cleanup.restored.length} restored, ${cleanup.left.length} left)`);
    for (const item of cleanup.restored) lines.push(`  restored: ${describeCleanupItem(item)}`);
  }
  if (verdict.passed) {
    lines.push(`drill passed: ${verdict.recovered} of ${verdict.total} servers recovered${cleanup === undefined ? '' : ' and cleanup restored everything'}`);
  } else {
    lines.push('drill FAILED; what is left:');
    for (const problem of verdict.problems) lines.push(`  - ${problem}`);
  }
  return lines;
}

/** The worst RTO against its target: a server not recovered first, else the highest share of its target. */
export function worstRto(report: Pick<DrillReport, 'servers'>): string {
  if (report.servers.length === 0) return '-';
  const down = report.servers.find((s) => s.outcome !== 'recovered');
  if (down) return `${down.server} not up`;
  let worst: (typeof report.servers)[number] | undefined;
  let worstShare = -Infinity;
  for (const s of report.servers) {
    const rto = s.rtoSeconds ?? 0;
    const share = s.rtoTargetSeconds ? rto / s.rtoTargetSeconds : rto;
    if (share > worstShare) [worst, worstShare] = [s, share];
  }
  if (worst === undefined) return '-';
  const rto = (worst.rtoSeconds ?? 0).toFixed(1);
  const over = worst.rtoTargetSeconds !== undefined && (worst.rtoSeconds ?? 0) > worst.rtoTargetSeconds ? ' OVER' : '';
  return `${rto}s/${worst.rtoTargetSeconds ?? '-'}s ${worst.server}${over}`;
}

function cleanupText(report: DrillReport): string {
  if (report.cleanup === null) return 'unknown';
  if (report.cleanup.complete && report.cleanup.left.length === 0) return 'ok';
  return report.cleanup.left.length === 0 ? 'incomplete' : `left ${report.cleanup.left.length}`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Newest first, one line each; under a drill that did not pass, what is left. */
export function renderDrillReports(reports: readonly DrillReport[], site: string | undefined): string[] {
  const where = site === undefined ? '' : ` at ${site}`;
  if (reports.length === 0) return [`no drill reports${where} (the planner keeps one per finished drill)`];
  const rows = reports.map((r) => [
    r.drillId,
    `${scopeText(r.scope)}@${r.site}`,
    timeText(r.startedAt),
    durationText(r.endedAt - r.startedAt),
    r.passed ? 'passed' : `FAILED (${r.phase})`,
    `${r.servers.filter((s) => s.outcome === 'recovered').length}/${r.servers.length}`,
    worstRto(r),
    cleanupText(r),
  ]);
  const lines = table(['drill', 'domain', 'started (UTC)', 'took', 'outcome', 'up', 'worst RTO/target', 'cleanup'], rows);
  const out = [`${reports.length} drill report(s)${where}, newest first:`, lines[0] ?? ''];
  reports.forEach((r, i) => {
    out.push(lines[i + 1] ?? '');
    out.push(`    by ${r.requestedBy}${r.maxDurationSeconds === null ? '' : `, for at most ${durationText(r.maxDurationSeconds * 1000)}`}`);
    if (r.passed) return;
    const problems = drillVerdict({ phase: r.phase, message: r.message, report: r.servers, cleanup: r.cleanup }).problems;
    for (const p of problems) out.push(`    - ${p}`);
  });
  return out;
}

/** An open drill as `drill list` shows it. */
export interface OpenDrill {
  drillId: string;
  incidentId: string;
  site: string | null;
  scope: DrillScope | null;
  requestedBy: string | null;
  requestedAt: number | null;
  maxDurationSeconds: number | null;
  /** Null until the planner published progress; `requested` while the planner has not opened it. */
  phase: IncidentPhase | 'requested' | null;
  servers: { recovered: number; total: number };
}

export function renderOpenDrills(drills: readonly OpenDrill[], now: number): string[] {
  if (drills.length === 0) return ['no open drills ("firebreak drill reports" lists finished ones)'];
  const rows = drills.map((d) => [
    d.drillId,
    d.scope === null ? '?' : `${scopeText(d.scope)}@${d.site ?? '?'}`,
    d.requestedAt === null ? '?' : timeText(d.requestedAt),
    d.requestedAt === null || d.maxDurationSeconds === null ? '?' : durationText(Math.max(0, d.requestedAt + d.maxDurationSeconds * 1000 - now)),
    d.phase ?? 'no progress yet',
    `${d.servers.recovered}/${d.servers.total}`,
    d.requestedBy ?? '?',
  ]);
  return [`${drills.length} open drill(s):`, ...table(['drill', 'domain', 'started (UTC)', 'stops in', 'phase', 'up', 'by'], rows), '  stop one with "firebreak drill stop <drill>"'];
}
