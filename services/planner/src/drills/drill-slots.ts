/**
 * When a drill schedule is due, and whether its slot may fire: pure
 * functions of the schedule, the time and what is open, so tests drive them
 * with any clock.
 */
import { CronExpressionParser } from 'cron-parser';
import type { DrillSchedule } from './drill-schedule.ts';
import { firstQuietMinute } from './quiet-hours.ts';

/** Something open at the site that a scheduled drill must not run beside. */
export interface OpenWork {
  /** The incident, or for a drill not opened yet its request. */
  id: string;
  /** Set for a drill. */
  drillId: string | null;
  hosts: readonly string[];
}

export type SlotDecision = { fire: true; drillId: string } | { fire: false; reason: string };

export interface SlotContext {
  now: number;
  open: readonly OpenWork[];
  /** A slot is started at most this long after its time; later it was missed (no leader then) and is skipped. */
  lateAfterMs: number;
}

/** The newest slot at or before `now`, if the expression has one. */
export function latestSlot(schedule: Pick<DrillSchedule, 'cron' | 'timeZone'>, now: number): number | undefined {
  try {
    // prev() is strictly before its date: a millisecond on makes a slot at `now` itself count.
    return CronExpressionParser.parse(schedule.cron, { tz: schedule.timeZone, currentDate: new Date(now + 1) }).prev().getTime();
  } catch {
    return undefined;
  }
}

/** The first slot after `now`, for logs. */
export function nextSlot(schedule: Pick<DrillSchedule, 'cron' | 'timeZone'>, now: number): number | undefined {
  try {
    return CronExpressionParser.parse(schedule.cron, { tz: schedule.timeZone, currentDate: new Date(now) }).next().getTime();
  } catch {
    return undefined;
  }
}

/** `sched-<name>-<UTC slot>`: the same for every planner, so a slot's drill has one id however often it is published. */
export function scheduledDrillId(name: string, slot: number): string {
  const stamp = new Date(slot).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `sched-${name}-${stamp}`;
}

/** Who a scheduled drill says asked for it. */
export function scheduleRequester(name: string): string {
  return `schedule:${name}`;
}

const minutes = (ms: number): string => `${Math.round(ms / 60_000)} min`;

/**
 * Fire, or skip with why. Skipped: a slot missed by more than `lateAfterMs`;
 * one whose drill would start in or run into quiet hours; any failure
 * incident open at the site (production comes first, and a drill would take
 * the spares it may need); a drill open on any host of the domain.
 */
export function decideSlot(schedule: DrillSchedule, slot: number, context: SlotContext): SlotDecision {
  const { now } = context;
  if (now - slot > context.lateAfterMs) return { fire: false, reason: `missed: ${minutes(now - slot)} late (no planner led the site at its time)` };
  const quiet = firstQuietMinute(schedule.quietHours, now, now + schedule.maxDurationSeconds * 1000, schedule.timeZone);
  if (quiet) {
    return {
      fire: false,
      reason: quiet.at <= now ? `quiet hours (${quiet.window.text})` : `would run into quiet hours (${quiet.window.text}) ${minutes(quiet.at - now)} after its start, within its ${minutes(schedule.maxDurationSeconds * 1000)} maximum`,
    };
  }
  const failure = context.open.find((o) => o.drillId === null);
  if (failure) return { fire: false, reason: `incident ${failure.id} is open at the site: a real failure comes first` };
  const hosts = new Set(schedule.hosts);
  const drill = context.open.find((o) => o.drillId !== null && o.hosts.some((h) => hosts.has(h)));
  if (drill) return { fire: false, reason: `drill ${drill.drillId} is open on hosts of ${schedule.domain.kind} ${schedule.domain.id}` };
  return { fire: true, drillId: scheduledDrillId(schedule.name, slot) };
}

/** An incident as the scheduler sees it: its id, its drill if it is one, and its hosts. */
export interface OpenIncidentView {
  id: string;
  drillId: string | null;
  hosts: readonly string[];
}

/**
 * What a scheduled drill must not run beside: the site's open incidents, and
 * drills accepted but not opened yet (or whose report is not written) while
 * they may still be running.
 */
export function openWorkOf(
  incidents: readonly OpenIncidentView[],
  requests: readonly { drillId: string; site: string; requestedAt: number; maxDurationSeconds: number; hosts: readonly string[] }[],
  site: string,
  now: number,
): OpenWork[] {
  const open = new Set(incidents.map((i) => i.drillId).filter((d): d is string => d !== null));
  const requested = requests
    .filter((r) => r.site === site && !open.has(r.drillId) && r.requestedAt + r.maxDurationSeconds * 1000 > now)
    .map((r) => ({ id: `drill-${r.drillId}`, drillId: r.drillId, hosts: r.hosts }));
  return [...incidents.map((i) => ({ id: i.id, drillId: i.drillId, hosts: i.hosts })), ...requested];
}
