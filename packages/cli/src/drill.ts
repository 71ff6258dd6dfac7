/**
 * `firebreak drill start <domain> [--duration 10m] [--wait]`, `drill stop
 * <drillId>`, `drill list` and `drill reports`: DR drills through the
 * planner. A drill recovers the domain's servers on isolated drill VLANs with
 * cloned LUNs, leaves production alone, and cleans up on stop or after its
 * duration. Which drills are open, and the reports of finished ones, come
 * from the planner's records in Redis (store.drills, its open incidents).
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { drillVerdict, Id, storedProgress, topics, type Bus, type DrillScope, type IncidentProgress, type Store } from '@firebreak/shared';
import { resolveUrls, withBus, withStore } from './connections.ts';
import { checkScope, describeScope, domainSyntax, knownInventory, parseScope } from './domain-args.ts';
import { renderDrillOutcome, renderDrillReports, renderOpenDrills, timeText, type OpenDrill } from './drill-view.ts';
import { incidentLine, isFinal, renderReport } from './incident-view.ts';
import { UsageError } from './usage-error.ts';

export const drillUsage = `  drill start ${domainSyntax} [--duration 10m] [--site S] [--wait] [--json] [--nats-url URL]
      rehearse the loss of a domain on drill VLANs and cloned LUNs; prints the
      drill id (--wait follows it to its end and prints the report; exit 0 only
      if every server recovered and cleanup restored everything, else 1 with
      what is left)
  drill stop <drillId> [--reason TEXT] [--json] [--nats-url URL] [--redis-url URL]
      end an open drill, whatever it is doing: the planner cleans up and
      returns borrowed hosts (an id that names no open drill: exit 2)
  drill list [--site S] [--json] [--nats-url URL] [--redis-url URL]
      open drills: domain, start, time left, phase, who asked
  drill reports [--site S] [--limit N] [--json] [--redis-url URL]
      finished drills, newest first: outcome, servers up, worst RTO against
      its target, what cleanup left (scheduled drills too)`;

const DEFAULT_DURATION_S = 3600;
const UNITS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** `90s`, `10m`, `1h30m`, or a bare number of seconds. */
export function parseDuration(raw: string, flag = '--duration'): number {
  const bad = new UsageError(`${flag} must be like 90s, 10m, 1h or 1h30m, got "${raw}"`);
  if (/^\d+$/.test(raw)) {
    const seconds = Number(raw);
    if (seconds <= 0) throw bad;
    return seconds;
  }
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(raw);
  if (!match || raw === '') throw bad;
  const seconds = (['h', 'm', 's'] as const).reduce((sum, unit, i) => sum + Number(match[i + 1] ?? 0) * (UNITS[unit] ?? 0), 0);
  if (seconds <= 0) throw bad;
  return seconds;
}

export function requestedBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (containers): the host still says where the request came from.
  }
  return `firebreak-cli:${user}@${hostname()}`;
}

/** A readable, unique drill id: `rack-r2-<time><random>`. */
function newDrillId(scope: DrillScope): string {
  const what = 'domain' in scope ? `${scope.domain.kind}-${scope.domain.id}` : `hosts-${scope.hosts[0] ?? 'x'}`;
  const id = `${what.slice(0, 90)}-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  return Id.parse(id);
}

/** The planner runs a drill as incident `drill-<drillId>`. */
export function drillIncidentId(drillId: string): string {
  return `drill-${drillId}`;
}

export function siteFrom(flag: string | undefined, sites: readonly string[] = []): string {
  if (flag) return flag;
  if (process.env.FB_SITE) return process.env.FB_SITE;
  return sites.length === 1 && sites[0] !== undefined ? sites[0] : 'site1';
}

const connectionOptions = {
  'nats-url': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

const actions = `firebreak drill start ${domainSyntax} | stop <drillId> | list | reports`;

export async function drill(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action === 'start') return drillStart(rest);
  if (action === 'stop') return drillStop(rest);
  if (action === 'list') return drillList(rest);
  if (action === 'reports') return drillReports(rest);
  throw new UsageError(`usage: ${actions}${action === undefined ? '' : ` (got "${action}")`}`);
}

async function drillStart(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...connectionOptions, duration: { type: 'string' }, site: { type: 'string' }, wait: { type: 'boolean', default: false } },
  });
  const maxDurationSeconds = values.duration === undefined ? DEFAULT_DURATION_S : parseDuration(values.duration);
  const known = await knownInventory();
  const site = siteFrom(values.site, known ? [...new Set(known.inventory.hosts.map((h) => h.site))] : []);
  const scope = parseScope(positionals, site, 'drill start');
  if (known) checkScope(scope, known.inventory, known.source);
  const { natsUrl } = await resolveUrls({ natsUrl: values['nats-url'] });
  const drillId = newDrillId(scope);
  const requestedAt = Date.now();

  return withBus(natsUrl, async (bus) => {
    // Listening before the request, so a fast planner's first update is not missed.
    const follow = values.wait ? await followDrill(bus, drillId, values.json) : undefined;
    try {
      await bus.publish(topics.drillStart, { drillId, scope, requestedBy: requestedBy(), requestedAt, maxDurationSeconds }, { msgId: `drill-start-${drillId}` });
      if (values.json && !values.wait) {
        console.log(JSON.stringify({ drillId, incidentId: drillIncidentId(drillId), scope, maxDurationSeconds, requestedAt }));
      } else if (!values.json) {
        console.log(`drill ${drillId} started: ${describeScope(scope)}, for at most ${formatSeconds(maxDurationSeconds)}`);
        if (!values.wait) console.log(`  follow it with "firebreak status"; stop it with "firebreak drill stop ${drillId}"`);
      }
      if (!follow) return 0;
      if (!values.json) console.log(`waiting for the drill to end (Ctrl-C stops waiting, not the drill)`);
      return await follow.result(maxDurationSeconds * 1000 + 10 * 60_000);
    } finally {
      await follow?.stop();
    }
  });
}

/** How long `drill stop` looks for a drill the planner may be opening this instant (a stop right after a start). */
const STOP_LOOKUP_MS = 2_000;

type DrillState = { state: 'open' } | { state: 'ended'; phase: string; endedAt: number; passed: boolean } | { state: 'unknown' };

/** Open: the planner accepted it (its request) or runs it (its open incident); ended: its report is stored. */
async function drillState(store: Store, drillId: string): Promise<DrillState> {
  const [open, request, report] = await Promise.all([store.snapshots.listOpen(), store.drills.request(drillId), store.drills.report(drillId)]);
  if (open.includes(drillIncidentId(drillId)) || (request !== undefined && report === undefined)) return { state: 'open' };
  if (report !== undefined) return { state: 'ended', phase: report.phase, endedAt: report.endedAt, passed: report.passed };
  return { state: 'unknown' };
}

async function drillStop(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...connectionOptions, 'redis-url': { type: 'string' }, reason: { type: 'string' } },
  });
  const [drillId, extra] = positionals;
  if (drillId === undefined || extra !== undefined) throw new UsageError('usage: firebreak drill stop <drillId> (the id "drill start" printed; "firebreak drill list" lists open drills)');
  if (!Id.safeParse(drillId).success) throw new UsageError(`"${drillId}" is not a drill id (letters, digits, "-" or "_"); "firebreak drill list" lists open drills`);
  const { natsUrl, redisUrl } = await resolveUrls({ natsUrl: values['nats-url'], redisUrl: values['redis-url'] });
  const requestedAt = await withBus(natsUrl, (bus) =>
    withStore(redisUrl, async (store) => {
      const deadline = Date.now() + STOP_LOOKUP_MS;
      let known = await drillState(store, drillId);
      while (known.state === 'unknown' && Date.now() < deadline) {
        await sleep(200);
        known = await drillState(store, drillId);
      }
      if (known.state === 'ended') {
        throw new UsageError(
          `drill ${drillId} already ended: ${known.passed ? 'passed' : `FAILED (${known.phase})`} at ${timeText(known.endedAt)} UTC; nothing to stop. "firebreak drill reports" shows its report`,
        );
      }
      if (known.state === 'unknown') throw new UsageError(`no open drill "${drillId}": "firebreak drill list" lists open drills, "firebreak drill reports" finished ones`);
      const at = Date.now();
      await bus.publish(topics.drillStop, { drillId, requestedBy: requestedBy(), requestedAt: at, ...(values.reason !== undefined && { reason: values.reason }) }, { msgId: `drill-stop-${drillId}` });
      return at;
    }),
  );
  if (values.json) console.log(JSON.stringify({ drillId, stopRequestedAt: requestedAt }));
  else console.log(`stop requested for drill ${drillId}: the planner cleans it up and returns its hosts`);
  return 0;
}

/** `--site`, checked: it is part of a Redis key. */
function siteFilter(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!Id.safeParse(raw).success) throw new UsageError(`--site "${raw}" is not a site id (letters, digits, "-" or "_")`);
  return raw;
}

/** Open drills: incidents `drill-*` the planner has open, and drills it accepted but has not opened yet. */
export async function collectOpenDrills(bus: Bus, store: Store, site: string | undefined): Promise<OpenDrill[]> {
  const [open, requests] = await Promise.all([store.snapshots.listOpen(), store.drills.pendingRequests()]);
  const byId = new Map(requests.map((r) => [r.drillId, r]));
  const ids = [...new Set([...open.filter((id) => id.startsWith('drill-')).map((id) => id.slice('drill-'.length)), ...requests.map((r) => r.drillId)])].sort();
  const drills: OpenDrill[] = [];
  for (const drillId of ids) {
    const request = byId.get(drillId);
    const incidentId = drillIncidentId(drillId);
    const progress = await storedProgress(bus, incidentId);
    // A request whose incident closed is a drill whose report is being written: not open.
    if (!open.includes(incidentId) && progress !== undefined && isFinal(progress)) continue;
    const drillSite = request?.site ?? progress?.site ?? null;
    if (site !== undefined && drillSite !== site) continue;
    drills.push({
      drillId,
      incidentId,
      site: drillSite,
      scope: request?.scope ?? null,
      requestedBy: request?.requestedBy ?? null,
      requestedAt: request?.requestedAt ?? progress?.openedAt ?? null,
      maxDurationSeconds: request?.maxDurationSeconds ?? null,
      phase: progress?.phase ?? (open.includes(incidentId) ? null : 'requested'),
      servers: { recovered: progress?.servers.filter((s) => s.step === 'done').length ?? 0, total: progress?.servers.length ?? 0 },
    });
  }
  return drills;
}

async function drillList(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...connectionOptions, 'redis-url': { type: 'string' }, site: { type: 'string' } } });
  if (positionals.length > 0) throw new UsageError(`usage: firebreak drill list [--site S] [--json] (got "${positionals.join(' ')}")`);
  const site = siteFilter(values.site);
  const { natsUrl, redisUrl } = await resolveUrls({ natsUrl: values['nats-url'], redisUrl: values['redis-url'] });
  const drills = await withBus(natsUrl, (bus) => withStore(redisUrl, (store) => collectOpenDrills(bus, store, site)));
  console.log(values.json ? JSON.stringify({ version: 1, site: site ?? null, drills }, null, 2) : renderOpenDrills(drills, Date.now()).join('\n'));
  return 0;
}

const DEFAULT_REPORTS = 20;

async function drillReports(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, 'redis-url': { type: 'string' }, site: { type: 'string' }, limit: { type: 'string' } },
  });
  if (positionals.length > 0) throw new UsageError(`usage: firebreak drill reports [--site S] [--limit N] [--json] (got "${positionals.join(' ')}")`);
  const site = siteFilter(values.site);
  const limit = values.limit === undefined ? DEFAULT_REPORTS : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || !/^\d+$/.test(values.limit ?? '1')) throw new UsageError(`--limit must be a whole number of at least 1, got "${values.limit ?? ''}"`);
  const { redisUrl } = await resolveUrls({ redisUrl: values['redis-url'] });
  const reports = await withStore(redisUrl, (store) => store.drills.list({ ...(site !== undefined && { site }), limit }));
  console.log(values.json ? JSON.stringify({ version: 1, site: site ?? null, reports }, null, 2) : renderDrillReports(reports, site).join('\n'));
  return 0;
}

function formatSeconds(s: number): string {
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

interface DrillFollower {
  /** 0 when the drill recovered every server and cleanup restored everything, 1 otherwise (or on timeout), 130 on Ctrl-C. */
  result(timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

async function followDrill(bus: Bus, drillId: string, json: boolean): Promise<DrillFollower> {
  const incidentId = drillIncidentId(drillId);
  let settle: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (settle = resolve));
  let last = '';
  const sub = await bus.subscribeCore(topics.incidents, (p: IncidentProgress) => {
    if (p.incidentId !== incidentId) return;
    const line = incidentLine(p);
    if (!json && line.slice(9) !== last.slice(9)) console.log(line);
    last = line;
    if (!isFinal(p)) return;
    const verdict = drillVerdict(p);
    if (json) {
      console.log(JSON.stringify({ drillId, incidentId, phase: p.phase, passed: verdict.passed, problems: verdict.problems, report: p.report ?? [], cleanup: p.cleanup ?? null }));
    } else {
      console.log([...renderReport(p), ...renderDrillOutcome(p)].join('\n'));
    }
    settle(verdict.passed ? 0 : 1);
  });
  return {
    result: (timeoutMs) => {
      const timer = setTimeout(() => {
        console.error(`firebreak: drill ${drillId} did not end within ${Math.round(timeoutMs / 1000)} s; is the planner running?`);
        settle(1);
      }, timeoutMs);
      const onSignal = (): void => {
        console.error(`firebreak: stopped waiting; drill ${drillId} goes on (firebreak drill stop ${drillId})`);
        settle(130);
      };
      process.once('SIGINT', onSignal);
      return done.finally(() => {
        clearTimeout(timer);
        process.off('SIGINT', onSignal);
      });
    },
    stop: () => sub.stop(),
  };
}
