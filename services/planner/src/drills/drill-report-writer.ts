/**
 * Each finished drill's report, kept in the store (store.drills). Written
 * from the drill's final IncidentProgress, where the incident manager
 * publishes it (after the final state is saved): the leader's effects are
 * wrapped so that publish also writes the report. A leader that dies between
 * the two leaves the drill's request without a report; the next leader,
 * once elected, looks up the final progress of such drills in FB_EVENTS and
 * writes what is missing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  IncidentProgress} from '@firebreak/shared';
import {
  drillVerdict,
  storedProgress,
  type Bus,
  type DrillReport,
  type DrillReports,
  type DrillRequest,
  type Logger,
} from '@firebreak/shared';
import type { IncidentEffects } from '../incident/effects.ts';

const DRILL_PREFIX = 'drill-';
const finalPhases = ['recovered', 'degraded', 'failed'] as const;

export function isFinalDrillProgress(progress: IncidentProgress): boolean {
  return progress.trigger === 'drill' && (finalPhases as readonly string[]).includes(progress.phase) && progress.incidentId.startsWith(DRILL_PREFIX);
}

/** The planner runs drill D as incident `drill-D`. */
export function drillIdOf(incidentId: string): string {
  return incidentId.startsWith(DRILL_PREFIX) ? incidentId.slice(DRILL_PREFIX.length) : incidentId;
}

/** The report of a drill from its final progress and, when the planner still has it, its request. */
export function drillReportOf(progress: IncidentProgress, request: DrillRequest | undefined): DrillReport {
  const serverProgress = new Map(progress.servers.map((s) => [s.server, s]));
  return {
    drillId: drillIdOf(progress.incidentId),
    incidentId: progress.incidentId,
    site: progress.site,
    scope: request?.scope ?? { site: progress.site, hosts: progress.hosts.length > 0 ? progress.hosts : ['unknown'] },
    requestedBy: request?.requestedBy ?? 'unknown (the request was not kept)',
    requestedAt: request?.requestedAt ?? progress.openedAt,
    maxDurationSeconds: request?.maxDurationSeconds ?? null,
    startedAt: progress.openedAt,
    endedAt: progress.at,
    phase: progress.phase,
    ...(progress.message !== undefined && { message: progress.message }),
    servers: (progress.report ?? []).map((r) => {
      const p = serverProgress.get(r.server);
      return { ...r, host: p?.host ?? null, ...(r.outcome !== 'recovered' && p?.message !== undefined && { reason: p.message }) };
    }),
    cleanup: progress.cleanup ?? null,
    passed: drillVerdict(progress).passed,
  };
}

/** The drill incident's final progress as stored in FB_EVENTS. */
export function storedFinalProgress(bus: Pick<Bus, 'jsm'>, incidentId: string): Promise<IncidentProgress | undefined> {
  return storedProgress(bus, incidentId, finalPhases);
}

export interface DrillReportWriterOptions {
  drills: Pick<DrillReports, 'request' | 'pendingRequests' | 'save'>;
  site: string;
  logger: Logger;
  /** The final progress of a drill incident that closed while no planner wrote its report. */
  finalProgress(incidentId: string): Promise<IncidentProgress | undefined>;
  /** Waits between attempts to save a report; default 250 ms, 1 s, then 5 s. */
  retryMs?: readonly number[];
}

export class DrillReportWriter {
  private readonly writing = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: DrillReportWriterOptions) {}

  /** The effects, with a drill's final progress also written as its report. */
  wrap(effects: IncidentEffects): IncidentEffects {
    return {
      ...effects,
      publishProgress: (progress) => {
        effects.publishProgress(progress);
        if (isFinalDrillProgress(progress)) this.track(this.write(progress));
      },
    };
  }

  /**
   * Writes the reports of this site's drills that ended without one: a
   * request with no open incident (`open` lists the incidents open now)
   * whose final progress is in the stream. Called once elected, after open
   * incidents are resumed.
   */
  async catchUp(open: ReadonlySet<string>): Promise<string[]> {
    const written: string[] = [];
    for (const request of await this.options.drills.pendingRequests()) {
      const incidentId = `${DRILL_PREFIX}${request.drillId}`;
      if (request.site !== this.options.site || open.has(incidentId)) continue;
      try {
        const progress = await this.options.finalProgress(incidentId);
        if (progress === undefined || !isFinalDrillProgress(progress)) continue;
        await this.options.drills.save(drillReportOf(progress, request));
        written.push(request.drillId);
      } catch (err) {
        this.options.logger.warn({ drillId: request.drillId, err }, 'could not write the report of a drill that ended under another planner; trying at the next election');
      }
    }
    if (written.length > 0) this.options.logger.info({ drills: written }, 'wrote the reports of drills that ended without one');
    return written;
  }

  /** Stops retrying; a report not saved by then is written by the next leader's catch-up. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all([...this.writing]);
  }

  private track(work: Promise<void>): void {
    this.writing.add(work);
    void work.finally(() => this.writing.delete(work));
  }

  private async write(progress: IncidentProgress): Promise<void> {
    const drillId = drillIdOf(progress.incidentId);
    const waits = this.options.retryMs ?? [250, 1_000, 5_000];
    for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
      try {
        const report = drillReportOf(progress, await this.options.drills.request(drillId));
        await this.options.drills.save(report);
        this.options.logger.info({ drillId, phase: report.phase, passed: report.passed, servers: report.servers.length, cleanupLeft: report.cleanup?.left.length ?? null }, 'drill report saved');
        return;
      } catch (err) {
        this.options.logger.warn({ drillId, attempt, err }, 'could not save the drill report; trying again');
        await sleep(waits[Math.min(attempt, waits.length - 1)] ?? 5_000, undefined, { signal: this.stopping.signal }).catch(() => {});
      }
    }
  }
}
