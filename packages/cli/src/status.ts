/**
 * `firebreak status`: open incidents with a progress bar per server, and the
 * hosts and servers that are not ready.
 *
 * Where it looks:
 * - Which incidents are open: the planner's open set in Redis, the same set
 *   a restarting planner resumes from.
 * - The latest progress of each: the planner publishes IncidentProgress on
 *   `fb.incident.<id>.<phase>` into FB_EVENTS, so for each open incident we
 *   fetch the last stored message of each phase subject (JetStream's
 *   `last_by_subj`, on nats-server 2.9 too) and keep the newest `at`. That is
 *   at most one small request per phase and open incident, however much
 *   history the stream holds, where a scan of `fb.incident.>` would read every
 *   update of the past week.
 * - Hosts: the detector's verdicts on `fb.evt.>`, folded to the newest per
 *   host (an ordered consumer reads them; verdicts are rare, unlike progress).
 */
import { parseArgs } from 'node:util';
import type {
  IncidentPhase,
  IncidentProgress} from '@firebreak/shared';
import {
  storedProgress,
  streams,
  subjects,
  type Bus,
  type ServerProgress,
  type Store,
} from '@firebreak/shared';
import { resolveUrls, withBus, withStore } from './connections.ts';
import { HostStates, type HostState } from './host-states.ts';
import { clock, renderIncident } from './incident-view.ts';

/** `--json` output. Fields are only ever added, never renamed or removed, within a `version`. */
export interface StatusDocument {
  version: 1;
  at: number;
  /** The `--site` filter, or null for every site. */
  site: string | null;
  incidents: StatusIncident[];
  /** Hosts whose newest detector verdict is failed or suspect. */
  hosts: HostState[];
  /** Servers of open incidents that are not running yet. */
  servers: NotReadyServer[];
}

export interface StatusIncident {
  incidentId: string;
  /** Null until the planner published progress for it. */
  phase: IncidentPhase | null;
  site: string | null;
  trigger: 'event' | 'drill' | null;
  openedAt: number | null;
  updatedAt: number | null;
  hosts: string[];
  message: string | null;
  servers: ServerProgress[];
}

export interface NotReadyServer {
  server: string;
  incidentId: string;
  step: ServerProgress['step'];
  percent: number;
  host: string | null;
  message: string | null;
}



/** Every detector verdict still in the stream, folded per host. */
export async function readHostStates(bus: Bus): Promise<HostStates> {
  const states = new HostStates();
  const consumer = await bus.js.consumers.get(streams.events, { filterSubjects: subjects.eventsAll });
  try {
    let pending = (await consumer.info()).num_pending;
    while (pending > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(pending, 500), expires: 5_000 });
      let got = 0;
      for await (const msg of batch) {
        got++;
        pending = msg.info.pending;
        try {
          states.apply(msg.subject, msg.json());
        } catch {
          // Not JSON: the consumers dead-letter it; status just skips it.
        }
      }
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => {});
  }
  return states;
}

export async function collectStatus(bus: Bus, store: Store, site: string | undefined, now = Date.now()): Promise<StatusDocument> {
  const [openIds, hostStates] = await Promise.all([store.snapshots.listOpen(), readHostStates(bus)]);
  const incidents: StatusIncident[] = [];
  for (const incidentId of openIds) {
    const p = await storedProgress(bus, incidentId);
    if (site !== undefined && p !== undefined && p.site !== site) continue;
    incidents.push(
      p === undefined
        ? { incidentId, phase: null, site: null, trigger: null, openedAt: null, updatedAt: null, hosts: [], message: null, servers: [] }
        : {
            incidentId,
            phase: p.phase,
            site: p.site,
            trigger: p.trigger,
            openedAt: p.openedAt,
            updatedAt: p.at,
            hosts: p.hosts,
            message: p.message ?? null,
            servers: p.servers,
          },
    );
  }
  const servers = incidents.flatMap((i) =>
    i.servers
      .filter((s) => s.step !== 'done')
      .map((s) => ({ server: s.server, incidentId: i.incidentId, step: s.step, percent: s.percent, host: s.host, message: s.message ?? null })),
  );
  return { version: 1, at: now, site: site ?? null, incidents, hosts: hostStates.notReady(site), servers };
}

export function renderStatus(doc: StatusDocument): string {
  const lines: string[] = [];
  const where = doc.site === null ? '' : ` at ${doc.site}`;
  if (doc.incidents.length === 0) lines.push(`no open incidents${where}`);
  else lines.push(`${doc.incidents.length} open incident(s)${where}:`);
  for (const i of doc.incidents) {
    if (i.phase === null || i.site === null || i.trigger === null || i.openedAt === null || i.updatedAt === null) {
      lines.push(`${i.incidentId}  (no progress published yet)`);
      continue;
    }
    const progress: IncidentProgress = {
      incidentId: i.incidentId,
      site: i.site,
      phase: i.phase,
      trigger: i.trigger,
      openedAt: i.openedAt,
      at: i.updatedAt,
      hosts: i.hosts,
      servers: i.servers,
      ...(i.message !== null && { message: i.message }),
    };
    lines.push(...renderIncident(progress, doc.at));
  }
  lines.push('');
  if (doc.hosts.length === 0) lines.push('hosts: none failed or suspect');
  else {
    lines.push(`hosts not ready: ${doc.hosts.length}`);
    const width = Math.max(...doc.hosts.map((h) => h.host.length));
    for (const h of doc.hosts) {
      lines.push(`  ${h.host.padEnd(width)}  ${h.rack === null ? '' : `rack ${h.rack}  `}${h.state.padEnd(7)}  since ${clock(h.since)}${h.cause === null ? '' : `  ${h.cause}`}`);
    }
  }
  if (doc.servers.length === 0) lines.push('servers: none waiting on an open incident');
  else lines.push(`servers not ready: ${doc.servers.length} (${doc.servers.map((s) => `${s.server} ${s.step}`).join(', ')})`);
  return lines.join('\n');
}

export const statusUsage = `  status [--site S] [--json] [--nats-url URL] [--redis-url URL]
      open incidents with a progress bar per server; failed and suspect hosts`;

export async function status(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      site: { type: 'string' },
      json: { type: 'boolean', default: false },
      'nats-url': { type: 'string' },
      'redis-url': { type: 'string' },
    },
  });
  const urls = await resolveUrls({ natsUrl: values['nats-url'], redisUrl: values['redis-url'] });
  const doc = await withBus(urls.natsUrl, (bus) => withStore(urls.redisUrl, (store) => collectStatus(bus, store, values.site)));
  console.log(values.json ? JSON.stringify(doc, null, 2) : renderStatus(doc));
  return 0;
}
