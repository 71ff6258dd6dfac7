/**
 * The BMC health poller's schedule, on a simulated clock: where each poll
 * lands, how backoff grows and resets, and what survives a failing callback.
 * The same poller runs against the lab's Redfish BMCs in bmc.int.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BmcEvidence, BmcProbe } from '../src/bmc/bmc-prober.ts';
import { BmcHealthPoller, type BmcHealthPollerOptions, type PollerClock, type UnhealthyCause } from '../src/bmc/health-poller.ts';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class FakeClock implements PollerClock {
  t = 0;
  #next = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Runs every timer due within `ms`, in order, letting promises settle in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= end && (due === undefined || entry[1].at < due[1].at)) due = entry;
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.t = due[1].at;
      due[1].callback();
    }
    this.t = end;
    await flush();
  }
}

const ok: BmcEvidence = { reachable: true, powerState: 'on', health: 'OK' };
const dark: BmcEvidence = { reachable: false, error: 'connection failed (ECONNRESET)' };

/** A BMC fleet on the fake clock: each answer takes `latencyMs`, and a probe aborted in flight answers as the real prober does. */
function fleet(clock: FakeClock, latencyMs = 0) {
  const state = new Map<string, BmcEvidence>();
  const polls: { host: string; at: number }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const probe: BmcProbe = {
    probe(host, signal) {
      polls.push({ host, at: clock.t });
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise((resolve) => {
        const answer = (evidence: BmcEvidence): void => {
          inFlight--;
          signal?.removeEventListener('abort', onAbort);
          resolve(evidence);
        };
        const timer = clock.setTimeout(() => answer(state.get(host) ?? ok), latencyMs);
        const onAbort = (): void => {
          clock.clearTimeout(timer);
          answer({ reachable: false, error: 'aborted' });
        };
        signal?.addEventListener('abort', onAbort);
      });
    },
  };
  const at = (host: string): number[] => polls.filter((p) => p.host === host).map((p) => p.at);
  return { probe, state, polls, at, maxInFlight: () => maxInFlight };
}

function poller(probe: BmcProbe, hosts: readonly string[] | (() => readonly string[]), clock: FakeClock, over: Partial<BmcHealthPollerOptions> = {}) {
  const reports: { host: string; cause: UnhealthyCause }[] = [];
  const p = new BmcHealthPoller(probe, hosts, {
    intervalMs: 100,
    maxConcurrent: 8,
    backoff: { initialMs: 100, maxMs: 800 },
    clock,
    isExpectedOn: () => true,
    onUnhealthy: (host, _evidence, cause) => reports.push({ host, cause }),
    ...over,
  });
  return { poller: p, reports };
}

test('detector bmc-poller - hosts are spread over the interval and keep their slot', async () => {
  const clock = new FakeClock();
  const f = fleet(clock);
  const { poller: p } = poller(f.probe, ['a', 'b', 'c', 'd'], clock, { intervalMs: 1_000 });
  p.start();
  await clock.advance(2_999);
  await p.stop();
  assert.deepEqual(f.at('a'), [0, 1_000, 2_000]);
  assert.deepEqual(f.at('b'), [250, 1_250, 2_250]);
  assert.deepEqual(f.at('d'), [750, 1_750, 2_750]);
});

test('detector bmc-poller - never more than maxConcurrent in flight; late polls wait their turn', async () => {
  const clock = new FakeClock();
  const f = fleet(clock, 60);
  const hosts = Array.from({ length: 10 }, (_, i) => `h${i}`);
  const { poller: p } = poller(f.probe, hosts, clock, { maxConcurrent: 2 });
  p.start();
  await clock.advance(1_000);
  assert.equal(f.maxInFlight(), 2);
  assert.equal(p.stats().maxInFlight, 2);
  // 2 slots × 1000 ms / 60 ms per poll: the limit sets the pace, and every host gets its turn.
  assert.ok(f.polls.length >= 32 && f.polls.length <= 34, `${f.polls.length} polls`);
  for (const host of hosts) assert.ok(f.at(host).length >= 3, host);
  await p.stop();
});

test('detector bmc-poller - an unreachable BMC backs off exponentially up to the cap; one answer resets it', async () => {
  const clock = new FakeClock();
  const f = fleet(clock);
  f.state.set('dark', dark);
  const { poller: p } = poller(f.probe, ['dark'], clock);
  p.start();
  await clock.advance(2_300);
  // Waits 100 (never less than the interval), 200, 400, 800, then 800 again.
  assert.deepEqual(f.at('dark'), [0, 100, 300, 700, 1_500, 2_300]);
  assert.equal(p.stats().backingOff, 1);
  f.state.delete('dark');
  await clock.advance(3_100 - 2_300);
  assert.deepEqual(f.at('dark').slice(6), [3_100]);
  await clock.advance(300);
  assert.deepEqual(f.at('dark').slice(6), [3_100, 3_200, 3_300, 3_400]);
  assert.equal(p.stats().backingOff, 0);
  assert.equal(p.stats().errors, 6);
  await p.stop();
});

test('detector bmc-poller - each condition reported once until it clears; off only when expected on', async () => {
  const clock = new FakeClock();
  const f = fleet(clock);
  const expected = new Set(['a', 'b']);
  const { poller: p, reports } = poller(f.probe, ['a', 'b', 'spare'], clock, { isExpectedOn: (h) => expected.has(h) });
  f.state.set('a', { reachable: true, powerState: 'on', health: 'Critical' });
  f.state.set('b', { reachable: true, powerState: 'off', health: 'OK' });
  f.state.set('spare', { reachable: true, powerState: 'off', health: 'OK' });
  p.start();
  await clock.advance(500);
  assert.deepEqual(reports, [
    { host: 'a', cause: 'bmc-critical' },
    { host: 'b', cause: 'bmc-power-off' },
  ]);
  // An unknown health or an unanswered poll does not clear a condition; OK does.
  f.state.set('a', { reachable: true, powerState: 'on', health: 'unknown' });
  await clock.advance(200);
  f.state.set('a', dark);
  await clock.advance(200);
  f.state.set('a', { reachable: true, powerState: 'on', health: 'Critical' });
  await clock.advance(500);
  assert.equal(reports.length, 2);
  f.state.set('a', ok);
  await clock.advance(200);
  f.state.set('a', { reachable: true, powerState: 'on', health: 'Critical' });
  await clock.advance(200);
  assert.deepEqual(reports[2], { host: 'a', cause: 'bmc-critical' });
  assert.equal(p.stats().unhealthy, 3);
  await p.stop();
});

test('detector bmc-poller - a throwing callback does not drop the host from the schedule', async () => {
  const clock = new FakeClock();
  const f = fleet(clock);
  f.state.set('a', { reachable: true, powerState: 'off', health: 'Critical' });
  const p = new BmcHealthPoller(f.probe, ['a'], {
    intervalMs: 100,
    maxConcurrent: 1,
    backoff: { initialMs: 100, maxMs: 800 },
    clock,
    isExpectedOn: () => {
      throw new Error('boom');
    },
    onUnhealthy: () => {
      throw new Error('boom');
    },
  });
  p.start();
  await clock.advance(450);
  assert.deepEqual(f.at('a'), [0, 100, 200, 300, 400]);
  await p.stop();
});

test('detector bmc-poller - follows a changing host list; stop cancels polls in flight and silences callbacks', async () => {
  const clock = new FakeClock();
  const f = fleet(clock, 50);
  let hosts = ['a', 'b'];
  const { poller: p } = poller(f.probe, () => hosts, clock, { intervalMs: 100 });
  p.start();
  await clock.advance(150);
  hosts = ['b', 'c'];
  await clock.advance(250);
  assert.ok(f.at('c').length >= 2, 'c joined');
  assert.ok(f.at('a').every((t) => t < 200), 'a left');
  assert.equal(p.stats().hosts, 2);

  await p.stop();

  // A poll in flight when the poller stops is cancelled, and what it would have found is never reported.
  const g = fleet(clock, 50);
  g.state.set('x', { reachable: true, powerState: 'off', health: 'Critical' });
  const { poller: q, reports: late } = poller(g.probe, ['x'], clock);
  q.start();
  await clock.advance(10);
  assert.equal(q.stats().inFlight, 1);
  await q.stop();
  await clock.advance(1_000);
  assert.deepEqual(late, []);
  assert.deepEqual(g.at('x'), [clock.t - 1_010]);
  assert.equal(q.stats().inFlight, 0);
});
