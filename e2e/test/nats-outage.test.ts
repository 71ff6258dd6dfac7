/**
 * NATS goes down for 2 s at the moment a rack burns (issue #15). While its
 * connection is down the detector hears no heartbeat from any host; that
 * silence must not be taken for the fleet's death. The burned rack is
 * recovered on fenced-off, correctly wired hosts, and no healthy host is
 * named in a failure verdict or an incident.
 *
 * Verdicts are read from the FB_EVENTS stream as well as from the observer:
 * the observer's core subscriptions are down with NATS too, and the verdicts
 * that matter most are those published the moment the detector is back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { streams, subjects, type Bus } from '@firebreak/shared';
import { burnRack, expectRackRecovered } from '../src/rack-burn.ts';
import { eventsSince } from '../src/recovery-checks.ts';
import { startSystem } from '../src/system.ts';

interface Stored {
  subject: string;
  body: { host?: string; hosts?: string[]; incidentId?: string; evidence?: { lastHeartbeatAt?: number | null } };
}

interface Verdict {
  kind: string;
  hosts: string[];
  lastHeartbeatAt?: number | null | undefined;
}

/** Every message FB_EVENTS holds after `afterSeq`, oldest first. */
async function storedEvents(bus: Bus, afterSeq: number): Promise<Stored[]> {
  const out: Stored[] = [];
  const info = await bus.jsm.streams.info(streams.events);
  for (let seq = Math.max(afterSeq + 1, info.state.first_seq); seq <= info.state.last_seq; seq++) {
    const sm = await bus.jsm.streams.getMessage(streams.events, { seq }).catch(() => undefined);
    if (sm) out.push({ subject: sm.subject, body: sm.json<Stored['body']>() });
  }
  return out;
}

test('NATS down for 2 s as a rack burns: the rack is recovered and no healthy host is reported failed', { timeout: 300_000 }, async (t) => {
  const system = await startSystem({ size: 'tiny', executors: 2, planners: 2 });
  try {
    const { lab, observer, bus } = system;
    const rack = 'r2';
    const streamSeq = (await bus.jsm.streams.info(streams.events)).state.last_seq;

    const burned = burnRack(system, rack);
    const { dead, burnedAt, sinceSeq } = burned;
    await system.crashNats(2_000);
    const natsBackAt = Date.now();
    t.diagnostic(`NATS back ${natsBackAt - burnedAt} ms after the burn`);
    const final = await expectRackRecovered(system, burned, 200_000);
    const events = eventsSince(lab, sinceSeq);

    // What the stream stored is what the planner acted on, whatever the observer missed while NATS was down.
    const stored = await storedEvents(bus, streamSeq);
    const named = (s: Stored): string[] => [...(s.body.host === undefined ? [] : [s.body.host]), ...(s.body.hosts ?? [])];
    const outside = (hosts: readonly string[]): string[] => hosts.filter((h) => !dead.includes(h));
    const verdictSubjects = new Set([subjects.hostEvent('failed'), subjects.hostEvent('suspect'), subjects.domainFailed]);
    const verdicts: Verdict[] = [
      ...observer.hostFailures.map((v) => ({ kind: 'host.failed (observed)', hosts: [v.host], lastHeartbeatAt: v.evidence.lastHeartbeatAt })),
      ...observer.domainFailures.map((v) => ({ kind: `domain.failed ${v.domain.kind} ${v.domain.id} (observed)`, hosts: v.hosts })),
      ...stored
        .filter((s) => verdictSubjects.has(s.subject))
        .map((s) => ({ kind: s.subject, hosts: named(s), lastHeartbeatAt: s.body.evidence?.lastHeartbeatAt })),
    ];
    // A healthy host reported failed, or isolated (that moves nothing, yet it is false), is what the outage must not cause.
    // Known apart from NATS, and seen after a plain rack burn too: a host Firebreak powers off to take
    // over can be reported while it reboots silent. Such a verdict names a host heard after NATS was
    // back, so it is not the detector mistaking its own deafness for the host's; it is listed, not failed.
    const poweredOffByUs = new Set(events.filter((e) => e.source === 'bmc' && e.action === 'power-off').flatMap((e) => (e.host === undefined ? [] : [e.host])));
    const takeOver = (v: Verdict, host: string): boolean =>
      v.hosts.length === 1 && poweredOffByUs.has(host) && typeof v.lastHeartbeatAt === 'number' && v.lastHeartbeatAt >= natsBackAt;
    const wrong = verdicts.flatMap((v) => outside(v.hosts).map((host) => ({ v, host })));
    const falseVerdicts = [...new Set(wrong.filter(({ v, host }) => !takeOver(v, host)).map(({ v, host }) => `${v.kind}: ${host}`))];
    const history = (host: string): string =>
      events.filter((e) => e.host === host).map((e) => `  ${new Date(e.at).toISOString()} ${e.source} ${e.action}`).join('\n');
    const explain = (list: typeof wrong): string =>
      list.map(({ v, host }) => `${v.kind}: ${host}, last heard ${v.lastHeartbeatAt === undefined ? '?' : new Date(v.lastHeartbeatAt ?? 0).toISOString()}\n${history(host)}`).join('\n');
    assert.deepEqual(falseVerdicts, [], `verdicts for hosts outside rack ${rack} (NATS back at ${new Date(natsBackAt).toISOString()})\n${explain(wrong)}\n${system.logs()}`);
    const excused = wrong.filter(({ v, host }) => takeOver(v, host));
    if (excused.length > 0) t.diagnostic(`verdicts about hosts taken over once NATS was back: ${explain(excused).replaceAll('\n', '; ')}`);

    const incidentPrefix = subjects.incidentAll.replace(/>$/, '');
    const progress = stored.filter((s) => s.subject.startsWith(incidentPrefix));
    const incidentHosts = [...[...observer.incidents.values()].flat().flatMap((p) => p.hosts), ...progress.flatMap(named)];
    const takenOver = new Set(excused.map(({ host }) => host));
    assert.deepEqual(
      [...new Set(outside(incidentHosts))].filter((h) => !takenOver.has(h)),
      [],
      'no incident names a host outside the burned rack, but for one reported while taken over',
    );
    const incidents = new Set([...observer.incidents.keys(), ...progress.map((s) => s.body.incidentId)]);
    t.diagnostic(`incidents: ${incidents.size}; phases of ${final.incidentId}: ${observer.phasesOf(final.incidentId).join(' → ')}`);

    const deafness = system.services.get('detector')?.lines.filter((l) => /judging heartbeat silence|nats reconnected/.test(l)) ?? [];
    t.diagnostic(`detector: ${deafness.join(' | ')}`);
  } finally {
    await system.stop();
  }
});
