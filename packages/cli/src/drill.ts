/**
 * `firebreak drill start <domain> [--duration 10m] [--wait]` and
 * `firebreak drill stop <drillId>`: DR drills through the planner. A drill
 * recovers the domain's servers on isolated drill VLANs with cloned LUNs,
 * leaves production alone, and cleans up on stop or after its duration.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { Id, topics, type Bus, type DrillScope, type IncidentProgress } from '@firebreak/shared';
import { resolveUrls, withBus } from './connections.ts';
import { checkScope, describeScope, domainSyntax, knownInventory, parseScope } from './domain-args.ts';
import { incidentLine, isFinal, renderReport } from './incident-view.ts';
import { UsageError } from './usage-error.ts';

export const drillUsage = `  drill start ${domainSyntax} [--duration 10m] [--site S] [--wait] [--json] [--nats-url URL]
      rehearse the loss of a domain on drill VLANs and cloned LUNs; prints the
      drill id (--wait follows it to its end and prints the report)
  drill stop <drillId> [--reason TEXT] [--json] [--nats-url URL]
      end a drill early: the planner cleans up and returns borrowed hosts`;

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

export async function drill(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action === 'start') return drillStart(rest);
  if (action === 'stop') return drillStop(rest);
  throw new UsageError(`usage: firebreak drill start ${domainSyntax} | firebreak drill stop <drillId>${action === undefined ? '' : ` (got "${action}")`}`);
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

async function drillStop(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...connectionOptions, reason: { type: 'string' } },
  });
  const [drillId, extra] = positionals;
  if (drillId === undefined || extra !== undefined) throw new UsageError('usage: firebreak drill stop <drillId> (the id "drill start" printed)');
  if (!Id.safeParse(drillId).success) throw new UsageError(`"${drillId}" is not a drill id (letters, digits, "-" or "_"); "firebreak status" lists open drills as drill-<id>`);
  const { natsUrl } = await resolveUrls({ natsUrl: values['nats-url'] });
  const requestedAt = Date.now();
  await withBus(natsUrl, (bus) =>
    bus.publish(
      topics.drillStop,
      { drillId, requestedBy: requestedBy(), requestedAt, ...(values.reason !== undefined && { reason: values.reason }) },
      { msgId: `drill-stop-${drillId}` },
    ),
  );
  if (values.json) console.log(JSON.stringify({ drillId, stopRequestedAt: requestedAt }));
  else console.log(`stop requested for drill ${drillId}: the planner cleans it up and returns its hosts`);
  return 0;
}

function formatSeconds(s: number): string {
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

interface DrillFollower {
  /** 0 when the drill ended recovered, 1 otherwise (or on timeout), 130 on Ctrl-C. */
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
    if (json) console.log(JSON.stringify({ drillId, incidentId, phase: p.phase, report: p.report ?? [] }));
    else console.log(renderReport(p).join('\n'));
    settle(p.phase === 'recovered' ? 0 : 1);
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
