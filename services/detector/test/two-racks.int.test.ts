/**
 * Issue #15: two racks burned 200 ms apart; the detector reported the first
 * as a domain and the second as dozens of host failures. Here the lab's
 * "rack" size (four racks of 40) burns two racks 200 ms apart while the
 * detector runs with its production timings (1 s heartbeats, 3 missed,
 * 100 ms gather window).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { connect, StringCodec, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { connectBus, ensureStreams, subjects, type Bus } from '@firebreak/shared';
import { startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import { startLab, type Lab } from '@firebreak/lab';
import { startDetector, type Detector, type DetectorOptions } from '../src/index.ts';

const INTERVAL = 1_000;
const MISSED = 3;

interface Verdict {
  subject: string;
  at: number;
  body: { host?: string; hosts?: string[]; domain?: { kind: string; id: string } };
}

let nats: TestServer;
let lab: Lab;
let bus: Bus;
let nc: NatsConnection;
let detector: Detector | undefined;
const verdicts: Verdict[] = [];
let options: DetectorOptions;

const running = (rack: string): string[] =>
  [...lab.world.allHosts()].filter((h) => h.host.rack === rack && h.phase === 'running').map((h) => h.host.id).sort();

before(async () => {
  nats = await startNats();
  bus = await connectBus({ url: nats.url, name: 'two-racks-test' });
  await ensureStreams(bus.jsm);
  lab = await startLab({ natsUrl: nats.url, size: 'rack', powerDelayMs: 100, heartbeatPeriodMs: INTERVAL });
  nc = await connect({ servers: nats.url });
  const sc = StringCodec();
  nc.subscribe(subjects.eventsAll, {
    callback: (_e, m) => verdicts.push({ subject: m.subject, at: Date.now(), body: JSON.parse(sc.decode(m.data)) as Verdict['body'] }),
  });
  const creds = JSON.parse(await readFile(lab.credentialsPath, 'utf8')) as Record<string, { community?: string }>;
  options = {
    inventory: lab.inventory,
    bus,
    logger: pino({ level: 'silent' }),
    detectorId: 'd1',
    heartbeat: { kind: 'fixed', intervalMs: INTERVAL, missed: MISSED },
    bmcTimeoutMs: 1_000,
    bmcPollIntervalMs: 0,
    bmcPollConcurrency: 16,
    trapCommunities: Object.values(creds).flatMap((c) => (c.community ? [c.community] : [])),
    correlation: { windowMs: 100, minHosts: 3, minFraction: 0.5 },
    recoverHoldMs: 3_000,
  };
});

after(async () => {
  await detector?.stop();
  await nc?.close();
  await lab?.stop();
  await bus?.close();
  await nats?.stop();
});

async function burnTwoRacks(first: string, second: string): Promise<void> {
  const expected = { [first]: running(first), [second]: running(second) };
  for (const hosts of Object.values(expected)) assert.ok(hosts.length >= 20, `a rack of the "rack" lab runs ${hosts.length} hosts`);
  const since = Date.now();
  lab.faults.burnRack(first);
  await new Promise((r) => setTimeout(r, 200));
  lab.faults.burnRack(second);

  const about = (rack: string) => verdicts.filter((v) => v.at >= since && v.subject === subjects.domainFailed && v.body.domain?.id === rack);
  await waitFor(`domain.failed for ${first} and ${second}`, () => about(first).length > 0 && about(second).length > 0, INTERVAL * (MISSED + 5));
  // Long enough for any straggler verdict to show up.
  await new Promise((r) => setTimeout(r, INTERVAL * 3));

  for (const rack of [first, second]) {
    const domain = about(rack);
    assert.equal(domain.length, 1, `exactly one domain.failed for ${rack}`);
    assert.deepEqual(domain[0]?.body.domain, { kind: 'rack', id: rack, site: 'site1' });
    assert.deepEqual([...(domain[0]?.body.hosts ?? [])].sort(), expected[rack], `${rack}'s domain.failed names every host it ran`);
  }
  const burned = new Set([...(expected[first] ?? []), ...(expected[second] ?? [])]);
  const alone = verdicts.filter((v) => v.at >= since && v.subject === subjects.hostEvent('failed') && burned.has(v.body.host ?? ''));
  assert.deepEqual(alone.map((v) => v.body.host), [], 'no host.failed for a host of a burned rack');
  assert.equal(verdicts.filter((v) => v.at >= since && v.subject === subjects.domainFailed).length, 2, 'no other domain reported');
}

test('detector - two racks burned 200 ms apart, noticed by link traps: one domain.failed each', { timeout: 60_000 }, async () => {
  detector = await startDetector({ ...options, trapPort: 0 });
  lab.switches.setTrapReceivers([`127.0.0.1:${String(detector.trapPort)}`]);
  await new Promise((r) => setTimeout(r, INTERVAL * 2));
  await burnTwoRacks('r1', 'r2');
});

test('detector - two racks burned 200 ms apart, noticed by their heartbeats alone: one domain.failed each', { timeout: 60_000 }, async () => {
  assert.ok(detector, 'the detector of the previous test still runs');
  // No more traps: the same detector now learns of deaths from silence only.
  lab.switches.setTrapReceivers([]);
  await burnTwoRacks('r3', 'r4');
});
