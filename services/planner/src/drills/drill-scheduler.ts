/**
 * Runs the site's drill schedules while this planner leads it: on each tick,
 * each schedule's newest slot is taken in Redis (compare-and-set: a later
 * slot only) together with what was decided, fire or skip, so whichever
 * planner gets there first decides it and nobody decides it twice. A fired
 * slot publishes `fb.drill.start` with an id made from the schedule and the
 * slot: a slot taken but not yet published (the leader died in between) is
 * published by the next tick of whoever leads, and a second publish of the
 * same id is dropped by JetStream and by the planner.
 */
import type { DrillReports, DrillStart, Logger } from '@firebreak/shared';
import type { DrillSchedule } from './drill-schedule.ts';
import { decideSlot, latestSlot, nextSlot, scheduleRequester, type OpenWork } from './drill-slots.ts';

export interface DrillSchedulerOptions {
  /** This site's schedules. */
  schedules: readonly DrillSchedule[];
  drills: Pick<DrillReports, 'slot' | 'claimSlot' | 'updateSlot' | 'request' | 'report'>;
  /** Publishes the request (fb.drill.start, message id from the drill id). */
  publish(start: DrillStart): Promise<void>;
  /** What is open at the site now: incidents, drills, and drills requested but not opened yet. */
  openWork(): Promise<readonly OpenWork[]>;
  logger: Logger;
  clock?: () => number;
  /** How often schedules are looked at; default 10 s. */
  tickMs?: number;
  /** A slot not started within this long of its time is skipped as missed; default 5 min. */
  lateAfterMs?: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export class DrillScheduler {
  private readonly clock: () => number;
  private readonly tickMs: number;
  private readonly lateAfterMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: DrillSchedulerOptions) {
    this.clock = options.clock ?? Date.now;
    this.tickMs = options.tickMs ?? 10_000;
    this.lateAfterMs = options.lateAfterMs ?? 5 * 60_000;
  }

  /** Looks at once (a new leader fires a slot that is due), then every tick. */
  start(): void {
    if (this.options.schedules.length === 0) return;
    const now = this.clock();
    this.options.logger.info(
      { schedules: this.options.schedules.map((s) => ({ name: s.name, domain: `${s.domain.kind} ${s.domain.id}`, cron: s.cron, timeZone: s.timeZone, next: iso(nextSlot(s, now) ?? now) })) },
      'running drill schedules',
    );
    const loop = (): void => {
      this.running = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.tickMs);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One look at every schedule; a schedule that cannot be handled now (Redis, NATS) is tried again next tick. */
  async tick(): Promise<void> {
    for (const schedule of this.options.schedules) {
      if (this.stopped) return;
      try {
        await this.handle(schedule);
      } catch (err) {
        this.options.logger.warn({ schedule: schedule.name, err }, 'could not handle the drill schedule; trying again next tick');
      }
    }
  }

  private async handle(schedule: DrillSchedule): Promise<void> {
    const { drills, logger } = this.options;
    const now = this.clock();
    const slot = latestSlot(schedule, now);
    if (slot === undefined) return;
    const current = await drills.slot(schedule.key);
    if (current !== undefined && current.slot >= slot) {
      // Taken, but its publish never confirmed: finish it while it is still timely.
      if (current.slot === slot && current.state === 'firing' && current.drillId !== undefined && now - slot <= this.lateAfterMs) {
        await this.fire(schedule, slot, current.drillId, true);
      }
      return;
    }
    const decision = decideSlot(schedule, slot, { now, open: await this.options.openWork(), lateAfterMs: this.lateAfterMs });
    const claim = await drills.claimSlot(
      schedule.key,
      decision.fire ? { slot, state: 'firing', drillId: decision.drillId, at: now } : { slot, state: 'skipped', reason: decision.reason, at: now },
    );
    if (!claim.claimed) return;
    if (!decision.fire) {
      logger.info({ schedule: schedule.name, slot: iso(slot), reason: decision.reason, next: iso(nextSlot(schedule, now) ?? now) }, 'scheduled drill skipped');
      return;
    }
    await this.fire(schedule, slot, decision.drillId, false);
  }

  private async fire(schedule: DrillSchedule, slot: number, drillId: string, again: boolean): Promise<void> {
    const { drills, logger } = this.options;
    // Published before (the confirmation is what was lost): the planner knows the drill, or it has ended.
    const known = again && ((await drills.request(drillId)) !== undefined || (await drills.report(drillId)) !== undefined);
    if (!known) {
      await this.options.publish({
        drillId,
        scope: { domain: schedule.domain },
        requestedBy: scheduleRequester(schedule.name),
        requestedAt: this.clock(),
        maxDurationSeconds: schedule.maxDurationSeconds,
      });
    }
    await drills.updateSlot(schedule.key, { slot, state: 'fired', drillId, at: this.clock() });
    if (!known) {
      logger.info(
        { schedule: schedule.name, slot: iso(slot), drillId, domain: `${schedule.domain.kind} ${schedule.domain.id}`, maxDurationSeconds: schedule.maxDurationSeconds, next: iso(nextSlot(schedule, this.clock()) ?? slot) },
        'scheduled drill started',
      );
    }
  }
}
