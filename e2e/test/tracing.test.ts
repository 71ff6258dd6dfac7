/**
 * One incident is one trace: the detector's verdict, the planner's work and
 * every executor command hang off it, through the bus, across processes,
 * down to the power-on of each recovered host. The services export OTLP to a
 * receiver in this test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startOtlpReceiver, waitFor, type OtlpReceiver, type ReceivedSpan } from '@firebreak/shared/testing';
import { startSystem, type RunningSystem } from '../src/system.ts';

let receiver: OtlpReceiver;
let system: RunningSystem;

before(async () => {
  receiver = await startOtlpReceiver();
  system = await startSystem({
    size: 'tiny',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_METRICS_EXPORTER: 'none' },
  });
});
after(async () => {
  await system?.stop();
  await receiver?.stop();
});

const serviceOf = (span: ReceivedSpan): string => String(span.resource['service.name']);

test('a rack failure is one trace from detection to the last power-on, across detector, planner and executor', { timeout: 180_000 }, async (t) => {
  const { lab, observer } = system;
  const dead = lab.faults.burnRack('r2');
  const final = await observer
    .waitForOutcome('the incident for rack r2', (p) => p.hosts.some((h) => dead.includes(h)), 150_000)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.equal(final.phase, 'recovered');

  const detection = await receiver.waitForSpan((s) => serviceOf(s) === 'firebreak-detector' && s.name.startsWith('detect domain.failed'), 10_000);
  const inTrace = (): ReceivedSpan[] => receiver.spans.filter((s) => s.traceId === detection.traceId);
  const powerOns = (): ReceivedSpan[] => inTrace().filter((s) => serviceOf(s) === 'firebreak-executor' && s.name === 'execute power on');
  const recoveredHosts = new Set(final.servers.map((s) => s.host).filter((h): h is string => h !== null));
  await waitFor('every power-on span in the incident trace', () => powerOns().length >= recoveredHosts.size, 15_000).catch(() =>
    assert.fail(`power-on spans in the trace: ${powerOns().length}, hosts powered on: ${recoveredHosts.size}; trace spans: ${inTrace().map((s) => `${serviceOf(s)}:${s.name}`).join(', ')}`),
  );

  const services = new Set(inTrace().map(serviceOf));
  for (const service of ['firebreak-detector', 'firebreak-planner', 'firebreak-executor']) assert.ok(services.has(service), `${service} has spans in the trace`);
  const otherTraces = new Set(
    receiver.spans.filter((s) => serviceOf(s) === 'firebreak-executor' && s.name.startsWith('execute ') && s.attributes['firebreak.incident.id'] === final.incidentId).map((s) => s.traceId),
  );
  assert.deepEqual([...otherTraces], [detection.traceId], "every command of the incident runs in the incident's one trace");

  // Each power-on is linked, parent by parent, up to the detector's verdict.
  // The three services export on their own schedules, so a link may still be in flight.
  const brokenChains = (): string[] => {
    const byId = new Map(inTrace().map((s) => [s.spanId, s]));
    return powerOns().flatMap((span) => {
      const chain: string[] = [];
      let at: ReceivedSpan | undefined = span;
      while (at && at.spanId !== detection.spanId) {
        chain.push(`${serviceOf(at)}:${at.name}`);
        at = at.parentSpanId === undefined ? undefined : byId.get(at.parentSpanId);
      }
      return at ? [] : [`power-on on ${String(span.attributes['firebreak.device'])} stops at ${chain.join(' ← ')}`];
    });
  };
  await waitFor('every power-on linked up to the detection span', () => brokenChains().length === 0, 15_000).catch(() =>
    assert.fail(`not linked to the detection span:\n${brokenChains().join('\n')}`),
  );
  t.diagnostic(`${inTrace().length} spans in the incident trace from ${[...services].join(', ')}`);
});
