/**
 * What Firebreak keeps of drills (issue #17): each drill's request while it
 * runs, each finished drill's report, and the last slot each drill schedule
 * fired. The planner writes all three; `firebreak drill reports`, `drill
 * list` and `drill stop` read them.
 *
 * Reports are kept per site, newest first, the last `keepPerSite` of them
 * (older ones are dropped as new ones are saved). A request lives until its
 * drill's report is saved, or at most a week past the drill's end, so one
 * whose report never came does not stay for ever.
 *
 * Keys share the `{drills}` hash tag: saving a report also drops its request
 * and trims the site's list in one script. They are spelled here rather than
 * in keys.ts because nothing else reads them.
 */
import type { Redis, Result } from 'ioredis';
import { z } from 'zod';
import { FirebreakError } from '../errors.ts';
import { EpochMs, Id } from '../schemas/common.schema.ts';
import { DrillScope } from '../schemas/events.schema.ts';
import { DrillCleanup, IncidentPhase, ServerReport } from '../schemas/incident.schema.ts';
import { decodeJson, encodeJson } from './stored-json.ts';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fbDrillReportSave(reports: string, ended: string, sites: string, requests: string, drillId: string, endedAt: number, report: string, keep: number, site: string): Result<number, Context>;
    fbDrillSlotClaim(slots: string, field: string, slot: number, record: string): Result<string | null, Context>;
    fbDrillSlotUpdate(slots: string, field: string, slot: number, record: string): Result<number, Context>;
  }
}

const TAG = 'fb:{drills}';
const drillKeys = {
  requests: `${TAG}:requests`,
  reports: `${TAG}:reports`,
  /** Sorted set of a site's reported drill ids, scored by when each ended. */
  ended: (site: string): string => `${TAG}:ended:${siteKeyPart(site)}`,
  sites: `${TAG}:sites`,
  slots: `${TAG}:slots`,
} as const;

/** A drill as the planner accepted it: what its report names besides the outcome. */
export const DrillRequest = z.object({
  drillId: Id,
  site: Id,
  scope: DrillScope,
  /** A person through the CLI (`firebreak-cli:user@host`) or a schedule (`schedule:<name>`). */
  requestedBy: z.string().min(1),
  requestedAt: EpochMs,
  maxDurationSeconds: z.number().int().positive(),
});
export type DrillRequest = z.infer<typeof DrillRequest>;

/** One server's line in a drill report: its RTO against its target, and why it did not come up if it did not. */
export const DrillServerReport = ServerReport.extend({
  /** Where the rehearsal ran. */
  host: Id.nullable().optional(),
  reason: z.string().optional(),
});
export type DrillServerReport = z.infer<typeof DrillServerReport>;

export const DrillReport = z.object({
  drillId: Id,
  incidentId: Id,
  site: Id,
  scope: DrillScope,
  requestedBy: z.string().min(1),
  requestedAt: EpochMs,
  /** Null when the planner no longer knew the request (a drill started before reports were kept). */
  maxDurationSeconds: z.number().int().positive().nullable(),
  startedAt: EpochMs,
  endedAt: EpochMs,
  /** The drill incident's final phase. */
  phase: IncidentPhase,
  message: z.string().optional(),
  servers: z.array(DrillServerReport),
  /** Null when the planner did not say what its cleanup did. */
  cleanup: DrillCleanup.nullable(),
  /** Recovered every server and cleanup restored everything: what `drill --wait` exits 0 on. */
  passed: z.boolean(),
});
export type DrillReport = z.infer<typeof DrillReport>;

/** What a drill schedule did with its newest slot, so a slot fires once whichever planner leads. */
export const ScheduleSlot = z.object({
  /** The slot's instant (ms): later slots replace earlier ones, never the reverse. */
  slot: EpochMs,
  /** `firing` until the DrillStart is published, then `fired`; `skipped` with a reason. */
  state: z.enum(['firing', 'fired', 'skipped']),
  drillId: Id.optional(),
  reason: z.string().optional(),
  /** When this record was written. */
  at: EpochMs,
});
export type ScheduleSlot = z.infer<typeof ScheduleSlot>;

export type SlotClaim = { claimed: true } | { claimed: false; current: ScheduleSlot };

/** What a drill's final progress says about whether it passed, and what is left if it did not. */
export interface DrillVerdict {
  passed: boolean;
  recovered: number;
  total: number;
  /** One line per thing wrong: the phase, each server not recovered, each thing cleanup left. */
  problems: string[];
}

/** What a verdict reads: a drill's final progress, or its stored report (whose servers carry their reasons). */
export interface DrillVerdictInput {
  phase: IncidentPhase;
  message?: string | undefined;
  report?: readonly { server: string; outcome: 'recovered' | 'unrecovered'; reason?: string | undefined }[] | undefined;
  /** Each server's last progress, whose message says why it is not up. */
  servers?: readonly { server: string; message?: string | undefined }[] | undefined;
  cleanup?: DrillCleanup | null | undefined;
}

/**
 * A drill passed only if it ended `recovered`, every server came up, and its
 * cleanup left nothing. A planner that did not report its cleanup is judged
 * on its phase, which it makes anything but `recovered` when cleanup fails.
 */
export function drillVerdict(input: DrillVerdictInput): DrillVerdict {
  const problems: string[] = [];
  const report = input.report ?? [];
  const reasons = new Map((input.servers ?? []).map((s) => [s.server, s.message]));
  if (input.phase !== 'recovered') problems.push(`the drill ended ${input.phase}${input.message ? `: ${input.message}` : ''}`);
  for (const r of report) {
    const reason = r.reason ?? reasons.get(r.server);
    if (r.outcome !== 'recovered') problems.push(`server ${r.server} not recovered${reason ? `: ${reason}` : ''}`);
  }
  const cleanup = input.cleanup ?? undefined;
  for (const item of cleanup?.left ?? []) problems.push(`cleanup left: ${describeCleanupItem(item)}`);
  if (cleanup?.complete === false && cleanup.left.length === 0) problems.push('cleanup did not finish (the planner named nothing left)');
  const recovered = report.filter((r) => r.outcome === 'recovered').length;
  return { passed: problems.length === 0, recovered, total: report.length, problems };
}

export function describeCleanupItem(item: DrillCleanup['left'][number]): string {
  const where = [item.server && `server ${item.server}`, item.host && `host ${item.host}`].filter(Boolean).join(', ');
  return where === '' ? item.what : `${item.what} (${where})`;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** A request outlives its drill's longest run by this much, then is dropped unreported. */
const REQUEST_GRACE_MS = 7 * DAY_MS;
const DEFAULT_KEEP_PER_SITE = 200;

const StoredRequest = DrillRequest.extend({ expiresAt: EpochMs });

// KEYS: reports, ended (site), sites, requests. ARGV: drillId, endedAt, report, keep, site.
// Returns how many old reports were dropped.
const SAVE = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('HDEL', KEYS[4], ARGV[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess <= 0 then return 0 end
local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
for _, id in ipairs(old) do redis.call('HDEL', KEYS[1], id) end
return excess
`;

// KEYS: slots. ARGV: field, slot, record. Nil when claimed; else the record of an equal or later slot.
const CLAIM = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.slot) and tonumber(decoded.slot) >= tonumber(ARGV[2]) then
    return current
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return false
`;

// KEYS: slots. ARGV: field, slot, record. 1 if the stored record was still of that slot and is replaced.
const UPDATE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local ok, decoded = pcall(cjson.decode, current)
if not ok or type(decoded) ~= 'table' or tonumber(decoded.slot) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`;

export interface DrillReportsOptions {
  /** Reports kept per site; older ones are dropped. Default 200. */
  keepPerSite?: number;
  clock?: () => number;
}

export class DrillReports {
  private readonly keepPerSite: number;
  private readonly clock: () => number;

  constructor(
    private readonly redis: Redis,
    options: DrillReportsOptions = {},
  ) {
    this.keepPerSite = options.keepPerSite ?? DEFAULT_KEEP_PER_SITE;
    if (!Number.isInteger(this.keepPerSite) || this.keepPerSite < 1) {
      throw FirebreakError.permanent(`drill reports kept per site must be a whole number of at least 1, got ${this.keepPerSite}`);
    }
    this.clock = options.clock ?? Date.now;
    redis.defineCommand('fbDrillReportSave', { numberOfKeys: 4, lua: SAVE });
    redis.defineCommand('fbDrillSlotClaim', { numberOfKeys: 1, lua: CLAIM });
    redis.defineCommand('fbDrillSlotUpdate', { numberOfKeys: 1, lua: UPDATE });
  }

  /** Records a drill the planner accepted, unless it is recorded already (a redelivered request); drops requests long past their drill. */
  async recordRequest(request: DrillRequest): Promise<void> {
    const parsed = parseOrThrow(DrillRequest, request, `drill request "${request.drillId}"`);
    const expiresAt = parsed.requestedAt + parsed.maxDurationSeconds * 1000 + REQUEST_GRACE_MS;
    await this.redis.hsetnx(drillKeys.requests, parsed.drillId, encodeJson({ ...parsed, expiresAt }, `drill request "${parsed.drillId}"`));
    const expired = Object.entries(await this.redis.hgetall(drillKeys.requests))
      .filter(([, text]) => {
        const stored = StoredRequest.safeParse(safeJson(text));
        return stored.success && stored.data.expiresAt < this.clock();
      })
      .map(([id]) => id);
    if (expired.length > 0) await this.redis.hdel(drillKeys.requests, ...expired);
  }

  async request(drillId: string): Promise<DrillRequest | undefined> {
    const text = await this.redis.hget(drillKeys.requests, drillId);
    return text === null ? undefined : strip(decodeJson(text, StoredRequest, `drill request "${drillId}"`));
  }

  /** Drills accepted and not reported yet (running, or whose report could not be saved), oldest first. */
  async pendingRequests(): Promise<DrillRequest[]> {
    const all = await this.redis.hgetall(drillKeys.requests);
    return Object.entries(all)
      .map(([id, text]) => strip(decodeJson(text, StoredRequest, `drill request "${id}"`)))
      .sort((a, b) => a.requestedAt - b.requestedAt || a.drillId.localeCompare(b.drillId));
  }

  /** Saves a finished drill's report (again, harmlessly, if it was saved), drops its request and the site's oldest reports beyond the limit. */
  async save(report: DrillReport): Promise<void> {
    const parsed = parseOrThrow(DrillReport, report, `report of drill "${report.drillId}"`);
    await this.redis.fbDrillReportSave(
      drillKeys.reports,
      drillKeys.ended(parsed.site),
      drillKeys.sites,
      drillKeys.requests,
      parsed.drillId,
      parsed.endedAt,
      encodeJson(parsed, `report of drill "${parsed.drillId}"`),
      this.keepPerSite,
      parsed.site,
    );
  }

  async report(drillId: string): Promise<DrillReport | undefined> {
    const text = await this.redis.hget(drillKeys.reports, drillId);
    return text === null ? undefined : decodeJson(text, DrillReport, `report of drill "${drillId}"`);
  }

  /** Reports newest first (by when each drill ended), of one site or of all. */
  async list(options: { site?: string; limit?: number } = {}): Promise<DrillReport[]> {
    const limit = options.limit ?? this.keepPerSite;
    if (!Number.isInteger(limit) || limit < 1) throw FirebreakError.permanent(`a drill report listing's limit must be a whole number of at least 1, got ${limit}`);
    const sites = options.site === undefined ? (await this.redis.smembers(drillKeys.sites)).sort() : [options.site];
    const ranked = (
      await Promise.all(
        sites.map(async (site) => {
          const flat = await this.redis.zrevrange(drillKeys.ended(site), 0, limit - 1, 'WITHSCORES');
          const entries: { id: string; endedAt: number }[] = [];
          for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ id: flat[i] as string, endedAt: Number(flat[i + 1]) });
          return entries;
        }),
      )
    )
      .flat()
      .sort((a, b) => b.endedAt - a.endedAt || a.id.localeCompare(b.id))
      .slice(0, limit);
    if (ranked.length === 0) return [];
    const texts = await this.redis.hmget(drillKeys.reports, ...ranked.map((r) => r.id));
    // A report trimmed between the two reads is simply no longer listed.
    return texts.flatMap((text, i) => (text === null ? [] : [decodeJson(text, DrillReport, `report of drill "${ranked[i]?.id ?? '?'}"`)]));
  }

  /** The newest slot a schedule handled, if any. `schedule` names it uniquely, site included. */
  async slot(schedule: string): Promise<ScheduleSlot | undefined> {
    const text = await this.redis.hget(drillKeys.slots, schedule);
    return text === null ? undefined : decodeJson(text, ScheduleSlot, `slot of drill schedule "${schedule}"`);
  }

  /**
   * Takes a schedule's slot: only if no equal or later slot was taken, so of
   * two planners (a leader and one deposed mid-tick, or two across a handover)
   * one handles it. The loser gets the record that beat it.
   */
  async claimSlot(schedule: string, record: ScheduleSlot): Promise<SlotClaim> {
    const parsed = parseOrThrow(ScheduleSlot, record, `slot of drill schedule "${schedule}"`);
    const current = await this.redis.fbDrillSlotClaim(drillKeys.slots, schedule, parsed.slot, encodeJson(parsed, `slot of drill schedule "${schedule}"`));
    if (current === null) return { claimed: true };
    return { claimed: false, current: decodeJson(current, ScheduleSlot, `slot of drill schedule "${schedule}"`) };
  }

  /** Replaces the record of `record.slot`, if the schedule has not moved past it; false if it has. */
  async updateSlot(schedule: string, record: ScheduleSlot): Promise<boolean> {
    const parsed = parseOrThrow(ScheduleSlot, record, `slot of drill schedule "${schedule}"`);
    return (await this.redis.fbDrillSlotUpdate(drillKeys.slots, schedule, parsed.slot, encodeJson(parsed, `slot of drill schedule "${schedule}"`))) === 1;
  }
}

function siteKeyPart(site: string): string {
  if (!Id.safeParse(site).success) throw FirebreakError.permanent(`site "${site}" is not a site id (letters, digits, "-" or "_")`);
  return site;
}

function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw FirebreakError.permanent(`${what} cannot be stored: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function strip(stored: z.infer<typeof StoredRequest>): DrillRequest {
  const { expiresAt: _expiresAt, ...request } = stored;
  return request;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
