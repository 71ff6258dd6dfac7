/**
 * An incident's newest progress as FB_EVENTS keeps it: the last message of
 * each `fb.incident.<id>.<phase>` subject (`last_by_subj`, on nats-server 2.9
 * too), one small request per phase however long the stream's history, and
 * the newest `at` wins (the stream sequence breaks a tie within one ms).
 */
import { IncidentPhase, IncidentProgress } from '../schemas/incident.schema.ts';
import type { Bus } from './bus.ts';
import { jetStreamErrorCode, jetStreamErrors } from './jetstream-errors.ts';
import { streams, subjects } from '../subjects.ts';

/** Undefined if none was published in `phases` (or the id cannot be named in a subject). */
export async function storedProgress(bus: Pick<Bus, 'jsm'>, incidentId: string, phases: readonly IncidentPhase[] = IncidentPhase.options): Promise<IncidentProgress | undefined> {
  let phaseSubjects: string[];
  try {
    phaseSubjects = phases.map((phase) => subjects.incidentProgress(incidentId, phase));
  } catch {
    return undefined;
  }
  const found = await Promise.all(
    phaseSubjects.map(async (subject) => {
      try {
        const stored = await bus.jsm.streams.getMessage(streams.events, { last_by_subj: subject });
        const parsed = IncidentProgress.safeParse(stored.json());
        return parsed.success ? { seq: stored.seq, progress: parsed.data } : undefined;
      } catch (err) {
        if (jetStreamErrorCode(err) === jetStreamErrors.noMessage) return undefined;
        throw err;
      }
    }),
  );
  let best: { seq: number; progress: IncidentProgress } | undefined;
  for (const candidate of found) {
    if (candidate === undefined) continue;
    if (best === undefined || candidate.progress.at > best.progress.at || (candidate.progress.at === best.progress.at && candidate.seq > best.seq)) best = candidate;
  }
  return best?.progress;
}
