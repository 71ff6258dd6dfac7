import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { connectBus, RequestError, type Bus, type BusLogger, type Responder } from '../src/bus/index.ts';
import { FirebreakError, InvalidMessageError } from '../src/errors.ts';
import { ReadinessReport, type ReadinessCheck } from '../src/schemas/index.ts';
import { headers, subjects } from '../src/subjects.ts';
import { ATTR_MESSAGING_CONSUMER_GROUP_NAME, ATTR_MESSAGING_DESTINATION_NAME } from '../src/telemetry/semconv.ts';
import { startNats, waitFor, type TestServer } from '../src/testing/index.ts';
import { topics } from '../src/topics.ts';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let nats: TestServer;
let bus: Bus;
let client: Bus;
const responders: Responder[] = [];
const warnings: string[] = [];
const logger: BusLogger = { info: () => {}, warn: (_o, msg) => warnings.push(msg), error: (_o, msg) => warnings.push(msg) };

before(async () => {
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  nats = await startNats();
  // Responder and requester on separate connections, as a planner and the CLI are.
  bus = await connectBus({ url: nats.url, name: 'bus-request-responder', logger });
  client = await connectBus({ url: nats.url, name: 'bus-request-client' });
});

after(async () => {
  await Promise.all(responders.map((r) => r.stop()));
  await client?.close();
  await bus?.close();
  await nats?.stop();
});

const check = topics.readinessCheck;
const reportFor = (site: string, at = 1_700_000_000_000): ReadinessReport => ({ site, at, domains: [] });

async function serve(
  handler: (request: ReadinessCheck) => Promise<ReadinessReport | undefined>,
  queue?: string,
): Promise<Responder> {
  const responder = await bus.serve(check, ReadinessReport, handler, queue === undefined ? {} : { queue });
  responders.push(responder);
  return responder;
}

async function stopAll(): Promise<void> {
  await Promise.all(responders.splice(0).map((r) => r.stop()));
}

test('bus request - a request gets the validated reply of the responder', async () => {
  await serve(async (req) => reportFor(req.site));
  const reply = await client.request(check, { site: 'dc1' }, ReadinessReport, { timeoutMs: 10_000 });
  assert.deepEqual(reply, reportFor('dc1'));
  await stopAll();
});

test('bus request - an invalid request gets an error reply naming the field, and the responder keeps answering', async () => {
  const responder = await serve(async (req) => reportFor(req.site));

  // A client without our schema: raw NATS, no site.
  const raw = await client.nc.request(subjects.readinessCheck, new TextEncoder().encode(JSON.stringify({ domains: [] })), { timeout: 10_000 });
  assert.match(raw.headers?.get(headers.serviceError) ?? '', /invalid request on fb\.readiness-check: schema validation failed: site/);
  assert.equal(raw.headers?.get(headers.serviceErrorCode), '400');
  assert.match((raw.json() as { error: string }).error, /site/);

  const notJson = await client.nc.request(subjects.readinessCheck, new TextEncoder().encode('{ nope'), { timeout: 10_000 });
  assert.match(notJson.headers?.get(headers.serviceError) ?? '', /not JSON/);

  // The typed side refuses to send the bad message at all.
  await assert.rejects(client.request(check, { site: 'not a site!' }, ReadinessReport), (err: unknown) => {
    assert.ok(err instanceof InvalidMessageError);
    assert.match(err.message, /invalid message for fb\.readiness-check: site/);
    return true;
  });

  assert.deepEqual(await client.request(check, { site: 'dc2' }, ReadinessReport, { timeoutMs: 10_000 }), reportFor('dc2'));
  assert.deepEqual({ ...responder.counters }, { received: 3, invalid: 2, failed: 0, silent: 0 });
  await stopAll();
});

test('bus request - a handler that throws gets its message back to the requester, retryable or not', async () => {
  await serve(async (req) => {
    if (req.site === 'dc1') throw FirebreakError.permanent('unknown failure domain rack r99 in site dc1');
    throw new Error('inventory not loaded yet');
  });
  await assert.rejects(client.request(check, { site: 'dc1' }, ReadinessReport, { timeoutMs: 10_000 }), (err: unknown) => {
    assert.ok(err instanceof RequestError);
    assert.equal(err.message, 'unknown failure domain rack r99 in site dc1');
    assert.equal(err.retryable, false);
    return true;
  });
  await assert.rejects(client.request(check, { site: 'dc2' }, ReadinessReport, { timeoutMs: 10_000 }), (err: unknown) => {
    assert.ok(err instanceof RequestError);
    assert.equal(err.message, 'inventory not loaded yet');
    assert.equal(err.retryable, true);
    return true;
  });
  await stopAll();
});

test('bus request - a reply that fails its schema is never sent: the requester gets an error naming the field', async () => {
  const responder = await serve(async (req) => ({ ...reportFor(req.site), at: -5 }));
  await assert.rejects(client.request(check, { site: 'dc1' }, ReadinessReport, { timeoutMs: 10_000 }), (err: unknown) => {
    assert.ok(err instanceof RequestError);
    assert.match(err.message, /reply on fb\.readiness-check failed its schema: at:/);
    return true;
  });
  assert.equal(responder.counters.failed, 1);
  await stopAll();

  // A reply from a responder that does not validate (raw NATS) is refused on the requester's side.
  const sub = bus.nc.subscribe(subjects.readinessCheck, { callback: (_e, msg) => msg.respond(new TextEncoder().encode(JSON.stringify({ site: 'dc1' }))) });
  await bus.nc.flush();
  await assert.rejects(client.request(check, { site: 'dc1' }, ReadinessReport, { timeoutMs: 10_000 }), /invalid reply on fb\.readiness-check: schema validation failed: at/);
  sub.unsubscribe();
});

test('bus request - nobody answering is a timeout naming the subject and the wait; nobody listening says so at once', async () => {
  const silent = await serve(async () => undefined);
  const started = Date.now();
  await assert.rejects(client.request(check, { site: 'dc9' }, ReadinessReport, { timeoutMs: 300, responder: 'planner' }), (err: unknown) => {
    assert.ok(err instanceof RequestError);
    assert.equal(err.message, 'no planner answered on fb.readiness-check within 300 ms');
    assert.equal(err.retryable, true);
    return true;
  });
  assert.ok(Date.now() - started >= 250, 'waited out the timeout');
  assert.equal(silent.counters.silent, 1);
  await stopAll();

  await assert.rejects(client.request(check, { site: 'dc9' }, ReadinessReport, { timeoutMs: 10_000 }), /no responder answered on fb\.readiness-check: nothing listens on it/);
});

test('bus request - responders in one queue group answer each request once; one staying silent leaves it to another group', async () => {
  const answeredBy: string[] = [];
  const member = (name: string, site: string) => async (req: ReadinessCheck) => {
    if (req.site !== site) return undefined;
    answeredBy.push(name);
    return reportFor(site);
  };
  await serve(member('a1', 'dc1'), 'site-dc1');
  await serve(member('a2', 'dc1'), 'site-dc1');
  await serve(member('b1', 'dc2'), 'site-dc2');

  for (let i = 0; i < 6; i++) assert.equal((await client.request(check, { site: 'dc1' }, ReadinessReport, { timeoutMs: 10_000 })).site, 'dc1');
  assert.equal((await client.request(check, { site: 'dc2' }, ReadinessReport, { timeoutMs: 10_000 })).site, 'dc2');
  assert.equal(answeredBy.filter((n) => n !== 'b1').length, 6, 'each dc1 request answered once, by one member');
  assert.deepEqual(answeredBy.filter((n) => n === 'b1'), ['b1']);
  await stopAll();
});

test('bus request - the responder span is a child of the request span on the other connection', async () => {
  exporter.reset();
  let traceparent: string | undefined;
  await bus
    .serve(check, ReadinessReport, async (req, ctx) => {
      traceparent = ctx.headers[headers.traceparent];
      return reportFor(req.site);
    }, { queue: 'traced' })
    .then((r) => responders.push(r));
  await client.request(check, { site: 'dc1' }, ReadinessReport, { timeoutMs: 10_000 });

  const find = (name: string, kind: SpanKind) => exporter.getFinishedSpans().find((s) => s.name === `${name} ${subjects.readinessCheck}` && s.kind === kind);
  await waitFor('both spans', () => find('send', SpanKind.PRODUCER) !== undefined && find('process', SpanKind.CONSUMER) !== undefined);
  const requester = find('send', SpanKind.PRODUCER);
  const responder = find('process', SpanKind.CONSUMER);
  assert.ok(requester && responder);
  assert.equal(responder.spanContext().traceId, requester.spanContext().traceId);
  assert.equal(responder.parentSpanContext?.spanId, requester.spanContext().spanId);
  assert.equal(traceparent?.split('-')[2], requester.spanContext().spanId, 'traceparent header names the request span');
  assert.equal(responder.attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME], 'traced');
  assert.equal(requester.attributes[ATTR_MESSAGING_DESTINATION_NAME], subjects.readinessCheck);
  await stopAll();
});

test('bus request - a publish without a reply subject is dropped with one warning, not answered or crashed on', async () => {
  const responder = await serve(async (req) => reportFor(req.site));
  warnings.length = 0;
  for (let i = 0; i < 3; i++) client.nc.publish(subjects.readinessCheck, new TextEncoder().encode(JSON.stringify({ site: 'dc1' })));
  await client.nc.flush();
  await waitFor('three messages', () => responder.counters.received === 3);
  assert.equal(responder.counters.invalid, 3);
  assert.equal(warnings.filter((w) => w.startsWith('dropping a message with no reply subject')).length, 1);
  assert.equal((await client.request(check, { site: 'dc1' }, ReadinessReport, { timeoutMs: 10_000 })).site, 'dc1');
  await stopAll();
});

test('bus request - request and serve refuse JetStream topics', async () => {
  await assert.rejects(client.request(topics.hostFailed, {} as never, ReadinessReport), /core NATS/);
  await assert.rejects(bus.serve(topics.hostFailed, ReadinessReport, async () => undefined), /core NATS/);
});
