/**
 * Issue #15: NATS was down for a moment when a rack burned; the detector
 * published its domain.failed once, logged TIMEOUT and never sent it again.
 * Here the server really goes away and comes back on the same port and store.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Events } from 'nats';
import { connectBus, ensureStreams, freePort, startNatsServer, streams, subjects, type Bus, type EmbeddedServer } from '@firebreak/shared';
import { sampleDomainFailed, sampleHostFailed, sampleHostRecovered, waitFor } from '@firebreak/shared/testing';
import { VerdictPublisher } from '../src/verdicts.ts';

/** Longer than a JetStream publish waits for its ack (5 s), so a single attempt cannot ride out the outage. */
const OUTAGE_MS = 6_000;

interface Line {
  level: 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string;
}

const lines: Line[] = [];
const logger = {
  info: (fields: object, msg: string) => void lines.push({ level: 'info', fields: fields as Record<string, unknown>, msg }),
  warn: (fields: object, msg: string) => void lines.push({ level: 'warn', fields: fields as Record<string, unknown>, msg }),
  error: (fields: object, msg: string) => void lines.push({ level: 'error', fields: fields as Record<string, unknown>, msg }),
};

let dir: string;
let port: number;
let nats: EmbeddedServer | undefined;
let bus: Bus;

before(async () => {
  // The harness's process server, given a fixed port and store so it can come back as the same server.
  dir = await mkdtemp(join(tmpdir(), 'fb-detector-verdicts-'));
  port = await freePort();
  nats = await startNatsServer({ port, dataDir: dir });
  bus = await connectBus({ url: nats.url, name: 'verdicts-test' });
  await ensureStreams(bus.jsm);
});

after(async () => {
  await bus?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function disconnected(): Promise<void> {
  for await (const s of bus.nc.status()) if (s.type === Events.Disconnect) return;
}

/** Every message the stream holds on a subject, oldest first. */
async function stored(subject: string): Promise<{ seq: number; msgId: string; body: Record<string, unknown> }[]> {
  const out: { seq: number; msgId: string; body: Record<string, unknown> }[] = [];
  const info = await bus.jsm.streams.info(streams.events);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const sm = await bus.jsm.streams.getMessage(streams.events, { seq }).catch(() => undefined);
    if (sm?.subject === subject) out.push({ seq, msgId: sm.header.get('Nats-Msg-Id'), body: sm.json<Record<string, unknown>>() });
  }
  return out;
}

test('detector verdicts - a verdict emitted while NATS is down is published once NATS is back, exactly once', { timeout: 60_000 }, async () => {
  const publisher = new VerdictPublisher(bus, logger as never, { backoff: { initialMs: 100, maxMs: 1_000 } });
  const verdict = { ...sampleDomainFailed(), detectedAt: Date.now() };
  const wentDown = disconnected();
  await nats?.stop();
  await wentDown;

  const outcome = publisher.domainFailed(verdict);
  // Nothing is lost by a caller that never awaits: no unhandled rejection, whatever happens.
  outcome.catch(() => undefined);
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  nats = await startNatsServer({ port, dataDir: dir });
  const backAt = Date.now();

  assert.equal(await outcome, 'published');
  // The client reconnects within 1.5 s; the verdict goes then, not after a stale attempt's 5 s timeout.
  assert.ok(Date.now() - backAt < 4_000, `published ${Date.now() - backAt} ms after NATS came back`);
  const onStream = await stored(subjects.domainFailed);
  assert.equal(onStream.length, 1, 'exactly one domain.failed on the stream');
  assert.deepEqual(onStream[0]?.body, verdict);
  assert.equal(onStream[0]?.msgId, `domain-failed-rack-${verdict.domain.id}-${verdict.epoch}`);

  const failedAttempts = lines.filter((l) => l.level === 'warn' && l.fields.verdict === 'domain.failed');
  assert.ok(failedAttempts.length >= 1, 'each failed attempt is logged at warn');
  assert.equal(failedAttempts[0]?.fields.attempt, 1);
  for (const l of failedAttempts) assert.equal(typeof l.fields.nextDelayMs, 'number');
  const published = lines.find((l) => l.level === 'info' && l.fields.verdict === 'domain.failed');
  assert.ok(
    typeof published?.fields.attempts === 'number' && published.fields.attempts > 1,
    'the publish that finally got through is logged at info with its attempts',
  );
  assert.equal(publisher.waiting, 0);
  publisher.stop();
});

test('detector verdicts - a host recovered during the outage does not overtake its failed', { timeout: 60_000 }, async () => {
  const publisher = new VerdictPublisher(bus, logger as never, { backoff: { initialMs: 100, maxMs: 1_000 } });
  const failed = { ...sampleHostFailed(), host: 'r2-h7', epoch: 7 };
  const recovered = { ...sampleHostRecovered(), host: 'r2-h7', epoch: 7 };
  const wentDown = disconnected();
  await nats?.stop();
  await wentDown;

  const outcomes = [publisher.hostFailed(failed), publisher.hostRecovered(recovered)];
  for (const o of outcomes) o.catch(() => undefined);
  assert.equal(publisher.waiting, 2);
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  nats = await startNatsServer({ port, dataDir: dir });

  assert.deepEqual(await Promise.all(outcomes), ['published', 'published']);
  const [f] = await stored(subjects.hostEvent('failed')).then((all) => all.filter((m) => m.body.host === 'r2-h7'));
  const [r] = await stored(subjects.hostEvent('recovered')).then((all) => all.filter((m) => m.body.host === 'r2-h7'));
  assert.ok(f && r, 'both on the stream');
  assert.ok(f.seq < r.seq, `failed (seq ${f.seq}) is stored before recovered (seq ${r.seq})`);
  publisher.stop();
});

test('detector verdicts - stopping while NATS is down gives the verdict up cleanly', { timeout: 30_000 }, async () => {
  const publisher = new VerdictPublisher(bus, logger as never, { backoff: { initialMs: 100, maxMs: 1_000 } });
  const wentDown = disconnected();
  await nats?.stop();
  await wentDown;
  const outcome = publisher.hostFailed({ ...sampleHostFailed(), host: 'r2-h8', epoch: 8 });
  await waitFor('the verdict waiting', () => publisher.waiting === 1);
  publisher.stop();
  // Resolves (never rejects) once the attempt in flight settles.
  assert.equal(await outcome, 'abandoned');
  assert.equal(publisher.waiting, 0);
  assert.ok(lines.some((l) => l.level === 'error' && l.fields.verdict === 'host.failed' && l.fields.subject === 'r2-h8'), 'the loss is logged');
  nats = await startNatsServer({ port, dataDir: dir });
});
