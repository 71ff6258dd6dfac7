import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createLogger, redactUrl } from '../src/logger.ts';
import { startTelemetry } from '../src/telemetry/sdk.ts';

type Line = Record<string, unknown>;

/** A pino destination that keeps every line, parsed. */
function capture(): { lines: Line[]; destination: { write(line: string): void } } {
  const lines: Line[] = [];
  return { lines, destination: { write: (line) => void lines.push(JSON.parse(line) as Line) } };
}

test('logger - writes JSON with service, instance and a string level', () => {
  const { lines, destination } = capture();
  createLogger('detector', { instance: 'det-1', destination }).info({ host: 'r2-h07' }, 'host failed');
  assert.equal(lines.length, 1);
  assert.deepEqual(
    { service: lines[0]?.service, instance: lines[0]?.instance, level: lines[0]?.level, msg: lines[0]?.msg, host: lines[0]?.host },
    { service: 'detector', instance: 'det-1', level: 'info', msg: 'host failed', host: 'r2-h07' },
  );
  assert.equal('trace_id' in (lines[0] ?? {}), false, 'no span is active');
});

test('logger - honours the level', () => {
  const { lines, destination } = capture();
  const log = createLogger('planner', { level: 'warn', destination });
  log.info('quiet');
  log.warn('loud');
  assert.deepEqual(
    lines.map((line) => line.msg),
    ['loud'],
  );
});

test('logger - censors secret fields', () => {
  const { lines, destination } = capture();
  createLogger('executor', { destination }).info(
    {
      password: 'p1',
      token: 't1',
      bmc: { address: '10.0.0.5', password: 'p2', credentials: { user: 'root', pass: 'p3' } },
      headers: { authorization: 'Basic cm9vdDpwNA==', 'x-auth-token': 't2', accept: 'application/json' },
      request: { headers: { 'X-Auth-Token': 't3' } },
    },
    'redfish call',
  );
  const out = JSON.stringify(lines[0]);
  for (const secret of ['p1', 'p2', 'p3', 't1', 't2', 't3', 'cm9vdDpwNA']) {
    assert.equal(out.includes(secret), false, `"${secret}" leaked: ${out}`);
  }
  assert.match(out, /"address":"10\.0\.0\.5"/);
  assert.match(out, /"accept":"application\/json"/);
  assert.match(out, /"password":"\[REDACTED\]"/);
});

test('logger - strips URL credentials from fields, messages, errors and bindings', () => {
  const { lines, destination } = capture();
  const log = createLogger('planner', { destination }).child({ redis: 'redis://default:b1nd@127.0.0.1:6379' });
  log.info({ nats: { servers: ['nats://fb:f1eld@127.0.0.1:4222'] } }, 'connecting to %s', 'nats://tok3n@127.0.0.1:4222');
  log.error(new Error('ECONNREFUSED rediss://u:3rr0r@127.0.0.1:6380'));
  const out = lines.map((line) => JSON.stringify(line)).join('\n');
  for (const secret of ['b1nd', 'f1eld', 'tok3n', '3rr0r']) {
    assert.equal(out.includes(secret), false, `"${secret}" leaked: ${out}`);
  }
  assert.match(out, /redis:\/\/\[REDACTED\]@127\.0\.0\.1:6379/);
  assert.match(out, /connecting to nats:\/\/\[REDACTED\]@127\.0\.0\.1:4222/);
});

test('logger - redactUrl keeps URLs without credentials intact', () => {
  assert.equal(redactUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  assert.equal(redactUrl('https://bmc/redfish/v1/Systems/1?x=a@b'), 'https://bmc/redfish/v1/Systems/1?x=a@b');
  assert.equal(redactUrl('redis://:p@ss@h:6379/0'), 'redis://[REDACTED]@h:6379/0');
  assert.equal(redactUrl('a=nats://u:p@h b=redis://h'), 'a=nats://[REDACTED]@h b=redis://h');
});

test('logger - includes trace_id and span_id inside an active span', async () => {
  // Spans need a real SDK and context manager to exist; exporting them is beside the point.
  const telemetry = startTelemetry({ serviceName: 'logger-test', spanProcessors: [new NoopSpanProcessor()] });
  try {
    const { lines, destination } = capture();
    const log = createLogger('planner', { destination });
    const spanContext = trace.getTracer('logger-test').startActiveSpan('plan', (span) => {
      log.info('planning');
      span.end();
      return span.spanContext();
    });
    log.info('after');
    assert.equal(lines[0]?.trace_id, spanContext.traceId);
    assert.equal(lines[0]?.span_id, spanContext.spanId);
    assert.equal('trace_id' in (lines[1] ?? {}), false);
  } finally {
    await telemetry.shutdown();
  }
});
