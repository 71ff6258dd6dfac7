import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { RetentionPolicy, nanos } from 'nats';
import { connectBus, ensureStreams, type Bus, type BusLogger, type ConsumerHandle, type MessageContext } from '../src/bus/index.ts';
import { FirebreakError, InvalidMessageError } from '../src/errors.ts';
import { DeadLetter, type CommandResult } from '../src/schemas/index.ts';
import { headers, streamSubjects, streams, subjects } from '../src/subjects.ts';
import { ATTR_MESSAGING_DESTINATION_NAME, ATTR_MESSAGING_SYSTEM } from '../src/telemetry/semconv.ts';
import { startNats, waitFor, type TestServer } from '../src/testing/index.ts';
import { sampleCommandResult, sampleHeartbeat } from '../src/testing/samples.ts';
import { topics } from '../src/topics.ts';

const exporter = new InMemorySpanExporter();
let nats: TestServer;
let bus: Bus;
const handles: ConsumerHandle[] = [];

before(async () => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  nats = await startNats();
  bus = await connectBus({ url: nats.url, name: 'bus-test' });
  await ensureStreams(bus.jsm);
});

after(async () => {
  await Promise.all(handles.map((h) => h.stop()));
  await bus?.close();
  await nats?.stop();
});

/** Every test works on its own incident id, so its subjects and durable are its own. */
let nextId = 0;
function incident(): { id: string; result: (command: string) => ReturnType<typeof topics.result> } {
  const id = `inc-${++nextId}`;
  return { id, result: (command) => topics.result(id, command) };
}

async function consumeResults(
  incidentId: string,
  handler: (msg: CommandResult, ctx: MessageContext) => Promise<void>,
  options: { maxDeliver?: number; backoffMs?: number[] } = {},
): Promise<string> {
  const durable = `results-${incidentId}`;
  handles.push(await bus.consume({ topic: topics.resultsOf(incidentId), durable, handler, ackWaitMs: 1_000, ...options }));
  return durable;
}

async function deadLetterOf(subject: string): Promise<{ envelope: DeadLetter; reasonHeader: string }> {
  let found: { envelope: DeadLetter; reasonHeader: string } | undefined;
  await waitFor(`a dead letter for ${subject}`, async () => {
    try {
      const sm = await bus.jsm.streams.getMessage(streams.deadLetters, { last_by_subj: subjects.deadLetter(subject) });
      found = { envelope: DeadLetter.parse(sm.json()), reasonHeader: sm.header.get(headers.deadLetterReason) };
      return true;
    } catch {
      return false;
    }
  });
  assert.ok(found);
  return found;
}

async function hasDeadLetter(subject: string): Promise<boolean> {
  try {
    await bus.jsm.streams.getMessage(streams.deadLetters, { last_by_subj: subjects.deadLetter(subject) });
    return true;
  } catch {
    return false;
  }
}

test('bus - ensureStreams is idempotent, concurrent-safe, and restores drifted settings', async () => {
  const other = await connectBus({ url: nats.url, name: 'bus-test-other' });
  try {
    await bus.jsm.streams.update(streams.deadLetters, { max_age: nanos(3_600_000) });
    await Promise.all([ensureStreams(bus.jsm), ensureStreams(other.jsm)]);
    await ensureStreams(bus.jsm);
  } finally {
    await other.close();
  }
  for (const name of Object.values(streams)) {
    const { config } = await bus.jsm.streams.info(name);
    assert.deepEqual(config.subjects, streamSubjects[name]);
    assert.equal(config.retention, name === streams.commands ? RetentionPolicy.Workqueue : RetentionPolicy.Limits, name);
    assert.equal(config.duplicate_window, nanos(120_000), name);
  }
  const dlq = await bus.jsm.streams.info(streams.deadLetters);
  assert.equal(dlq.config.max_age, nanos(30 * 24 * 3_600_000), 'drifted max_age is put back');
});

test('bus - a message published twice with the same msg id is delivered once', async () => {
  const inc = incident();
  const seen: string[] = [];
  await consumeResults(inc.id, async (msg) => {
    seen.push(msg.commandId);
  });

  const first = { ...sampleCommandResult(), incidentId: inc.id, commandId: 'c1' };
  const a = await bus.publish(inc.result('c1'), first, { msgId: `${inc.id}-c1` });
  const b = await bus.publish(inc.result('c1'), first, { msgId: `${inc.id}-c1` });
  assert.equal(a.duplicate, false);
  assert.equal(b.duplicate, true);
  assert.equal(b.seq, a.seq);

  // A later message arriving proves the consumer has passed any second copy.
  await bus.publish(inc.result('c2'), { ...first, commandId: 'c2' });
  await waitFor('the later message', () => seen.includes('c2'));
  assert.deepEqual(seen, ['c1', 'c2']);
});

test('bus - publishing an invalid message throws naming the field and sends nothing', async () => {
  const inc = incident();
  const topic = inc.result('c1');
  const bad = { ...sampleCommandResult(), attempts: -1 };
  await assert.rejects(bus.publish(topic, bad), (err: unknown) => {
    assert.ok(err instanceof InvalidMessageError);
    assert.equal(err.retryable, false);
    assert.match(err.message, /attempts/);
    return true;
  });
  await assert.rejects(bus.jsm.streams.getMessage(streams.results, { last_by_subj: topic.subject }), /no message found/);

  const heartbeat = { ...sampleHeartbeat(), host: 'r2.h1' };
  assert.throws(() => bus.publishCore(topics.heartbeat('site1', 'r2', 'h1'), heartbeat), /host/);
  assert.throws(() => bus.publishCore(topic, sampleCommandResult()), /use publish\(\)/);
  await assert.rejects(bus.publish(topics.results, sampleCommandResult()), /pattern/);
});

test('bus - invalid messages are dead-lettered with the reason while the consumer goes on', async () => {
  const inc = incident();
  const handled: string[] = [];
  const durable = await consumeResults(inc.id, async (msg) => {
    handled.push(msg.commandId);
  });

  const notJson = inc.result('bad-json').subject;
  const wrongShape = inc.result('bad-shape').subject;
  bus.nc.publish(notJson, 'not json {');
  await bus.js.publish(wrongShape, JSON.stringify({ ...sampleCommandResult(), attempts: 'three' }), { msgID: 'raw-1' });
  await bus.publish(inc.result('good'), { ...sampleCommandResult(), commandId: 'good' });

  await waitFor('the valid message after the invalid ones', () => handled.includes('good'));
  assert.deepEqual(handled, ['good']);

  const json = await deadLetterOf(notJson);
  assert.match(json.envelope.reason, /not JSON/);
  assert.equal(Buffer.from(json.envelope.payloadBase64, 'base64').toString(), 'not json {');
  assert.equal(json.envelope.originalSubject, notJson);

  const shape = await deadLetterOf(wrongShape);
  assert.match(shape.envelope.reason, /attempts/);
  assert.match(shape.reasonHeader, /attempts/);
  assert.deepEqual(
    shape.envelope.issues.map((i) => i.path),
    ['attempts'],
  );
  assert.equal(shape.envelope.originalMsgId, 'raw-1');
  assert.equal(shape.envelope.stream, streams.results);
  assert.equal(shape.envelope.consumer, durable);
  assert.equal(shape.envelope.deliveries, 1);

  const info = await bus.jsm.consumers.info(streams.results, durable);
  assert.equal(info.num_ack_pending, 0, 'invalid originals are settled, not left to redeliver');
  assert.equal(info.num_redelivered, 0);
});

test('bus - a bad message near the 1 MiB limit is dead-lettered with a truncated copy, its size and hash, and the queue moves on', async () => {
  const inc = incident();
  const handled: string[] = [];
  const durable = await consumeResults(inc.id, async (msg) => {
    handled.push(msg.commandId);
  });
  // Not JSON, and as large as the server takes: its base64 copy alone would be a third over the limit.
  const maxPayload = bus.nc.info?.max_payload ?? 1_048_576;
  const huge = Buffer.alloc(maxPayload - 4_096, 'x');
  const subject = inc.result('huge').subject;
  await bus.js.publish(subject, huge, { msgID: 'huge-1' });
  await bus.publish(inc.result('after-huge'), { ...sampleCommandResult(), commandId: 'after-huge' });

  await waitFor('the valid message after the huge one', () => handled.includes('after-huge'), 10_000);
  const { envelope } = await deadLetterOf(subject);
  assert.match(envelope.reason, /not JSON/);
  assert.equal(envelope.payloadBytes, huge.length);
  assert.equal(envelope.payloadSha256, createHash('sha256').update(huge).digest('hex'));
  assert.equal(envelope.payloadTruncated, true);
  const kept = Buffer.from(envelope.payloadBase64, 'base64');
  assert.ok(kept.length > 0 && kept.length < huge.length && huge.subarray(0, kept.length).equals(kept), 'the copy is the payload\'s beginning');
  assert.ok(typeof envelope.originalSeq === 'number' && envelope.originalSeq > 0);
  const info = await bus.jsm.consumers.info(streams.results, durable);
  assert.equal(info.num_ack_pending, 0, 'the original is settled, not left to block');
});

test('bus - a handler that throws gets the message redelivered and succeeds later', async () => {
  const inc = incident();
  const deliveries: number[] = [];
  let done = false;
  await consumeResults(
    inc.id,
    async (_msg, ctx) => {
      deliveries.push(ctx.deliveries);
      if (ctx.deliveries < 3) throw new Error('executor busy');
      done = true;
    },
    { backoffMs: [100, 150] },
  );
  const topic = inc.result('c1');
  const started = Date.now();
  await bus.publish(topic, sampleCommandResult());
  await waitFor('success on the third delivery', () => done);
  assert.deepEqual(deliveries, [1, 2, 3]);
  assert.ok(Date.now() - started >= 250, 'naks wait the backoff');
  assert.equal(await hasDeadLetter(topic.subject), false);
});

test('bus - after maxDeliver failing deliveries the message is dead-lettered with the last error', async () => {
  const inc = incident();
  let calls = 0;
  const durable = await consumeResults(
    inc.id,
    async () => {
      calls++;
      throw new Error(`driver timeout #${calls}`);
    },
    { maxDeliver: 3, backoffMs: [50] },
  );
  const topic = inc.result('c1');
  await bus.publish(topic, sampleCommandResult());

  const { envelope } = await deadLetterOf(topic.subject);
  assert.equal(envelope.reason, 'max deliveries (3) exceeded: driver timeout #3');
  assert.equal(envelope.deliveries, 3);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(calls, 3, 'no delivery after the dead-lettering');
  const info = await bus.jsm.consumers.info(streams.results, durable);
  assert.equal(info.num_ack_pending, 0);
  assert.equal(info.num_pending, 0);
});

test('bus - a non-retryable FirebreakError is dead-lettered on the first failure', async () => {
  const inc = incident();
  let calls = 0;
  await consumeResults(inc.id, async () => {
    calls++;
    throw FirebreakError.permanent('unknown host r9-h1');
  });
  const topic = inc.result('c1');
  await bus.publish(topic, sampleCommandResult());

  const { envelope } = await deadLetterOf(topic.subject);
  assert.match(envelope.reason, /non-retryable.*unknown host r9-h1/);
  assert.equal(envelope.deliveries, 1);
  assert.equal(calls, 1);
});

test('bus - the consume span is a child of the publish span on the other side', async () => {
  const inc = incident();
  let traceparent: string | undefined;
  await consumeResults(inc.id, async (_msg, ctx) => {
    traceparent = ctx.headers[headers.traceparent];
  });
  const topic = inc.result('c1');
  await bus.publish(topic, sampleCommandResult());

  const find = (name: string, kind: SpanKind) => exporter.getFinishedSpans().find((s) => s.name === name && s.kind === kind);
  await waitFor('the consumer span', () => find(`process ${topic.subject}`, SpanKind.CONSUMER) !== undefined);
  const producer = find(`send ${topic.subject}`, SpanKind.PRODUCER);
  const consumer = find(`process ${topic.subject}`, SpanKind.CONSUMER);
  assert.ok(producer && consumer);

  assert.equal(consumer.spanContext().traceId, producer.spanContext().traceId);
  assert.equal(consumer.parentSpanContext?.spanId, producer.spanContext().spanId);
  assert.equal(traceparent?.split('-')[2], producer.spanContext().spanId, 'traceparent header names the producer span');
  for (const span of [producer, consumer]) {
    assert.equal(span.attributes[ATTR_MESSAGING_SYSTEM], 'nats');
    assert.equal(span.attributes[ATTR_MESSAGING_DESTINATION_NAME], topic.subject);
  }
});

test('bus - core subscriptions count and drop invalid heartbeats, warning once per subject', async () => {
  const warnings: string[] = [];
  const logger: BusLogger = { info: () => {}, warn: (_o, msg) => warnings.push(msg), error: () => {} };
  const coreBus = await connectBus({ url: nats.url, name: 'bus-test-core', logger });
  try {
    const got: number[] = [];
    const sub = await coreBus.subscribeCore(topics.heartbeats, (hb) => {
      got.push(hb.seq);
    });
    const subject = subjects.heartbeat('site1', 'r2', 'r2-h9');
    for (let i = 0; i < 3; i++) bus.nc.publish(subject, JSON.stringify({ host: 'r2-h9', seq: 'x' }));
    bus.publishCore(topics.heartbeat('site1', 'r2', 'r2-h1'), { ...sampleHeartbeat(), seq: 1 });
    bus.publishCore(topics.heartbeat('site1', 'r2', 'r2-h1'), { ...sampleHeartbeat(), seq: 2 });
    await bus.nc.flush();

    await waitFor('five heartbeats', () => sub.counters.received === 5);
    assert.deepEqual({ ...sub.counters }, { received: 5, invalid: 3, failed: 0 });
    assert.deepEqual(got, [1, 2]);
    assert.equal(warnings.filter((w) => w.startsWith('dropping invalid message')).length, 1);
    assert.equal(await hasDeadLetter(subject), false, 'no dead letter per heartbeat');
    await sub.stop();
  } finally {
    await coreBus.close();
  }
});
