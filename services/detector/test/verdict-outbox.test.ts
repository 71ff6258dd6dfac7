import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidMessageError } from '@firebreak/shared';
import { VerdictOutbox, type OutboxItem, type OutboxOutcome } from '../src/verdict-outbox.ts';

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

/**
 * A JetStream that can be down (every attempt fails as a real one does, with
 * a timeout), can lose an ack after storing, and dedupes by id like the stream.
 */
function fakeStream() {
  const stored: string[] = [];
  const attempts: string[] = [];
  const state = { down: false, latencyMs: 1 };
  const lines: Line[] = [];
  const log = (level: string) => (fields: object, msg: string) => void lines.push({ level, fields: fields as Record<string, unknown>, msg });
  const logger = { info: log('info'), warn: log('warn'), error: log('error') };
  const item = (id: string, keys: string[], kind = 'host.failed'): OutboxItem => ({
    kind,
    subject: id,
    keys,
    send: async () => {
      attempts.push(id);
      await new Promise((r) => setTimeout(r, state.latencyMs));
      if (state.down) throw Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' });
      const duplicate = stored.includes(id);
      if (!duplicate) stored.push(id);
      return { duplicate };
    },
  });
  return { stored, attempts, state, lines, logger, item };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('detector verdict outbox - retries with capped exponential backoff until the stream takes it', async () => {
  const s = fakeStream();
  const outbox = new VerdictOutbox({ logger: s.logger, backoff: { initialMs: 10, maxMs: 40 } });
  s.state.down = true;
  const outcome = outbox.add(s.item('r2-h1', ['r2-h1']));
  await sleep(200);
  assert.equal(outbox.waiting, 1);
  const warns = s.lines.filter((l) => l.level === 'warn');
  assert.ok(warns.length >= 4, `${warns.length} attempts in 200 ms`);
  assert.deepEqual(
    warns.slice(0, 5).map((l) => [l.fields.attempt, l.fields.nextDelayMs]),
    [
      [1, 10],
      [2, 20],
      [3, 40],
      [4, 40],
      [5, 40],
    ].slice(0, Math.min(5, warns.length)),
  );
  s.state.down = false;
  assert.equal(await outcome, 'published');
  assert.deepEqual(s.stored, ['r2-h1']);
  assert.equal(outbox.waiting, 0);
  const done = s.lines.at(-1);
  assert.equal(done?.level, 'info');
  assert.equal(done?.fields.attempts, warns.length + 1);
  outbox.stop();
});

test('detector verdict outbox - verdicts about one host keep their order; others do not wait for them', async () => {
  const s = fakeStream();
  const outbox = new VerdictOutbox({ logger: s.logger, backoff: { initialMs: 5, maxMs: 5 } });
  s.state.down = true;
  const failed = outbox.add(s.item('failed r1-h1', ['r1-h1']));
  const recovered = outbox.add(s.item('recovered r1-h1', ['r1-h1']));
  await sleep(30);
  // While the stream is down only the oldest verdict probes; the recovered never went out before its failed.
  assert.ok(!s.attempts.includes('recovered r1-h1'));
  s.state.down = false;
  assert.deepEqual(await Promise.all([failed, recovered]), ['published', 'published']);
  assert.deepEqual(s.stored, ['failed r1-h1', 'recovered r1-h1']);

  // Healthy stream: a slow verdict for one host does not hold up another host's.
  s.state.latencyMs = 30;
  const slow = outbox.add(s.item('failed r1-h2', ['r1-h2']));
  s.state.latencyMs = 1;
  const fast = outbox.add(s.item('failed r1-h3', ['r1-h3']));
  await fast;
  assert.equal(outbox.waiting, 1, 'the other host went out while the first was in flight');
  await slow;
  outbox.stop();
});

test('detector verdict outbox - a domain verdict holds back later verdicts of every host it names', async () => {
  const s = fakeStream();
  const outbox = new VerdictOutbox({ logger: s.logger, backoff: { initialMs: 5, maxMs: 5 } });
  s.state.latencyMs = 20;
  const domain = outbox.add(s.item('domain r2', ['domain:rack:r2', 'r2-h1', 'r2-h2'], 'domain.failed'));
  s.state.latencyMs = 1;
  const recovered = outbox.add(s.item('recovered r2-h2', ['r2-h2']));
  await Promise.all([domain, recovered]);
  assert.deepEqual(s.stored, ['domain r2', 'recovered r2-h2']);
  outbox.stop();
});

test('detector verdict outbox - an ack lost after the stream stored it: the retry is a duplicate, still one copy', async () => {
  const s = fakeStream();
  const outbox = new VerdictOutbox({ logger: s.logger, backoff: { initialMs: 5, maxMs: 5 } });
  let lose = true;
  const outcome = outbox.add({
    ...s.item('r3-h1', ['r3-h1']),
    send: async () => {
      if (!s.stored.includes('r3-h1')) s.stored.push('r3-h1');
      if (lose) {
        lose = false;
        throw new Error('TIMEOUT');
      }
      return { duplicate: true };
    },
  });
  assert.equal(await outcome, 'published');
  assert.deepEqual(s.stored, ['r3-h1']);
  outbox.stop();
});

test('detector verdict outbox - on reconnect a verdict goes at once, beside an attempt still waiting out its timeout', async () => {
  const s = fakeStream();
  // A long backoff: only the reconnect can explain a quick publish.
  const outbox = new VerdictOutbox({ logger: s.logger, backoff: { initialMs: 60_000, maxMs: 60_000 } });
  let hung: ((err: Error) => void) | undefined;
  let calls = 0;
  const outcome = outbox.add({
    ...s.item('r3-h2', ['r3-h2']),
    send: async () => {
      calls++;
      // The first attempt went out while the connection was down: it hangs until its timeout.
      if (calls === 1) return new Promise((_, reject) => (hung = reject));
      s.stored.push('r3-h2');
      return { duplicate: false };
    },
  });
  const later = outbox.add(s.item('recovered r3-h2', ['r3-h2']));
  await sleep(10);
  assert.equal(calls, 1);
  outbox.reconnected();
  assert.equal(await outcome, 'published');
  assert.equal(await later, 'published');
  assert.deepEqual(s.stored, ['r3-h2', 'recovered r3-h2']);
  // The old attempt times out at last: nothing changes.
  hung?.(new Error('TIMEOUT'));
  await sleep(5);
  assert.equal(outbox.waiting, 0);
  outbox.stop();
});

test('detector verdict outbox - a verdict that fails its schema is dropped, not retried forever, and does not block its host', async () => {
  const s = fakeStream();
  const outbox = new VerdictOutbox({ logger: s.logger, backoff: { initialMs: 5, maxMs: 5 } });
  let calls = 0;
  const bad = outbox.add({
    ...s.item('bad', ['r1-h4']),
    send: () => {
      calls++;
      throw new InvalidMessageError('invalid message for fb.evt.host.failed: epoch: expected a number', undefined);
    },
  });
  const next = outbox.add(s.item('good', ['r1-h4']));
  assert.deepEqual(await Promise.all([bad, next]), ['rejected', 'published']);
  assert.equal(calls, 1);
  assert.ok(s.lines.some((l) => l.level === 'error' && l.fields.subject === 'bad'));
  outbox.stop();
});

test('detector verdict outbox - stop gives up what waits, logs each, and never rejects', async () => {
  const s = fakeStream();
  const outbox = new VerdictOutbox({ logger: s.logger, backoff: { initialMs: 50, maxMs: 50 } });
  s.state.down = true;
  const outcomes: Promise<OutboxOutcome>[] = [outbox.add(s.item('a', ['a'])), outbox.add(s.item('b', ['b']))];
  await sleep(10);
  outbox.stop();
  assert.deepEqual(await Promise.all(outcomes), ['abandoned', 'abandoned']);
  assert.equal(outbox.waiting, 0);
  assert.deepEqual(
    s.lines.filter((l) => l.level === 'error').map((l) => l.fields.subject).sort(),
    ['a', 'b'],
  );
  assert.equal(await outbox.add(s.item('c', ['c'])), 'abandoned', 'nothing is taken after stop');
  const attemptsAtStop = s.attempts.length;
  await sleep(80);
  assert.equal(s.attempts.length, attemptsAtStop, 'no retry after stop');
});
