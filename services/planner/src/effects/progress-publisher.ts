/**
 * Incident progress for dashboards and the CLI. Losing an update must never
 * stop a recovery, so publishing cannot fail from the caller's point of view;
 * failures are logged.
 */
import { createHash } from 'node:crypto';
import { topics, type BusLogger, type IncidentProgress } from '@firebreak/shared';
import type { EffectsBus } from './command-gateway.ts';

/**
 * The same update published twice (a resumed planner replaying its last
 * state) is stored once, while two different updates in the same phase and
 * millisecond (two servers finishing together) both are.
 */
export function progressMsgId(progress: IncidentProgress): string {
  const digest = createHash('sha256').update(JSON.stringify(progress)).digest('hex').slice(0, 16);
  return `progress-${progress.incidentId}-${progress.phase}-${progress.at}-${digest}`;
}

export class ProgressPublisher {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly bus: Pick<EffectsBus, 'publish'>,
    private readonly logger: BusLogger,
  ) {}

  publish(progress: IncidentProgress): void {
    const fields = { incidentId: progress.incidentId, phase: progress.phase };
    let sending: Promise<unknown>;
    try {
      sending = this.bus.publish(topics.incidentProgress(progress.incidentId, progress.phase), progress, { msgId: progressMsgId(progress) });
    } catch (err) {
      this.logger.error({ ...fields, err }, 'could not publish incident progress');
      return;
    }
    const tracked: Promise<void> = sending.then(
      () => {},
      (err: unknown) => this.logger.warn({ ...fields, err }, 'could not publish incident progress; dashboards miss this update'),
    );
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  /** Waits for updates still being published, so a clean shutdown does not drop the last one. */
  async flush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
