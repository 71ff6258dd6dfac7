/**
 * The drill schedule file (FB_DRILL_SCHEDULE): when the planner leader
 * rehearses the loss of each failure domain on its own. YAML or JSON:
 *
 *   timezone: Europe/Paris          # cron and quiet hours read in this zone (default UTC)
 *   schedules:
 *     - domain: rack r2             # rack|pdu|tor|site <id>, as the CLI spells it
 *       cron: "0 3 * * 6"           # Saturdays 03:00
 *       maxDuration: 30m            # the drill stops and cleans up after this (90s, 10m, 1h30m; at most 24h)
 *       quietHours: ["Mon-Fri 07:00-19:00"]
 *       name: r2-weekly             # optional, unique; default "<kind>-<id>"
 *       site: site1                 # optional; default the file's `site:`, else the planner's FB_SITE
 *       timezone: UTC               # optional, overrides the file's
 *
 * Read once at start; every problem is reported at once with its field,
 * line and the fix, and the planner refuses to start (exit 2).
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { CronExpressionParser } from 'cron-parser';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError, FailureDomainKind, formatPath, Id, siteDomains, type FailureDomain, type Inventory } from '@firebreak/shared';
import { isTimeZone, parseQuietWindow, type QuietWindow } from './quiet-hours.ts';

/** A drill runs at most a day: a longer one is a change of the fleet, not a rehearsal. */
export const MAX_DRILL_SECONDS = 24 * 3600;
/** Scheduled drill ids are `sched-<name>-<slot>`; a name this long keeps them within an id's 128 characters with `drill-` in front. */
const MAX_NAME = 80;

export interface DrillSchedule {
  name: string;
  site: string;
  /** Where the slot record lives: unique per site and name. */
  key: string;
  domain: FailureDomain;
  /** The domain's hosts, as the detector and planner correlate them. */
  hosts: readonly string[];
  cron: string;
  timeZone: string;
  maxDurationSeconds: number;
  quietHours: readonly QuietWindow[];
}

const UNITS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** `90s`, `10m`, `1h30m`, or a number of seconds. */
export function parseDurationSeconds(raw: string | number): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) && raw > 0 ? raw : undefined;
  if (/^\d+$/.test(raw)) return Number(raw) > 0 ? Number(raw) : undefined;
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(raw.trim());
  if (!match || raw.trim() === '') return undefined;
  const seconds = (['h', 'm', 's'] as const).reduce((sum, unit, i) => sum + Number(match[i + 1] ?? 0) * (UNITS[unit] ?? 0), 0);
  return seconds > 0 ? seconds : undefined;
}

/** Five fields (minute hour day-of-month month day-of-week), or six with seconds first. */
export function cronProblem(cron: string, timeZone = 'UTC'): string | undefined {
  const fields = cron.trim().split(/\s+/);
  if (cron.trim().startsWith('@')) return `"${cron}": write the fields out (e.g. "0 3 * * 6" for Saturdays 03:00) rather than a @ shorthand`;
  if (fields.length !== 5 && fields.length !== 6) {
    return `"${cron}" has ${fields.length} field(s); use 5 (minute hour day-of-month month day-of-week), e.g. "0 3 * * 6" for Saturdays 03:00, or 6 with seconds first`;
  }
  try {
    CronExpressionParser.parse(cron, { tz: timeZone, strict: false }).next();
    return undefined;
  } catch (err) {
    return `"${cron}" is not a cron expression: ${err instanceof Error ? err.message : String(err)} (e.g. "0 3 * * 6" for Saturdays 03:00)`;
  }
}

const TimeZone = z.string().refine(isTimeZone, { error: (issue) => `unknown time zone "${String(issue.input)}": use an IANA name such as UTC or Europe/Paris` });

const Entry = z.strictObject({
  domain: z
    .string()
    .regex(/^\s*(rack|pdu|tor|site)\s+\S+\s*$/, 'must be "<kind> <id>" with kind rack, pdu, tor or site, e.g. "rack r2"'),
  cron: z.string(),
  maxDuration: z.union([z.string(), z.number()]).refine((v) => parseDurationSeconds(v) !== undefined, 'must be like 90s, 10m, 1h or 1h30m (or a number of seconds)'),
  quietHours: z.array(z.string()).default([]),
  name: Id.max(MAX_NAME, `at most ${MAX_NAME} characters`).optional(),
  site: Id.optional(),
  timezone: TimeZone.optional(),
});

const ScheduleFile = z.strictObject({
  timezone: TimeZone.default('UTC'),
  site: Id.optional(),
  schedules: z.array(Entry),
});

type Path = readonly (string | number)[];
interface Problem {
  path: Path;
  message: string;
  /** Where the reader stopped, for a syntax error; else found from the path. */
  line?: number;
}

export interface LoadScheduleOptions {
  inventory: Inventory;
  /** The planner's FB_SITE: the site of entries that name none. */
  site: string;
  /** Names the file's variable in messages. */
  variable?: string;
}

/** Reads and checks the schedule file: every schedule of every site in it. Throws a ConfigError listing every problem. */
export async function loadDrillSchedules(path: string, options: LoadScheduleOptions): Promise<DrillSchedule[]> {
  const what = `drill schedule ${path}${options.variable ? ` (${options.variable})` : ''}`;
  const extension = extname(path).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(extension)) {
    throw new ConfigError(`cannot load ${what}: ${extension === '' ? 'no file extension' : `unsupported extension "${extension}"`} (expected .yaml, .yml or .json)`);
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot load ${what}: cannot be read: ${err instanceof Error ? err.message : String(err)}; point it at a readable file or unset it for no scheduled drills`);
  }
  return parseDrillSchedules(text, { ...options, source: what });
}

export function parseDrillSchedules(text: string, options: LoadScheduleOptions & { source: string }): DrillSchedule[] {
  const lines = new LineCounter();
  // JSON is YAML; one reader serves both and places every problem on its line.
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOf = (path: Path): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const fail = (problems: readonly Problem[]): never => {
    const listed = problems.map((p) => {
      const line = p.line ?? (p.path.length > 0 ? lineOf(p.path) : undefined);
      return `  ${p.path.length === 0 ? '(file)' : formatPath(p.path)}: ${p.message}${line === undefined ? '' : ` (line ${line})`}`;
    });
    throw new ConfigError(`cannot load ${options.source}:\n${listed.join('\n')}`);
  };

  if (doc.errors.length > 0) {
    fail(doc.errors.map((e) => ({ path: [], message: `not valid YAML or JSON: ${e.message.split('\n')[0] ?? e.code}`, line: lines.linePos(e.pos[0]).line })));
  }
  const parsed = ScheduleFile.safeParse(doc.toJS() ?? {}, { error: requiredMessage });
  if (!parsed.success) fail(parsed.error.issues.flatMap(perField));
  const file = (parsed as { data: z.output<typeof ScheduleFile> }).data;

  const problems: Problem[] = [];
  const schedules: DrillSchedule[] = [];
  const names = new Map<string, number>();
  file.schedules.forEach((entry, i) => {
    const at = (field: string): Path => ['schedules', i, field];
    const [kindText, id] = entry.domain.trim().split(/\s+/) as [string, string];
    const kind = FailureDomainKind.parse(kindText);
    const site = kind === 'site' ? id : (entry.site ?? file.site ?? options.site);
    const timeZone = entry.timezone ?? file.timezone;
    const name = entry.name ?? `${kind}-${id}`;
    if (!Id.safeParse(id).success) problems.push({ path: at('domain'), message: `"${id}" is not a ${kind} id (letters, digits, "-" or "_")` });
    const hosts = Id.safeParse(id).success ? (siteDomains(options.inventory, site).hostsOf({ kind, id }) ?? []) : [];
    if (Id.safeParse(id).success && hosts.length === 0) {
      problems.push({ path: at('domain'), message: `no ${kind} "${id}" with hosts at site "${site}" in the inventory; name a domain the inventory has${entry.site === undefined && kind !== 'site' ? ', or give the schedule its site:' : ''}` });
    }
    if (!Id.safeParse(name).success || name.length > MAX_NAME) problems.push({ path: at('domain'), message: `the default name "${name}" is not usable as an id: give the schedule a name:` });
    const earlier = names.get(`${site}:${name}`);
    if (earlier !== undefined) {
      problems.push({ path: entry.name === undefined ? at('domain') : at('name'), message: `schedule "${name}" at site "${site}" is already schedules[${earlier}]; give each schedule of a domain its own name:` });
    }
    names.set(`${site}:${name}`, i);
    const cron = cronProblem(entry.cron, timeZone);
    if (cron !== undefined) problems.push({ path: at('cron'), message: cron });
    const maxDurationSeconds = parseDurationSeconds(entry.maxDuration) ?? 0;
    if (maxDurationSeconds > MAX_DRILL_SECONDS) problems.push({ path: at('maxDuration'), message: `at most 24h, got ${entry.maxDuration}` });
    const quietHours: QuietWindow[] = [];
    entry.quietHours.forEach((w, j) => {
      try {
        quietHours.push(parseQuietWindow(w));
      } catch (err) {
        problems.push({ path: ['schedules', i, 'quietHours', j], message: (err as Error).message });
      }
    });
    schedules.push({ name, site, key: `${site}:${name}`, domain: { kind, id, site }, hosts: hosts.map((h) => h.id).sort(), cron: entry.cron.trim(), timeZone, maxDurationSeconds, quietHours });
  });
  if (problems.length > 0) fail(problems);
  return schedules;
}

/** One problem per unknown field, at the field itself, naming the fields there are. */
function perField(issue: z.core.$ZodIssue): Problem[] {
  const message = issue.message.replace(/^Invalid input: /, '');
  if (issue.code !== 'unrecognized_keys') return [{ path: issue.path as Path, message }];
  const known = issue.path.length === 0 ? Object.keys(ScheduleFile.shape) : Object.keys(Entry.shape);
  return issue.keys.map((key) => ({ path: [...(issue.path as Path), key], message: `unknown field; the fields are ${known.join(', ')}` }));
}

/** A missing field reads better as "required" than as "expected string, received undefined". */
function requiredMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.input === undefined && issue.code === 'invalid_type') return `required (expected ${issue.expected})`;
  return undefined;
}
