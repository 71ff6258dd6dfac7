/**
 * Quiet hours of a drill schedule: weekly time windows in which no scheduled
 * drill may run. Written `[DAYS ]HH:MM-HH:MM`:
 *
 *   "Mon-Fri 08:00-18:00"   business hours
 *   "Sat,Sun 10:00-14:00"
 *   "22:00-06:00"           every night: a window whose end is before its
 *                           start runs past midnight into the next day
 *   "Fri 18:00-24:00"       24:00 is the end of the day
 *
 * DAYS is a comma-separated list of days (Mon … Sun) and ranges (Mon-Fri,
 * Fri-Mon); without it the window is every day. A window past midnight
 * belongs to the day it starts on. Times are read in the schedule's time
 * zone, so a window keeps its wall-clock hours across daylight saving.
 */

export interface QuietWindow {
  /** As written, for messages. */
  readonly text: string;
  /** 0 = Sunday … 6 = Saturday. */
  readonly days: ReadonlySet<number>;
  /** Minutes since midnight: start inclusive, end exclusive; end < start crosses midnight. */
  readonly start: number;
  readonly end: number;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const EVERY_DAY: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, 5, 6]);
const MINUTES_PER_DAY = 24 * 60;
const MINUTE_MS = 60_000;

export const quietHoursSyntax = '"[DAYS ]HH:MM-HH:MM", e.g. "Mon-Fri 08:00-18:00", "Sat,Sun 10:00-14:00" or "22:00-06:00"';

/** Parses one window; throws an Error whose message says what is wrong and how it should look. */
export function parseQuietWindow(text: string): QuietWindow {
  const match = /^\s*(?:([A-Za-z,\s-]+?)\s+)?(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a quiet-hours window: write ${quietHoursSyntax}`);
  const [, daysText, startText, endText] = match as unknown as [string, string | undefined, string, string];
  const start = minuteOfDay(startText, text, false);
  const end = minuteOfDay(endText, text, true);
  if (start === end) throw new Error(`"${text}" starts and ends at the same time; for a whole day write 00:00-24:00`);
  return { text, days: daysText === undefined ? EVERY_DAY : parseDays(daysText, text), start, end };
}

function minuteOfDay(hhmm: string, text: string, isEnd: boolean): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  const minute = h * 60 + m;
  if (m > 59 || minute > MINUTES_PER_DAY || (!isEnd && minute === MINUTES_PER_DAY)) {
    throw new Error(`"${text}": ${hhmm} is not a time of day (00:00 to 23:59${isEnd ? ', or 24:00 for the end of the day' : ''})`);
  }
  return minute;
}

function dayIndex(name: string, text: string): number {
  const index = DAY_NAMES.indexOf(name.trim().slice(0, 3).toLowerCase() as (typeof DAY_NAMES)[number]);
  const full = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
  const word = name.trim().toLowerCase();
  if (index === -1 || !(word.length === 3 || full[index] === word)) {
    throw new Error(`"${text}": "${name.trim()}" is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun, lists (Sat,Sun) or ranges (Mon-Fri)`);
  }
  return index;
}

function parseDays(daysText: string, text: string): ReadonlySet<number> {
  const days = new Set<number>();
  for (const part of daysText.split(',')) {
    const [from, to, extra] = part.split('-');
    if (from === undefined || from.trim() === '' || extra !== undefined || to?.trim() === '') {
      throw new Error(`"${text}": "${part.trim()}" is not a day or a range of days (e.g. Mon-Fri)`);
    }
    const first = dayIndex(from, text);
    const last = to === undefined ? first : dayIndex(to, text);
    // A range runs forward through the week: Fri-Mon is Fri, Sat, Sun, Mon.
    for (let d = first; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === last) break;
    }
  }
  return days;
}

/** Wall-clock day and minute of an instant in a time zone. */
export interface LocalTime {
  weekday: number;
  minute: number;
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formats = new Map<string, Intl.DateTimeFormat>();

/** True if `timeZone` is an IANA zone this Node knows (e.g. Europe/Paris, UTC). */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

export function localTime(instant: number, timeZone: string): LocalTime {
  let format = formats.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formats.set(timeZone, format);
  }
  let weekday = 0;
  let hour = 0;
  let minute = 0;
  for (const part of format.formatToParts(instant)) {
    if (part.type === 'weekday') weekday = WEEKDAYS[part.value] ?? 0;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { weekday, minute: hour * 60 + minute };
}

/** The window `at` falls in, if any. */
export function quietWindowAt(windows: readonly QuietWindow[], at: LocalTime): QuietWindow | undefined {
  const yesterday = (at.weekday + 6) % 7;
  return windows.find((w) =>
    w.start < w.end
      ? w.days.has(at.weekday) && at.minute >= w.start && at.minute < w.end
      : (w.days.has(at.weekday) && at.minute >= w.start) || (w.days.has(yesterday) && at.minute < w.end),
  );
}

/**
 * The first quiet minute in [from, to), with its window: windows have minute
 * granularity, so looking at `from` and at each minute boundary after it is
 * exact. A day's run is at most 1,440 look-ups.
 */
export function firstQuietMinute(windows: readonly QuietWindow[], from: number, to: number, timeZone: string): { at: number; window: QuietWindow } | undefined {
  if (windows.length === 0) return undefined;
  for (let at = from; at < to; at = Math.floor(at / MINUTE_MS) * MINUTE_MS + MINUTE_MS) {
    const window = quietWindowAt(windows, localTime(at, timeZone));
    if (window) return { at, window };
  }
  return undefined;
}
