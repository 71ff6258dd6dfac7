import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { NatsConnection } from 'nats';
import { subjects, type Bus } from '@firebreak/shared';
import type { Lab } from '@firebreak/lab';
import { waitFor } from '@firebreak/shared/testing';
import { startDetector, type Detector, type DetectorOptions } from '../src/index.ts';
import { useDetectorLab, type Verdict } from './detector-lab.ts';

const INTERVAL = 250;
const MISSED = 3;
const WINDOW = INTERVAL * MISSED;

const world = useDetectorLab({ name: 'detector-test', size: 'tiny', heartbeatPeriodMs: INTERVAL });
const detectors: Detector[] = [];
let options: DetectorOptions;
let lab: Lab;
let bus: Bus;
let nc: NatsConnection;
let verdicts: Verdict[];
let running: (rack: string) => string[];
const about = (host: string, subject: string): Verdict[] => verdicts.filter((v) => v.subject === subject && v.body.host === host);

before(async () => {
  const w = await world();
  ({ lab, bus, verdicts, running } = w);
  nc = bus.nc;
  options = {
    ...w.base,
    heartbeat: { kind: 'fixed', intervalMs: INTERVAL, missed: MISSED },
    bmcTimeoutMs: 300,
    bmcPollIntervalMs: 400,
    bmcPollConcurrency: 4,
    trapPort: 0,
    correlation: { windowMs: 50, minHosts: 3, minFraction: 0.5 },
    recoverHoldMs: 400,
  };
  const detector = await startDetector(options);
  detectors.push(detector);
  w.stopFirst(async () => {
    for (const d of detectors) await d.stop();
  });
  lab.switches.setTrapReceivers([`127.0.0.1:${String(detector.trapPort)}`]);
  // Let every running host be seen at least once (armed) before faults start.
  await new Promise((r) => setTimeout(r, INTERVAL * 3));
});

test('detector - a killed host is reported failed within interval × missed + 250 ms', async () => {
  const [host] = running('r1');
  assert.ok(host);
  const killedAt = Date.now();
  lab.faults.killHost(host);
  await waitFor(`host.failed for ${host}`, () => about(host, subjects.hostEvent('failed')).length > 0, 5_000);
  const [v] = about(host, subjects.hostEvent('failed'));
  assert.ok(v);
  assert.ok(v.at - killedAt <= WINDOW + 250, `took ${v.at - killedAt} ms`);
  assert.equal(v.body.cause, 'bmc-power-off');
  assert.deepEqual((v.body.evidence?.bmc as { powerState?: string }).powerState, 'off');
});

test('detector - an isolated host (BMC fine) is suspect, never failed', async () => {
  const host = running('r3')[0];
  assert.ok(host);
  lab.faults.isolateHost(host);
  await waitFor(`host.suspect for ${host}`, () => about(host, subjects.hostEvent('suspect')).length > 0, 5_000);
  await new Promise((r) => setTimeout(r, WINDOW * 2));
  assert.equal(about(host, subjects.hostEvent('failed')).length, 0);
  // It rejoins: one host.recovered after the hold.
  lab.faults.isolateHost(host, false);
  await waitFor(`host.recovered for ${host}`, () => about(host, subjects.hostEvent('recovered')).length > 0, 5_000);
});

test('detector - a burned rack is exactly one domain.failed naming exactly its running hosts', async () => {
  const hosts = running('r2');
  assert.ok(hosts.length >= 3, `rack r2 runs ${hosts.length} hosts`);
  lab.faults.burnRack('r2');
  await waitFor('domain.failed for r2', () => verdicts.some((v) => v.subject === subjects.domainFailed), 5_000);
  await new Promise((r) => setTimeout(r, WINDOW * 2));
  const domain = verdicts.filter((v) => v.subject === subjects.domainFailed);
  assert.equal(domain.length, 1);
  assert.deepEqual(domain[0]?.body.domain, { kind: 'rack', id: 'r2', site: 'site1' });
  assert.deepEqual([...(domain[0]?.body.hosts ?? [])].sort(), hosts);
  // However each host was first noticed (link trap or silence), its dead BMC is the cause that tells the planner to fence on the fabric.
  assert.deepEqual(domain[0]?.body.causes, ['bmc-unreachable']);
  for (const h of hosts) assert.equal(about(h, subjects.hostEvent('failed')).length, 0, `${h} reported on its own too`);
});

test('detector - BMC health Critical is a failure with that cause', async () => {
  const host = running('r1').at(-1);
  assert.ok(host);
  lab.faults.setHealth(host, 'Critical');
  await waitFor(`host.failed for ${host}`, () => about(host, subjects.hostEvent('failed')).length > 0, 5_000);
  assert.equal(about(host, subjects.hostEvent('failed'))[0]?.body.cause, 'bmc-critical');
});

test('detector - a linkDown trap from the lab flags the right host', async () => {
  const host = running('r3').at(-1);
  assert.ok(host);
  const before = verdicts.length;
  for (const nic of lab.world.host(host).host.nics) lab.world.setPortCarrier(nic.switch, nic.port, 'down');
  await waitFor(`a verdict for ${host}`, () => verdicts.slice(before).some((v) => v.body.host === host), 3_000);
  const flagged = verdicts.slice(before).filter((v) => v.body.host !== undefined);
  assert.deepEqual([...new Set(flagged.map((v) => v.body.host))], [host]);
  // Its BMC says it runs: isolated, not failed over; the evidence names the link.
  assert.equal(flagged[0]?.subject, subjects.hostEvent('suspect'));
  assert.equal((flagged[0]?.body.evidence?.link as { status?: string }).status, 'down');
});

test('detector - malformed heartbeats are counted and dropped, and detection goes on', async () => {
  const host = running('r1')[1];
  assert.ok(host);
  const rt = lab.world.host(host).host;
  nc.publish(subjects.heartbeat(rt.site, rt.rack, host), new TextEncoder().encode('{not json'));
  nc.publish(subjects.heartbeat(rt.site, rt.rack, host), new TextEncoder().encode(JSON.stringify({ host, seq: -1 })));
  nc.publish(subjects.heartbeat('site1', 'r9', 'ghost'), new TextEncoder().encode('{}'));
  await nc.flush();
  await waitFor('the bad heartbeats counted', () => {
    const s = detectors[0]?.stats().heartbeats as { invalid: number; unknown: number };
    return s.invalid >= 2 && s.unknown >= 1;
  });
  await new Promise((r) => setTimeout(r, WINDOW + INTERVAL));
  assert.equal(about(host, subjects.hostEvent('failed')).length, 0, 'garbage must not fail a healthy host');
  lab.faults.killHost(host);
  await waitFor(`host.failed for ${host} after the garbage`, () => about(host, subjects.hostEvent('failed')).length > 0, 5_000);
});

test('detector - two detectors side by side: planners see each failure once', async () => {
  const { trapPort: _oneReceiverIsEnough, ...rest } = options;
  const second = await startDetector({ ...rest, detectorId: 'd2' });
  detectors.push(second);
  await new Promise((r) => setTimeout(r, INTERVAL * 3));
  const host = running('r3')[1];
  assert.ok(host);
  lab.faults.killHost(host);
  await waitFor(`host.failed for ${host}`, () => about(host, subjects.hostEvent('failed')).length > 0, 5_000);
  await new Promise((r) => setTimeout(r, 500));
  // Core subscribers see both publishes; the stream (what planners consume) keeps one.
  const stored: string[] = [];
  const consumer = await bus.js.consumers.get('FB_EVENTS');
  const iter = await consumer.fetch({ max_messages: 1_000, expires: 1_000 });
  for await (const m of iter) {
    const body = m.json<{ host?: string }>();
    if (m.subject === subjects.hostEvent('failed') && body.host === host) stored.push(m.subject);
  }
  assert.equal(stored.length, 1);
});

test('detector - a detector started after a host died still reports it (hosts that run a server are expected from the start)', async () => {
  const host = running('r1')[0];
  assert.ok(host);
  lab.faults.killHost(host);
  await new Promise((r) => setTimeout(r, INTERVAL * 2));
  const { trapPort: _traps, ...rest } = options;
  // No BMC polling: the heartbeat deadline alone must notice it.
  const late = await startDetector({ ...rest, detectorId: 'd3', bmcPollIntervalMs: 0 });
  detectors.push(late);
  await waitFor(
    `d3's host.failed for ${host}`,
    () => about(host, subjects.hostEvent('failed')).some((v) => (v.body as { detector?: string }).detector === 'd3'),
    INTERVAL * MISSED * 2 + 3_000,
  );
  const verdict = about(host, subjects.hostEvent('failed')).find((v) => (v.body as { detector?: string }).detector === 'd3');
  assert.equal((verdict?.body.evidence as { lastHeartbeatAt?: unknown }).lastHeartbeatAt, null, 'it never heard the host: no last heartbeat claimed');
  await late.stop();
  detectors.splice(detectors.indexOf(late), 1);
});

test('detector - an idle host switched off (its BMC answers and says off) fails nobody: no verdict', async () => {
  // A host no earlier test touched, so silence below is this detector's decision.
  const idle = [...lab.world.allHosts()].find(
    (h) => h.host.role === 'repurposable' && h.phase === 'running' && h.server === null && !verdicts.some((v) => v.body.host === h.host.id || v.body.hosts?.includes(h.host.id)),
  )?.host.id;
  assert.ok(idle, 'the lab has an untouched repurposable host running its own work');
  const since = Date.now();
  lab.faults.killHost(idle);
  await new Promise((r) => setTimeout(r, INTERVAL * MISSED * 3));
  assert.deepEqual(
    verdicts.filter((v) => v.at >= since && (v.body.host === idle || v.body.hosts?.includes(idle))).map((v) => v.subject),
    [],
    'no failed, suspect or recovered verdict for a machine nobody depends on',
  );
  // Heard again, it is watched again: a later silence with the BMC gone is a failure.
  lab.world.setPower(idle, 'on');
  await waitFor(`${idle} heartbeats again`, () => lab.world.host(idle).phase === 'running', 5_000);
  await new Promise((r) => setTimeout(r, INTERVAL * 2));
  lab.faults.setBmc(idle, { mode: 'unreachable' });
  lab.faults.isolateHost(idle);
  await waitFor(`host.failed for ${idle} once its BMC is gone too`, () => about(idle, subjects.hostEvent('failed')).some((v) => v.at >= since), 5_000);
  lab.faults.isolateHost(idle, false);
  lab.faults.setBmc(idle, { mode: 'ok' });
});
