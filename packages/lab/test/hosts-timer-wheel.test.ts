import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimerWheel, type WheelClock } from '../src/hosts/timer-wheel.ts';

/** Manual time; counts pending timers so a test can see the wheel never holds more than one. */
class FakeClock implements WheelClock {
  t = 0;
  maxPending = 0;
  /** Timers fire this much after their due time, as on a busy event loop. */
  lagMs = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;

  get pending(): number {
    return this.timers.size;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms + this.lagMs, fn });
    this.maxPending = Math.max(this.maxPending, this.timers.size);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

test('hosts timer wheel - spreads 1,000 jobs evenly across the period with one timer', () => {
  const clock = new FakeClock();
  const fired = new Map<number, number[]>();
  const wheel = new TimerWheel<number>((job) => fired.set(job, [...(fired.get(job) ?? []), clock.now()]), { periodMs: 1_000, slotMs: 10, clock });
  for (let job = 0; job < 1_000; job++) wheel.add(job);

  assert.equal(wheel.slotCount, 100);
  assert.deepEqual(wheel.slotSizes(), Array(100).fill(10), 'ten jobs in every 10 ms slot');
  clock.advance(1_999);

  const perWindow = new Map<number, number>();
  for (const times of fired.values()) {
    assert.equal(times.length, 2, 'each job runs once per period');
    const [first = 0, second = 0] = times;
    assert.equal(second - first, 1_000);
    perWindow.set(Math.floor(first / 10), (perWindow.get(Math.floor(first / 10)) ?? 0) + 1);
  }
  assert.equal(fired.size, 1_000);
  assert.deepEqual([...perWindow.values()], Array(100).fill(10), 'sends spread across the second, ten per 10 ms');
  assert.equal(clock.maxPending, 1, 'one timer for the whole wheel');
  wheel.stop();
  assert.equal(clock.pending, 0);
});

test('hosts timer wheel - removed jobs stop at once and the timer goes with the last one', () => {
  const clock = new FakeClock();
  const runs = new Map<number, number>();
  const wheel = new TimerWheel<number>((job) => runs.set(job, (runs.get(job) ?? 0) + 1), { periodMs: 100, slotMs: 10, clock });
  const entries = Array.from({ length: 50 }, (_, job) => wheel.add(job));
  clock.advance(99);
  for (const entry of entries.filter((e) => e.item % 2 === 0)) wheel.remove(entry);
  assert.equal(wheel.size, 25);
  clock.advance(200);
  for (const [job, n] of runs) assert.equal(n, job % 2 === 0 ? 1 : 3, `job ${job}`);

  for (const entry of entries) wheel.remove(entry);
  assert.equal(wheel.size, 0);
  assert.equal(wheel.armed, false);
  assert.equal(clock.pending, 0, 'an empty wheel holds no timer');
  wheel.add(99);
  assert.equal(wheel.armed, true);
  wheel.stop();
});

test('hosts timer wheel - a job may remove itself while its slot runs', () => {
  const clock = new FakeClock();
  const runs: number[] = [];
  const entries: ReturnType<TimerWheel<number>['add']>[] = [];
  const wheel = new TimerWheel<number>(
    (job) => {
      runs.push(job);
      const entry = entries[job];
      if (job % 3 === 0 && entry) wheel.remove(entry);
    },
    { periodMs: 10, slotMs: 10, clock },
  );
  for (let job = 0; job < 9; job++) entries.push(wheel.add(job));
  clock.advance(19);
  assert.deepEqual(
    [...runs].sort((a, b) => a - b),
    [0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8],
  );
  wheel.stop();
});

test('hosts timer wheel - reports lateness against the schedule', () => {
  const clock = new FakeClock();
  clock.lagMs = 3;
  const wheel = new TimerWheel<number>(() => (clock.t += 0.01), { periodMs: 1_000, slotMs: 10, clock });
  for (let job = 0; job < 1_000; job++) wheel.add(job);
  clock.advance(2_000);
  const late = wheel.lateness();
  assert.equal(late.samples, 2_000);
  assert.ok(late.p50Ms >= 3 && late.p50Ms <= 3.2, `p50 ${late.p50Ms}`);
  assert.ok(late.p99Ms >= late.p50Ms && late.maxMs <= 3.2, `p99 ${late.p99Ms} max ${late.maxMs}`);
  wheel.resetLateness();
  assert.equal(wheel.lateness().samples, 0);
  wheel.stop();
});

test('hosts timer wheel - after a stall each job runs once, late, not in a burst', () => {
  const clock = new FakeClock();
  const runs = new Map<number, number>();
  const wheel = new TimerWheel<number>((job) => runs.set(job, (runs.get(job) ?? 0) + 1), { periodMs: 100, slotMs: 10, clock });
  for (let job = 0; job < 10; job++) wheel.add(job);
  clock.t = 350; // the event loop was blocked for 3.5 periods
  clock.advance(0);
  assert.deepEqual([...runs.values()], Array(10).fill(1));
  assert.ok(wheel.lateness().maxMs >= 250);
  clock.advance(100);
  assert.deepEqual([...runs.values()], Array(10).fill(2), 'back on schedule afterwards');
  wheel.stop();
});

test('hosts timer wheel - refuses a period that is not a whole number of slots', () => {
  assert.throws(() => new TimerWheel(() => {}, { periodMs: 1_000, slotMs: 7 }), /multiple of slotMs/);
});
