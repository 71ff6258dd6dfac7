/**
 * The detector's BMC channel against the lab's Redfish simulator over HTTPS
 * (verified against the lab's CA, session and basic-auth BMCs, credentials
 * from the file the inventory references).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startLab, type Lab } from '@firebreak/lab';
import type { Inventory } from '@firebreak/shared';
import { startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import { BmcProber, classify, type BmcEvidence, type BmcProbe } from '../src/bmc/bmc-prober.ts';
import { BmcHealthPoller, type UnhealthyCause } from '../src/bmc/health-poller.ts';

let nats: TestServer;
let lab: Lab;
let prober: BmcProber;
/** Every error text any probe produced in this file, checked for secrets at the end. */
const errors: string[] = [];
const stops: (() => Promise<void>)[] = [];

before(async () => {
  nats = await startNats();
  lab = await startLab({ natsUrl: nats.url, size: 'tiny', powerDelayMs: 100 });
  prober = track(new BmcProber(lab.inventory, { timeoutMs: 1_000 }));
});

after(async () => {
  for (const stop of stops.reverse()) await stop();
  await lab?.stop();
  await nats?.stop();
});

function track<T extends BmcProbe & { close(): Promise<void> }>(p: T): T {
  const probe = p.probe.bind(p);
  p.probe = async (hostId, signal) => {
    const evidence = await probe(hostId, signal);
    if (evidence.error !== undefined) errors.push(evidence.error);
    return evidence;
  };
  stops.push(() => p.close());
  return p;
}

/** Wraps a prober to count probes per host and the most in flight at once. */
function counting(inner: BmcProbe) {
  const perHost = new Map<string, number>();
  const starts: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const probe: BmcProbe = {
    async probe(hostId, signal) {
      perHost.set(hostId, (perHost.get(hostId) ?? 0) + 1);
      starts.push(Date.now());
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await inner.probe(hostId, signal);
      } finally {
        inFlight--;
      }
    },
  };
  return { probe, perHost, starts, maxInFlight: () => maxInFlight };
}

function hostsOf(...racks: string[]): string[] {
  return lab.inventory.hosts.filter((h) => racks.includes(h.rack)).map((h) => h.id);
}

test('detector bmc-prober - a running host is reachable, on and OK: suspect, not failed', async () => {
  for (const host of ['r1-h01', 'r3-h01']) {
    // r1's BMC speaks sessions, r3's basic auth only (no SessionService).
    const started = performance.now();
    const evidence = await prober.probe(host);
    console.log(`# first probe of ${host} (TLS handshake, auth discovery, login): ${(performance.now() - started).toFixed(0)} ms`);
    assert.deepEqual(evidence, { reachable: true, powerState: 'on', health: 'OK' }, host);
    assert.deepEqual(classify(evidence), { kind: 'suspect' });
  }
});

test('detector bmc-prober - an isolated host (heartbeats lost, BMC fine) stays suspect', async () => {
  lab.faults.isolateHost('r1-h05');
  const evidence = await prober.probe('r1-h05');
  assert.deepEqual(classify(evidence), { kind: 'suspect' });
  lab.faults.isolateHost('r1-h05', false);
});

test('detector bmc-prober - one driver (one session) per BMC system, reused across probes', async () => {
  await prober.probe('r1-h08');
  const logins = lab.recorder.count('bmc', 'login');
  const reads = lab.recorder.count('bmc', 'get-system', 'r1-h08');
  const started = performance.now();
  for (let i = 0; i < 10; i++) assert.equal((await prober.probe('r1-h08')).powerState, 'on');
  const warmMs = (performance.now() - started) / 10;
  assert.equal(lab.recorder.count('bmc', 'login'), logins, 'no new login');
  assert.equal(lab.recorder.count('bmc', 'get-system', 'r1-h08'), reads + 10, 'one GET per probe');
  console.log(`# warm probe ${warmMs.toFixed(1)} ms`);
});

test('detector bmc-prober - a killed host reads off: failed bmc-power-off', async () => {
  lab.faults.killHost('r1-h02');
  let evidence: BmcEvidence | undefined;
  await waitFor('the BMC to report r1-h02 off', async () => (evidence = await prober.probe('r1-h02')).powerState === 'off', 2_000);
  assert.deepEqual(evidence, { reachable: true, powerState: 'off', health: 'OK' });
  assert.deepEqual(classify(evidence!), { kind: 'failed', cause: 'bmc-power-off' });
});

test('detector bmc-prober - health Critical: failed bmc-critical', async () => {
  lab.faults.setHealth('r1-h03', 'Critical');
  const evidence = await prober.probe('r1-h03');
  assert.deepEqual(evidence, { reachable: true, powerState: 'on', health: 'Critical' });
  assert.deepEqual(classify(evidence), { kind: 'failed', cause: 'bmc-critical' });
  lab.faults.setHealth('r1-h03', 'OK');
});

test('detector bmc-prober - a burned rack: unreachable within the timeout, failed bmc-unreachable', async () => {
  lab.faults.burnRack('r2');
  let slowest = 0;
  for (const host of hostsOf('r2')) {
    const started = performance.now();
    const evidence = await prober.probe(host);
    const ms = performance.now() - started;
    assert.equal(evidence.reachable, false, host);
    assert.match(evidence.error ?? '', /connection failed/);
    assert.deepEqual(classify(evidence), { kind: 'failed', cause: 'bmc-unreachable' });
    assert.ok(ms < 1_000, `${host}: answered in ${ms.toFixed(0)} ms`);
    slowest = Math.max(slowest, ms);
  }
  console.log(`# burned rack: each BMC reported unreachable within ${slowest.toFixed(0)} ms`);
});

test('detector bmc-prober - a BMC that does not answer costs the timeout, not more', async () => {
  const quick = track(new BmcProber(lab.inventory, { timeoutMs: 300 }));
  assert.equal((await quick.probe('r1-h06')).reachable, true, 'warm: session open');
  lab.faults.setBmc('r1-h06', { mode: 'slow', latencyMs: 5_000 });
  const started = performance.now();
  const evidence = await quick.probe('r1-h06');
  const ms = performance.now() - started;
  lab.faults.setBmc('r1-h06', { mode: 'ok' });
  assert.equal(evidence.reachable, false);
  assert.match(evidence.error ?? '', /within 300 ms|deadline/);
  assert.deepEqual(classify(evidence), { kind: 'failed', cause: 'bmc-unreachable' });
  assert.ok(ms >= 290 && ms < 450, `timed out after ${ms.toFixed(0)} ms`);
  console.log(`# timeout 300 ms → probe returned after ${ms.toFixed(0)} ms`);
});

test('detector bmc-prober - one failed answer is retried within the deadline, not reported', async () => {
  lab.faults.setBmc('r1-h07', { mode: 'fail', requests: 1 });
  assert.deepEqual(await prober.probe('r1-h07'), { reachable: true, powerState: 'on', health: 'OK' });
  lab.faults.setBmc('r1-h07', { mode: 'fail', requests: 5 });
  const evidence = await prober.probe('r1-h07');
  lab.faults.setBmc('r1-h07', { mode: 'ok' });
  assert.equal(evidence.reachable, true, 'the BMC answered, with errors');
  assert.equal(evidence.powerState, 'unknown');
  assert.match(evidence.error ?? '', /HTTP 500/);
  assert.deepEqual(classify(evidence), { kind: 'failed', cause: 'heartbeat-lost' });
});

test('detector bmc-prober - refused or missing credentials: an error naming the reference, never the secret', async () => {
  const withRef = (host: string, credentialsRef: string): Inventory => ({
    ...lab.inventory,
    hosts: lab.inventory.hosts.map((h) => (h.id === host ? { ...h, bmc: { ...h.bmc, credentialsRef } } : h)),
  });
  const wrong = 'not-the-password-42';
  for (const host of ['r1-h07', 'r3-h04']) {
    const p = track(new BmcProber(withRef(host, 'env:FB_TEST_BMC'), { env: { FB_TEST_BMC: `admin:${wrong}` } }));
    const evidence = await p.probe(host);
    assert.equal(evidence.reachable, true, host);
    assert.match(evidence.error ?? '', /HTTP 401.*env:FB_TEST_BMC/);
    assert.ok(!evidence.error?.includes(wrong));
  }
  const missing = track(new BmcProber(withRef('r1-h07', 'env:FB_TEST_NOPE'), { env: {} }));
  const evidence = await missing.probe('r1-h07');
  assert.deepEqual(evidence, { reachable: false, error: 'credentials env:FB_TEST_NOPE: environment variable FB_TEST_NOPE is not set' });
  assert.deepEqual(await prober.probe('nope'), { reachable: false, error: 'no host "nope" in the inventory' });
});

test('detector bmc-poller - Critical reported once until it clears; an unexpected power-off once; a spare never', async () => {
  const reports: { host: string; cause: UnhealthyCause }[] = [];
  const counter = counting(prober);
  const poller = new BmcHealthPoller(counter.probe, hostsOf('r3'), {
    intervalMs: 100,
    maxConcurrent: 4,
    backoff: { initialMs: 100, maxMs: 1_000 },
    isExpectedOn: (host) => host !== 'r3-h07', // the spare: off and expected so
    onUnhealthy: (host, _evidence, cause) => reports.push({ host, cause }),
  });
  stops.push(() => poller.stop());
  poller.start();
  lab.faults.setHealth('r3-h02', 'Critical');
  lab.faults.killHost('r3-h03');
  await waitFor('both reports', () => reports.length >= 2, 2_000);
  const polled = counter.perHost.get('r3-h02') ?? 0;
  await waitFor('three more polls of r3-h02', () => (counter.perHost.get('r3-h02') ?? 0) >= polled + 3, 2_000);
  assert.deepEqual(
    reports.sort((a, b) => a.host.localeCompare(b.host)),
    [
      { host: 'r3-h02', cause: 'bmc-critical' },
      { host: 'r3-h03', cause: 'bmc-power-off' },
    ],
  );
  lab.faults.setHealth('r3-h02', 'OK');
  await waitFor('a poll that sees it cleared', () => (counter.perHost.get('r3-h02') ?? 0) >= polled + 6, 2_000);
  lab.faults.setHealth('r3-h02', 'Critical');
  await waitFor('the second Critical', () => reports.length >= 3, 2_000);
  assert.deepEqual(reports[2], { host: 'r3-h02', cause: 'bmc-critical' });
  assert.equal(poller.stats().unhealthy, 3);
  await poller.stop();
  lab.faults.setHealth('r3-h02', 'OK');
});

test('detector bmc-poller - never more than maxConcurrent in flight, first round spread over the interval', async () => {
  const hosts = [...hostsOf('r1', 'r3')];
  for (const host of hosts) lab.faults.setBmc(host, { mode: 'slow', latencyMs: 40 });
  const counter = counting(prober);
  const poller = new BmcHealthPoller(counter.probe, hosts, {
    intervalMs: 100,
    maxConcurrent: 3,
    backoff: { initialMs: 100, maxMs: 1_000 },
    isExpectedOn: () => false,
    onUnhealthy: () => undefined,
  });
  stops.push(() => poller.stop());
  poller.start();
  await new Promise((r) => setTimeout(r, 1_000));
  await poller.stop();
  for (const host of hosts) lab.faults.setBmc(host, { mode: 'ok' });
  const polls = [...counter.perHost.values()].reduce((a, b) => a + b, 0);
  console.log(`# ${hosts.length} BMCs, 40 ms each, limit 3: ${polls} polls in 1 s, max in flight ${counter.maxInFlight()}`);
  assert.equal(counter.maxInFlight(), 3, 'saturated but bounded');
  assert.equal(poller.stats().maxInFlight, 3);
  // 3 slots × 1 s / ~45 ms per poll ≈ 66: the limit, not the 16 BMCs × 10 rounds asked for, sets the pace.
  assert.ok(polls > 40 && polls < 80, `${polls} polls`);

  const spread = counting(prober);
  const free = new BmcHealthPoller(spread.probe, hosts, {
    intervalMs: 400,
    maxConcurrent: 32,
    backoff: { initialMs: 400, maxMs: 1_000 },
    isExpectedOn: () => false,
    onUnhealthy: () => undefined,
  });
  stops.push(() => free.stop());
  free.start();
  await waitFor('a first round', () => spread.starts.length >= hosts.length, 2_000);
  await free.stop();
  const first = spread.starts.slice(0, hosts.length);
  const span = Math.max(...first) - Math.min(...first);
  console.log(`# first round of ${hosts.length} polls spread over ${span} ms of a 400 ms interval`);
  assert.ok(span >= 300, `first round spread over ${span} ms`);
});

test('detector bmc-poller - an unreachable BMC backs off, a healthy one keeps its interval; success resets', async () => {
  const burned = 'r2-h01';
  const healthy = 'r1-h01';
  const counter = counting(prober);
  const dropped = lab.recorder.count('bmc', 'dropped');
  const poller = new BmcHealthPoller(counter.probe, [burned, healthy], {
    intervalMs: 100,
    maxConcurrent: 2,
    backoff: { initialMs: 100, maxMs: 800 },
    isExpectedOn: () => true,
    onUnhealthy: () => undefined,
  });
  stops.push(() => poller.stop());
  poller.start();
  await new Promise((r) => setTimeout(r, 2_000));
  const stats = poller.stats();
  const burnedPolls = counter.perHost.get(burned) ?? 0;
  const healthyPolls = counter.perHost.get(healthy) ?? 0;
  console.log(`# 2 s at 100 ms: healthy BMC ${healthyPolls} polls, unreachable BMC ${burnedPolls} (the lab's dark BMC dropped ${lab.recorder.count('bmc', 'dropped') - dropped} connections)`);
  // Backoff 100, 200, 400, 800, 800 ms: about 5 polls instead of 20.
  assert.ok(healthyPolls >= 17, `healthy: ${healthyPolls}`);
  assert.ok(burnedPolls >= 3 && burnedPolls <= 6, `unreachable: ${burnedPolls}`);
  assert.equal(stats.backingOff, 1);
  assert.ok(stats.errors >= burnedPolls);

  lab.faults.restoreHost(burned);
  lab.world.setPower(burned, 'on');
  const before = counter.perHost.get(burned) ?? 0;
  await waitFor('the restored BMC back on the interval', () => (counter.perHost.get(burned) ?? 0) >= before + 5, 3_000);
  assert.equal(poller.stats().backingOff, 0);
  await poller.stop();
});

test('detector bmc-prober - no credentials in any error text', async () => {
  const doc = JSON.parse(await readFile(lab.credentialsPath, 'utf8')) as Record<string, Record<string, string>>;
  const secrets = Object.values(doc).flatMap((c) => [c['password'], c['community']]).filter((s): s is string => s !== undefined);
  const basic = Object.values(doc)
    .filter((c) => c['password'] !== undefined)
    .map((c) => Buffer.from(`${c['username']}:${c['password']}`).toString('base64'));
  assert.ok(errors.length >= 10, `${errors.length} errors seen`);
  for (const error of errors) for (const secret of [...secrets, ...basic]) assert.ok(!error.includes(secret), error);
});
