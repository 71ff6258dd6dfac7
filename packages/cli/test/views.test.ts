import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Inventory, topics } from '@firebreak/shared';
import { generateTopology } from '@firebreak/lab';
import { chooseDemoRack } from '../src/demo.ts';
import { parseDuration } from '../src/drill.ts';
import { HostStates } from '../src/host-states.ts';
import { incidentLine, progressBar, renderReport } from '../src/incident-view.ts';
import { LiveView } from '../src/live-view.ts';
import { renderLogLine } from '../src/log-view.ts';
import { UsageError } from '../src/usage-error.ts';

const tiny = Inventory.parse(generateTopology({ size: 'tiny', seed: 1 }));

test('cli views - durations read as operators write them, anything else is refused by name', () => {
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('10m'), 600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('45'), 45);
  for (const bad of ['', '0', '0m', 'soon', '10 m', '-5s', '1d']) {
    assert.throws(() => parseDuration(bad), (err: unknown) => err instanceof UsageError && err.message.includes(`got "${bad}"`), bad);
  }
});

test('cli views - a progress bar fills in proportion and never spills', () => {
  assert.equal(progressBar(0), `[${'.'.repeat(20)}]`);
  assert.equal(progressBar(50), `[${'#'.repeat(10)}${'.'.repeat(10)}]`);
  assert.equal(progressBar(100), `[${'#'.repeat(20)}]`);
  assert.equal(progressBar(140), progressBar(100));
});

test('cli views - the newest verdict per host wins, a recovery clears it, a domain failure names each host', () => {
  const states = new HostStates();
  const base = { site: 'site1', rack: 'r1', epoch: 1, detector: 'd', evidence: {} };
  states.apply(topics.hostFailed.subject, { ...base, host: 'r1-h01', detectedAt: 2_000, cause: 'bmc-power-off' });
  // An older verdict arriving late does not undo a newer one.
  states.apply(topics.hostRecovered.subject, { ...base, host: 'r1-h01', detectedAt: 1_000, server: null });
  states.apply(topics.hostSuspect.subject, { ...base, host: 'r1-h02', detectedAt: 1_000 });
  states.apply(topics.hostRecovered.subject, { ...base, host: 'r1-h02', detectedAt: 3_000, server: 'web-01' });
  states.apply(topics.domainFailed.subject, {
    domain: { kind: 'rack', id: 'r2', site: 'site1' },
    hosts: ['r2-h01', 'r2-h03'],
    causes: ['heartbeat-lost'],
    firstFailureAt: 1,
    detectedAt: 5_000,
    epoch: 1,
    detector: 'd',
  });
  states.apply(topics.hostFailed.subject, { not: 'a verdict' });
  assert.deepEqual(
    states.notReady().map((h) => [h.host, h.rack, h.state]),
    [
      ['r1-h01', 'r1', 'failed'],
      ['r2-h01', 'r2', 'failed'],
      ['r2-h03', 'r2', 'failed'],
    ],
  );
  assert.deepEqual(states.notReady('site2'), []);
});

test('cli views - the demo burns the rack with the fewest servers and expects each of them back', () => {
  const target = chooseDemoRack(tiny);
  assert.ok(target);
  const rackOf = new Map(tiny.hosts.map((h) => [h.id, h.rack]));
  const onRack = (rack: string) => tiny.assignments.filter((a) => rackOf.get(a.mode === 'bare-metal' ? a.host : a.hypervisor) === rack).length;
  for (const r of tiny.racks) assert.ok(onRack(target.rack) <= onRack(r.id), `${target.rack} has no more servers than ${r.id}`);
  assert.equal(target.servers.length, onRack(target.rack));
  assert.ok(target.servers.length > 0);
  assert.deepEqual(target.hosts, tiny.hosts.filter((h) => h.rack === target.rack).map((h) => h.id));
});

test('cli views - the panel counts hosts per rack, fits the screen and holds no escape codes', async () => {
  const logFile = join(await mkdtemp(join(tmpdir(), 'fb-view-')), 'up.log');
  const view = new LiveView({ inventory: tiny, mode: 'lines', printLogs: false, logFile });
  const counts = view.rackCounts();
  // Nothing heard yet: spares are off, everyone else is silent.
  for (const r of tiny.racks) {
    const c = counts.get(r.id);
    const hosts = tiny.hosts.filter((h) => h.rack === r.id);
    assert.equal(c?.spare, hosts.filter((h) => h.role === 'spare').length);
    assert.equal(c?.silent, hosts.filter((h) => h.role !== 'spare').length);
  }
  const lines = view.panel(80, 30);
  assert.ok(lines.length <= 29, 'fits the screen');
  assert.ok(lines.every((l) => l.length <= 80), 'no line wider than the screen');
  assert.ok(!lines.join('\n').includes('\x1b'), 'the panel text itself has no escape codes');
  await view.stop();
  await rm(dirname(logFile), { recursive: true, force: true });
});

test('cli views - an incident line says the phase and each server step; the report flags a missed RTO', () => {
  const p = {
    incidentId: 'inc-1',
    site: 'site1',
    phase: 'recovering' as const,
    trigger: 'event' as const,
    openedAt: 0,
    at: 0,
    hosts: ['r2-h01'],
    servers: [
      { server: 'a', host: 'h', mode: 'bare-metal' as const, step: 'boot' as const, percent: 50 },
      { server: 'b', host: 'h2', mode: 'vm' as const, step: 'done' as const, percent: 100 },
    ],
  };
  assert.match(incidentLine(p), /incident inc-1 recovering 1\/2 servers up {2}a:boot\(50%\) b:done$/);
  const report = renderReport({
    ...p,
    phase: 'degraded',
    report: [
      { server: 'a', outcome: 'recovered', detectMs: 900, fenceMs: 3_000, planMs: 5, heartbeatMs: 70_000, rtoSeconds: 71, rtoTargetSeconds: 60 },
      { server: 'b', outcome: 'unrecovered', detectMs: 900, fenceMs: 3_000, planMs: 5, heartbeatMs: null, rtoSeconds: null, rtoTargetSeconds: 900 },
    ],
  }).join('\n');
  assert.match(report, /incident inc-1 degraded: 1 of 2 servers recovered/);
  assert.match(report, /a\s+recovered\s+900\s+3000\s+5\s+70000\s+71\.0 \/ 60 {2}OVER TARGET/);
  assert.match(report, /b\s+unrecovered\s+900\s+3000\s+5\s+-\s+- \/ 900$/);
});

test('cli views - a burned rack counts its spare as failed, not as a spare, though no verdict named it', async () => {
  const logFile = join(await mkdtemp(join(tmpdir(), 'fb-view-')), 'up.log');
  const view = new LiveView({ inventory: tiny, mode: 'lines', printLogs: false, logFile });
  const r2 = tiny.hosts.filter((h) => h.rack === 'r2');
  const named = r2.filter((h) => h.role !== 'spare').map((h) => h.id);
  assert.ok(r2.some((h) => h.role === 'spare'), 'r2 has a spare');
  view.hostStates.apply(topics.domainFailed.subject, {
    domain: { kind: 'rack', id: 'r2', site: 'site1' }, hosts: named, causes: ['bmc-unreachable'], firstFailureAt: 1, detectedAt: 2, epoch: 1, detector: 'd1',
  });
  assert.deepEqual(view.rackCounts().get('r2'), { up: 0, failed: r2.length, suspect: 0, spare: 0, silent: 0 });
  assert.equal(view.rackCounts().get('r1')?.spare, tiny.hosts.filter((h) => h.rack === 'r1' && h.role === 'spare').length, 'other racks keep their spares');
  // Without the inventory (status reads verdicts only), a verdict still names just its hosts.
  const bare = new HostStates();
  bare.apply(topics.domainFailed.subject, { domain: { kind: 'rack', id: 'r2', site: 'site1' }, hosts: named, causes: ['bmc-unreachable'], firstFailureAt: 1, detectedAt: 2, epoch: 1, detector: 'd1' });
  assert.equal(bare.notReady().length, named.length);
  await view.stop();
  await rm(dirname(logFile), { recursive: true, force: true });
});

test('cli views - a service log line shows bytes it did not produce escaped: no terminal control sequence gets through', () => {
  // A device's answer or a message's field logged as-is could carry escapes that rewrite the operator's screen.
  const hostile = '\x1b[2J\x1b]0;pwned\x07 ok\r\nnext\u009b31m';
  const json = renderLogLine('executor', JSON.stringify({ level: 30, time: 0, msg: `device said ${hostile}`, detail: hostile }));
  const plain = renderLogLine('executor', `not json ${hostile}`);
  for (const line of [json, plain]) {
    // eslint-disable-next-line no-control-regex -- looking for control characters is the test
    assert.doesNotMatch(line, /[\x00-\x08\x0a-\x1f\x7f-\x9f]/, JSON.stringify(line));
    assert.match(line, /\\x1b\[2J/, 'the escape is shown, not obeyed');
  }
  assert.match(json, /device said \\x1b\[2J\\x1b\]0;pwned\\x07 ok\\r\\nnext\\x9b31m/);
});
