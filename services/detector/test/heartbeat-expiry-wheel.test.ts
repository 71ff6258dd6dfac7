import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpiryWheel } from '../src/heartbeat/expiry-wheel.ts';

const T0 = 1_700_000_000_003;

function fired(wheel: ExpiryWheel, now: number): number[] {
  const out: number[] = [];
  wheel.advance(now, (entry) => out.push(entry));
  return out.sort((a, b) => a - b);
}

test('detector heartbeat-expiry-wheel - fires each deadline once, not before it, at the end of its slot', () => {
  // T0 is 3 ms into a slot: deadline T0+100 sits in the slot ending at T0+107.
  const wheel = new ExpiryWheel(4, { slotMs: 10, horizonMs: 3_000 });
  wheel.advance(T0, () => assert.fail('nothing scheduled'));
  wheel.schedule(0, T0 + 100);
  wheel.schedule(1, T0 + 107);
  wheel.schedule(2, T0 + 3_000);
  assert.equal(wheel.size, 3);
  assert.deepEqual(fired(wheel, T0 + 99), []);
  assert.deepEqual(fired(wheel, T0 + 106), [], 'the slot has not ended');
  assert.deepEqual(fired(wheel, T0 + 107), [0, 1]);
  assert.deepEqual(fired(wheel, T0 + 3_006), []);
  assert.deepEqual(fired(wheel, T0 + 3_007), [2]);
  assert.deepEqual(fired(wheel, T0 + 9_000), []);
  assert.equal(wheel.size, 0);
});

test('detector heartbeat-expiry-wheel - moving an entry replaces its deadline; cancel removes it', () => {
  const wheel = new ExpiryWheel(3, { slotMs: 10, horizonMs: 1_000 });
  wheel.schedule(0, T0 + 50);
  wheel.schedule(1, T0 + 50);
  wheel.schedule(2, T0 + 50);
  wheel.schedule(1, T0 + 500);
  wheel.cancel(2);
  assert.equal(wheel.isScheduled(2), false);
  assert.equal(wheel.deadlineOf(1), T0 + 500);
  assert.deepEqual(fired(wheel, T0 + 100), [0]);
  assert.deepEqual(fired(wheel, T0 + 510), [1]);
});

test('detector heartbeat-expiry-wheel - a deadline several revolutions out waits for its own revolution', () => {
  const wheel = new ExpiryWheel(1, { slotMs: 10, horizonMs: 100 });
  assert.ok(wheel.slotCount * 10 < 5_000);
  wheel.advance(T0, () => undefined);
  wheel.schedule(0, T0 + 5_000);
  for (let t = T0; t < T0 + 5_000; t += 10) assert.deepEqual(fired(wheel, t), []);
  assert.deepEqual(fired(wheel, T0 + 5_010), [0]);
});

test('detector heartbeat-expiry-wheel - a deadline already behind the cursor fires on the next advance', () => {
  const wheel = new ExpiryWheel(1, { slotMs: 10, horizonMs: 100 });
  wheel.advance(T0 + 1_000, () => undefined);
  wheel.schedule(0, T0 + 990);
  assert.deepEqual(fired(wheel, T0 + 1_006), []);
  assert.deepEqual(fired(wheel, T0 + 1_007), [0], 'at the next slot boundary, not a revolution later');
});

test('detector heartbeat-expiry-wheel - after the clock steps back, new deadlines still fire on time', () => {
  const wheel = new ExpiryWheel(1, { slotMs: 10, horizonMs: 100 });
  wheel.advance(T0 + 1_000, () => undefined);
  wheel.advance(T0 + 500, () => assert.fail('nothing scheduled'));
  wheel.schedule(0, T0 + 600);
  assert.deepEqual(fired(wheel, T0 + 599), []);
  assert.deepEqual(fired(wheel, T0 + 607), [0]);
});

test('detector heartbeat-expiry-wheel - a throwing callback neither stops the others nor corrupts the wheel', () => {
  const wheel = new ExpiryWheel(3, { slotMs: 10, horizonMs: 100 });
  for (let i = 0; i < 3; i++) wheel.schedule(i, T0 + 20);
  const seen: number[] = [];
  assert.throws(
    () =>
      wheel.advance(T0 + 30, (entry) => {
        seen.push(entry);
        if (entry === 1) throw new Error('boom');
      }),
    /boom/,
  );
  assert.deepEqual(seen.sort(), [0, 1, 2]);
  assert.equal(wheel.size, 0);
  wheel.schedule(1, T0 + 60);
  assert.deepEqual(fired(wheel, T0 + 70), [1]);
});

test('detector heartbeat-expiry-wheel - a callback may reschedule an entry due in the same slot', () => {
  const wheel = new ExpiryWheel(2, { slotMs: 10, horizonMs: 100 });
  wheel.schedule(0, T0 + 20);
  wheel.schedule(1, T0 + 20);
  const seen: number[] = [];
  wheel.advance(T0 + 30, (entry) => {
    seen.push(entry);
    wheel.schedule(entry === 0 ? 1 : 0, T0 + 80);
  });
  assert.equal(seen.length, 1, 'the rescheduled one did not fire');
  assert.equal(wheel.size, 1);
});
