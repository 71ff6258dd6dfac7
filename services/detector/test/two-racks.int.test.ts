/**
 * Issue #15: two racks burned 200 ms apart; the detector reported the first
 * as a domain and the second as dozens of host failures. Here the lab's
 * "rack" size (four racks of 40) burns two racks 200 ms apart while the
 * detector runs with its production timings (1 s heartbeats, 3 missed,
 * 100 ms gather window).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { subjects } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import type { Lab } from '@firebreak/lab';
import { startDetector, type Detector, type DetectorOptions } from '../src/index.ts';
import { useDetectorLab, type Verdict } from './detector-lab.ts';

const INTERVAL = 1_000;
const MISSED = 3;

const world = useDetectorLab({ name: 'two-racks-test', size: 'rack', heartbeatPeriodMs: INTERVAL });
let lab: Lab;
let verdicts: Verdict[];
let detector: Detector | undefined;
let options: DetectorOptions;
let running: (rack: string) => string[];

before(async () => {
  const w = await world();
  ({ lab, verdicts, running } = w);
  options = {
    ...w.base,
    heartbeat: { kind: 'fixed', intervalMs: INTERVAL, missed: MISSED },
    bmcTimeoutMs: 1_000,
    bmcPollIntervalMs: 0,
    bmcPollConcurrency: 16,
    correlation: { windowMs: 100, minHosts: 3, minFraction: 0.5 },
    recoverHoldMs: 3_000,
  };
  w.stopFirst(async () => {
    await detector?.stop();
  });
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
