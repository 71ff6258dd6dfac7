import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createLogger } from '../src/logger.ts';
import {
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  MESSAGING_SYSTEM_VALUE_NATS,
  messagingOperationTypes,
  startTelemetry,
} from '../src/telemetry/index.ts';
import { startOtlpReceiver } from '../src/testing/otlp-receiver.ts';

/** Runs `fn` with exactly these OTEL_* variables set, whatever the machine exports. */
async function withOtelEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const saved = Object.entries(process.env).filter(([name]) => name.startsWith('OTEL_'));
  const clear = (): void => {
    for (const name of Object.keys(process.env)) if (name.startsWith('OTEL_')) delete process.env[name];
  };
  clear();
  Object.assign(process.env, vars);
  try {
    await fn();
  } finally {
    clear();
    Object.assign(process.env, Object.fromEntries(saved));
  }
}

test('telemetry - is a no-op without OTEL variables', () =>
  withOtelEnv({}, async () => {
    const telemetry = startTelemetry({ serviceName: 'noop-test' });
    assert.equal(telemetry.enabled, false);
    const span = trace.getTracer('noop-test').startSpan('nothing');
    assert.equal(span.isRecording(), false, 'no SDK may be registered');
    span.end();
    await telemetry.shutdown();
  }));

test('telemetry - records spans into a plugged-in exporter', () =>
  withOtelEnv({}, async () => {
    const exporter = new InMemorySpanExporter();
    const processor = new SimpleSpanProcessor(exporter);
    const telemetry = startTelemetry({ serviceName: 'planner', instanceId: 'planner-1', spanProcessors: [processor] });
    assert.equal(telemetry.enabled, true);
    const span = trace.getTracer('firebreak').startSpan('send fb.cmd.power', {
      kind: SpanKind.PRODUCER,
      attributes: {
        [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_VALUE_NATS,
        [ATTR_MESSAGING_DESTINATION_NAME]: 'fb.cmd.power',
        [ATTR_MESSAGING_OPERATION_TYPE]: messagingOperationTypes.send,
      },
    });
    span.end();
    // The export waits for the resource's async attributes; shutdown would clear the exporter.
    await processor.forceFlush();

    const [recorded, ...others] = exporter.getFinishedSpans();
    assert.equal(others.length, 0);
    assert.equal(recorded?.name, 'send fb.cmd.power');
    assert.equal(recorded?.attributes[ATTR_MESSAGING_SYSTEM], 'nats');
    assert.equal(recorded?.resource.attributes['service.name'], 'planner');
    assert.equal(recorded?.resource.attributes['service.instance.id'], 'planner-1');
    await telemetry.shutdown();
    assert.equal(trace.getTracer('firebreak').startSpan('after').isRecording(), false, 'shutdown unregisters the SDK');
  }));

test('telemetry - exports spans over OTLP/HTTP to the endpoint in the environment', async () => {
  const receiver = await startOtlpReceiver();
  try {
    await withOtelEnv(
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'executor-from-env' },
      async () => {
        const telemetry = startTelemetry({ serviceName: 'executor' });
        assert.equal(telemetry.enabled, true);
        const tracer = trace.getTracer('firebreak');
        tracer.startActiveSpan('process fb.cmd.power', { kind: SpanKind.CONSUMER }, (parent) => {
          tracer.startSpan('redfish power on').end();
          parent.end();
        });
        await telemetry.shutdown();
      },
    );
    const parent = await receiver.waitForSpan((span) => span.name === 'process fb.cmd.power', 1000);
    const child = await receiver.waitForSpan((span) => span.name === 'redfish power on', 1000);
    assert.equal(parent.kind, 5, 'consumer');
    assert.equal(child.traceId, parent.traceId);
    assert.equal(child.parentSpanId, parent.spanId);
    assert.equal(parent.resource['service.name'], 'executor-from-env', 'OTEL_SERVICE_NAME wins');
    assert.match(parent.traceId, /^[0-9a-f]{32}$/);
  } finally {
    await receiver.stop();
  }
});

test('telemetry - a failing exporter is logged, never thrown into the application', () =>
  withOtelEnv({}, async () => {
    const lines: string[] = [];
    const logger = createLogger('executor', { destination: { write: (line) => void lines.push(line) } });
    const failing: SpanExporter = {
      export: (_spans, done) => done({ code: ExportResultCode.FAILED, error: new Error('collector unreachable') }),
      shutdown: () => Promise.reject(new Error('exporter already closed')),
    };
    const telemetry = startTelemetry({ serviceName: 'executor', logger, traceExporter: failing });
    trace.getTracer('firebreak').startSpan('doomed').end();
    await telemetry.shutdown();
    const logged = lines.join('');
    assert.match(logged, /"level":"warn".*collector unreachable.*"msg":"telemetry shutdown failed/);
  }));
