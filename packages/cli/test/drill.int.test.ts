import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, createStore, ensureStreams, topics, type Bus, type ConsumerHandle, type DrillReport, type DrillStart, type DrillStop, type IncidentProgress, type Store } from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { formatInventory, generateTopology } from '@firebreak/lab';
import { isolatedEnv, runCli } from './cli-process.ts';

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
let store: Store;
let env: NodeJS.ProcessEnv;
let inventoryFile: string;
const starts: DrillStart[] = [];
const stops: DrillStop[] = [];
const consumers: ConsumerHandle[] = [];

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'drill-test' });
  await ensureStreams(bus.jsm);
  store = createStore(redis.url);
  const dir = await mkdtemp(join(tmpdir(), 'fb-drill-'));
  env = isolatedEnv(dir);
  inventoryFile = join(dir, 'inventory.yaml');
  await writeFile(inventoryFile, formatInventory(generateTopology({ size: 'tiny', seed: 1 }), 'yaml'));
  // Read the way the planner reads them: durable consumers of the same topics, validated by the same schemas.
  consumers.push(
    await bus.consume({ topic: topics.drillStart, durable: 'test-planner-drill-start', handler: async (m) => void starts.push(m) }),
    await bus.consume({ topic: topics.drillStop, durable: 'test-planner-drill-stop', handler: async (m) => void stops.push(m) }),
  );
});

after(async () => {
  for (const c of consumers) await c.stop();
  await bus?.close();
  await store?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

const urls = (): string[] => ['--nats-url', nats.url, '--redis-url', redis.url];

/** What the planner does with a DrillStart it accepts: keeps the request until the report. */
async function accept(start: DrillStart): Promise<void> {
  const site = 'domain' in start.scope ? start.scope.domain.site : start.scope.site;
  await store.drills.recordRequest({ drillId: start.drillId, site, scope: start.scope, requestedBy: start.requestedBy, requestedAt: start.requestedAt, maxDurationSeconds: start.maxDurationSeconds });
}

test('cli drill - start publishes the DrillStart the planner consumes, stop the DrillStop', async () => {
  const start = await runCli(['drill', 'start', 'rack', 'r2', '--site', 'site1', '--duration', '10m', '--json', '--nats-url', nats.url], env);
  assert.equal(start.code, 0, start.stderr);
  const printed = JSON.parse(start.stdout) as { drillId: string; incidentId: string };
  assert.match(printed.drillId, /^rack-r2-/);
  assert.equal(printed.incidentId, `drill-${printed.drillId}`);
  await waitFor('the DrillStart', () => starts.some((s) => s.drillId === printed.drillId), 10_000);
  const seen = starts.find((s) => s.drillId === printed.drillId);
  assert.deepEqual(seen?.scope, { domain: { kind: 'rack', id: 'r2', site: 'site1' } });
  assert.equal(seen?.maxDurationSeconds, 600);
  assert.match(seen?.requestedBy ?? '', /^firebreak-cli:/);

  const text = await runCli(['drill', 'start', 'host', 'r1-h01', 'r1-h02', '--duration', '1h30m', '--nats-url', nats.url], env);
  assert.equal(text.code, 0, text.stderr);
  const id = /drill (\S+) started: host\(s\) r1-h01, r1-h02 at site1, for at most 90 min/.exec(text.stdout)?.[1];
  assert.ok(id, text.stdout);
  assert.match(text.stdout, new RegExp(`firebreak drill stop ${id}`));
  await waitFor('the host drill', () => starts.some((s) => s.drillId === id), 10_000);
  assert.deepEqual(starts.find((s) => s.drillId === id)?.scope, { site: 'site1', hosts: ['r1-h01', 'r1-h02'] });

  await accept(seen as DrillStart);
  const stop = await runCli(['drill', 'stop', printed.drillId, '--reason', 'done rehearsing', ...urls()], env);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, new RegExp(`stop requested for drill ${printed.drillId}`));
  await waitFor('the DrillStop', () => stops.some((s) => s.drillId === printed.drillId), 10_000);
  assert.equal(stops.find((s) => s.drillId === printed.drillId)?.reason, 'done rehearsing');
});

test('cli drill - bad arguments exit 2 naming the input and the fix, and publish nothing', async () => {
  const before = starts.length;
  const cases: [string[], RegExp][] = [
    [['drill', 'start', 'rack', 'r2', '--duration', 'soon'], /--duration must be like 90s, 10m, 1h or 1h30m, got "soon"/],
    [['drill', 'start', 'rack', 'r2', '--duration', '0s'], /--duration must be like/],
    [['drill', 'start', 'shelf', 's1'], /unknown domain kind "shelf": use rack, pdu, tor, site, host/],
    [['drill', 'start', 'rack'], /usage: firebreak drill start rack\|pdu\|tor\|site <id>/],
    [['drill', 'start', 'rack', 'r1', 'r2'], /one rack at a time/],
    [['drill', 'stop'], /usage: firebreak drill stop <drillId>/],
    [['drill', 'stop', 'a.b'], /"a\.b" is not a drill id/],
    [['drill', 'pause'], /usage: firebreak drill start .* \(got "pause"\)/],
  ];
  for (const [args, expected] of cases) {
    const run = await runCli([...args, '--nats-url', nats.url], env);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, expected, args.join(' '));
  }
  // With the inventory at hand a typo is caught before anything is sent.
  const withInventory = { ...env, FB_INVENTORY: inventoryFile };
  const unknownRack = await runCli(['drill', 'start', 'rack', 'r9', '--nats-url', nats.url], withInventory);
  assert.equal(unknownRack.code, 2);
  assert.match(unknownRack.stderr, new RegExp(`no rack "r9" with hosts at site "site1"; see the inventory ${inventoryFile}`));
  const unknownHost = await runCli(['drill', 'start', 'host', 'r1-h01', 'r7-h01', '--nats-url', nats.url], withInventory);
  assert.equal(unknownHost.code, 2);
  assert.match(unknownHost.stderr, /no host "r7-h01" at site "site1"/);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(starts.length, before, 'nothing was published');
});

test('cli drill - start --wait follows the drill incident to its end and prints its report', async () => {
  const responder = answerNextDrill((base) => ({
    ...base,
    phase: 'recovered',
    servers: [{ ...base.servers[0]!, step: 'done', percent: 100 }],
    report: [{ server: 'auth-07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 4_200, rtoSeconds: 4.2, rtoTargetSeconds: 900 }],
  }));
  const run = await runCli(['drill', 'start', 'rack', 'r2', '--wait', '--nats-url', nats.url], { ...env, FB_INVENTORY: inventoryFile });
  await responder;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /incident drill-rack-r2-\S+ recovering 0\/1 servers up\s+auth-07:boot\(50%\)/);
  assert.match(run.stdout, /incident drill-rack-r2-\S+ recovered: 1 of 1 servers recovered/);
  assert.match(run.stdout, /auth-07\s+recovered\s+0\s+-\s+12\s+4200\s+4\.2 \/ 900/);
});

test('cli drill - stop names only an open drill: an unknown id or an ended drill exits 2 and publishes nothing', async () => {
  const before = stops.length;
  const unknown = await runCli(['drill', 'stop', 'rack-r2-nosuch', ...urls()], env);
  assert.equal(unknown.code, 2, unknown.stdout + unknown.stderr);
  assert.match(unknown.stderr, /no open drill "rack-r2-nosuch": "firebreak drill list" lists open drills, "firebreak drill reports" finished ones/);
  assert.equal(unknown.stdout, '');

  await store.drills.save(storedReport('rack-r2-ended', Date.now() - 24 * 3600_000));
  const ended = await runCli(['drill', 'stop', 'rack-r2-ended', ...urls()], env);
  assert.equal(ended.code, 2, ended.stdout + ended.stderr);
  assert.match(ended.stderr, /drill rack-r2-ended already ended: passed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; nothing to stop\. "firebreak drill reports" shows its report/);

  // A drill the planner runs (its incident open) is stopped, whether or not its request was kept.
  await store.snapshots.save('drill-rack-r2-running', { machineId: 'firebreak-incident', machineVersion: 'test', snapshot: {} });
  const running = await runCli(['drill', 'stop', 'rack-r2-running', '--json', ...urls()], env);
  assert.equal(running.code, 0, running.stderr);
  assert.equal((JSON.parse(running.stdout) as { drillId: string }).drillId, 'rack-r2-running');
  await waitFor('the DrillStop', () => stops.some((s) => s.drillId === 'rack-r2-running'), 10_000);
  assert.equal(stops.length, before + 1, 'only the open drill was asked to stop');
});

/** A stand-in for the planner: answers the next new DrillStart with progress, then the final progress `final` makes of it. */
function answerNextDrill(final: (base: IncidentProgress) => IncidentProgress): Promise<void> {
  const seen = new Set(starts.map((s) => s.drillId));
  return (async () => {
    await waitFor('a new DrillStart', () => starts.some((s) => !seen.has(s.drillId)), 30_000);
    const drill = starts.find((s) => !seen.has(s.drillId)) as DrillStart;
    const base: IncidentProgress = {
      incidentId: `drill-${drill.drillId}`,
      site: 'site1',
      phase: 'recovering',
      trigger: 'drill',
      openedAt: drill.requestedAt,
      at: Date.now(),
      hosts: ['r2-h01'],
      servers: [{ server: 'auth-07', host: 'r3-h07', mode: 'bare-metal', step: 'boot', percent: 50 }],
    };
    await bus.publish(topics.incidentProgress(base.incidentId, 'recovering'), base);
    const last = final({ ...base, at: Date.now() + 1 });
    await bus.publish(topics.incidentProgress(base.incidentId, last.phase), last);
  })();
}

const recoveredReport: NonNullable<IncidentProgress['report']> = [{ server: 'auth-07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 4_200, rtoSeconds: 4.2, rtoTargetSeconds: 900 }];

test('cli drill - start --wait exits 0 only when the servers recovered and cleanup restored everything', async () => {
  const responder = answerNextDrill((base) => ({
    ...base,
    phase: 'recovered',
    servers: [{ ...base.servers[0]!, step: 'done', percent: 100 }],
    report: recoveredReport,
    cleanup: { complete: true, restored: [{ host: 'r3-h07', server: 'auth-07', what: 'drill VLANs, clone, boot entry undone; host powered off and returned' }], left: [] },
  }));
  const run = await runCli(['drill', 'start', 'rack', 'r2', '--wait', '--nats-url', nats.url], { ...env, FB_INVENTORY: inventoryFile });
  await responder;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /cleanup: restored everything \(1 restored, 0 left\)/);
  assert.match(run.stdout, /restored: drill VLANs, clone, boot entry undone; host powered off and returned \(server auth-07, host r3-h07\)/);
  assert.match(run.stdout, /drill passed: 1 of 1 servers recovered and cleanup restored everything/);
});

test('cli drill - start --wait exits 1 and prints what is left when cleanup left work, even if the servers recovered', async () => {
  const responder = answerNextDrill((base) => ({
    ...base,
    phase: 'degraded',
    message: 'cleanup left work undone',
    servers: [{ ...base.servers[0]!, step: 'done', percent: 100 }],
    report: recoveredReport,
    cleanup: { complete: false, restored: [], left: [{ host: 'r3-h07', server: 'auth-07', what: 'clone lun-7-drill: delete failed (array timeout)' }] },
  }));
  const run = await runCli(['drill', 'start', 'rack', 'r2', '--wait', '--nats-url', nats.url], { ...env, FB_INVENTORY: inventoryFile });
  await responder;
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.match(run.stdout, /cleanup: INCOMPLETE \(0 restored, 1 left\)/);
  assert.match(run.stdout, /drill FAILED; what is left:\n {2}- the drill ended degraded: cleanup left work undone\n {2}- cleanup left: clone lun-7-drill: delete failed \(array timeout\) \(server auth-07, host r3-h07\)/);

  // The same as JSON, and a "recovered" whose cleanup is incomplete does not pass either.
  const json = answerNextDrill((base) => ({ ...base, phase: 'recovered', report: recoveredReport, cleanup: { complete: false, restored: [], left: [{ host: 'r3-h07', what: 'host still on drill VLAN 3001' }] } }));
  const jsonRun = await runCli(['drill', 'start', 'rack', 'r2', '--wait', '--json', '--nats-url', nats.url], { ...env, FB_INVENTORY: inventoryFile });
  await json;
  assert.equal(jsonRun.code, 1, jsonRun.stdout + jsonRun.stderr);
  const doc = JSON.parse(jsonRun.stdout.trim().split('\n').at(-1) ?? '{}') as { passed: boolean; problems: string[]; cleanup: { left: unknown[] } };
  assert.equal(doc.passed, false);
  assert.deepEqual(doc.problems, ['cleanup left: host still on drill VLAN 3001 (host r3-h07)']);
  assert.equal(doc.cleanup.left.length, 1);
});

function storedReport(drillId: string, endedAt: number, over: Partial<DrillReport> = {}): DrillReport {
  return {
    drillId,
    incidentId: `drill-${drillId}`,
    site: 'site1',
    scope: { domain: { kind: 'rack', id: 'r2', site: 'site1' } },
    requestedBy: 'schedule:r2-weekly',
    requestedAt: endedAt - 252_000,
    maxDurationSeconds: 1800,
    startedAt: endedAt - 252_000,
    endedAt,
    phase: 'recovered',
    servers: [
      { server: 'auth-07', host: 'r3-h07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 4_200, rtoSeconds: 4.2, rtoTargetSeconds: 900 },
      { server: 'web-01', host: 'r1-h04', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 42_100, rtoSeconds: 42.1, rtoTargetSeconds: 60 },
    ],
    cleanup: { complete: true, restored: [{ host: 'r3-h07', what: 'host returned' }], left: [] },
    passed: true,
    ...over,
  };
}

test('cli drill - reports lists stored drill reports newest first, with outcome, servers up, worst RTO against its target and cleanup', async () => {
  const now = Date.now();
  await store.drills.save(storedReport('sched-r2-weekly-a', now - 3 * 3600_000));
  await store.drills.save(
    storedReport('rack-r2-b', now - 3600_000, {
      requestedBy: 'firebreak-cli:ops@console',
      phase: 'degraded',
      message: 'cleanup left work undone',
      servers: [
        { server: 'auth-07', host: 'r3-h07', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: 4_200, rtoSeconds: 4.2, rtoTargetSeconds: 900 },
        { server: 'web-02', host: null, outcome: 'unrecovered', detectMs: 0, fenceMs: null, planMs: 12, heartbeatMs: null, rtoSeconds: null, rtoTargetSeconds: 300, reason: 'no host with 64 GiB free' },
      ],
      cleanup: { complete: false, restored: [], left: [{ host: 'r3-h07', what: 'clone lun-7-drill: delete failed' }] },
      passed: false,
    }),
  );
  await store.drills.save(storedReport('pdu-x', now - 2 * 3600_000, { site: 'site2', scope: { domain: { kind: 'pdu', id: 'x', site: 'site2' } } }));

  const text = await runCli(['drill', 'reports', '--site', 'site1', '--redis-url', redis.url], env);
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.split('\n');
  assert.match(lines[0] ?? '', /^\d+ drill report\(s\) at site1, newest first:/);
  assert.match(lines[1] ?? '', /^drill\s+domain\s+started \(UTC\)\s+took\s+outcome\s+up\s+worst RTO\/target\s+cleanup$/);
  const b = lines.findIndex((l) => l.startsWith('rack-r2-b '));
  const a = lines.findIndex((l) => l.startsWith('sched-r2-weekly-a '));
  assert.ok(b > 1 && a > b, `newest first:\n${text.stdout}`);
  assert.match(lines[b] ?? '', /rack r2@site1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+4m12s\s+FAILED \(degraded\)\s+1\/2\s+web-02 not up\s+left 1$/);
  assert.match(lines[b + 1] ?? '', /^ {4}by firebreak-cli:ops@console, for at most 30m$/);
  assert.match(text.stdout, /\n {4}- the drill ended degraded: cleanup left work undone\n {4}- server web-02 not recovered: no host with 64 GiB free\n {4}- cleanup left: clone lun-7-drill: delete failed \(host r3-h07\)/);
  assert.match(lines[a] ?? '', /passed\s+2\/2\s+42\.1s\/60s web-01\s+ok$/);
  assert.doesNotMatch(text.stdout, /pdu-x/, 'another site is left out');

  const all = await runCli(['drill', 'reports', '--limit', '2', '--json', '--redis-url', redis.url], env);
  assert.equal(all.code, 0, all.stderr);
  const doc = JSON.parse(all.stdout) as { version: number; site: null; reports: DrillReport[] };
  assert.deepEqual(doc.reports.map((r) => r.drillId), ['rack-r2-b', 'pdu-x'], 'every site, newest first, at most --limit');
  assert.equal(doc.reports[0]?.cleanup?.left[0]?.what, 'clone lun-7-drill: delete failed');

  for (const [args, expected] of [
    [['--limit', '0'], /--limit must be a whole number of at least 1, got "0"/],
    [['--limit', 'ten'], /--limit must be a whole number of at least 1, got "ten"/],
    [['--site', 'a b'], /--site "a b" is not a site id/],
  ] as const) {
    const bad = await runCli(['drill', 'reports', ...args, '--redis-url', redis.url], env);
    assert.equal(bad.code, 2, args.join(' '));
    assert.match(bad.stderr, expected);
  }
  const none = await runCli(['drill', 'reports', '--site', 'site9', '--redis-url', redis.url], env);
  assert.equal(none.code, 0);
  assert.match(none.stdout, /no drill reports at site9/);
});

test('cli drill - list shows the open drills with their phase, and one accepted but not opened yet', async () => {
  const now = Date.now();
  await accept({ drillId: 'rack-r1-open', scope: { domain: { kind: 'rack', id: 'r1', site: 'site1' } }, requestedBy: 'schedule:r1-daily', requestedAt: now - 60_000, maxDurationSeconds: 600 });
  await store.snapshots.save('drill-rack-r1-open', { machineId: 'firebreak-incident', machineVersion: 'test', snapshot: {} });
  await bus.publish(topics.incidentProgress('drill-rack-r1-open', 'recovering'), {
    incidentId: 'drill-rack-r1-open',
    site: 'site1',
    phase: 'recovering',
    trigger: 'drill',
    openedAt: now - 60_000,
    at: now,
    hosts: ['r1-h01'],
    servers: [
      { server: 'web-01', host: 'r1-h04', mode: 'bare-metal', step: 'done', percent: 100 },
      { server: 'db-01', host: 'r2-h04', mode: 'bare-metal', step: 'boot', percent: 50 },
    ],
  });
  await accept({ drillId: 'host-r3-h01-new', scope: { site: 'site1', hosts: ['r3-h01'] }, requestedBy: 'firebreak-cli:ops@console', requestedAt: now, maxDurationSeconds: 3600 });

  const run = await runCli(['drill', 'list', ...urls()], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^rack-r1-open\s+rack r1@site1\s+\S+ \S+\s+\d+m(\d\ds)?\s+recovering\s+1\/2\s+schedule:r1-daily$/m);
  assert.match(run.stdout, /^host-r3-h01-new\s+host r3-h01@site1\s+\S+ \S+\s+(59m(\d\ds)?|1h)\s+requested\s+0\/0\s+firebreak-cli:ops@console$/m);
  const json = await runCli(['drill', 'list', '--json', '--site', 'site1', ...urls()], env);
  const doc = JSON.parse(json.stdout) as { drills: { drillId: string; phase: string }[] };
  assert.deepEqual(doc.drills.filter((d) => d.drillId === 'rack-r1-open' || d.drillId === 'host-r3-h01-new').map((d) => [d.drillId, d.phase]), [
    ['host-r3-h01-new', 'requested'],
    ['rack-r1-open', 'recovering'],
  ]);
  const elsewhere = await runCli(['drill', 'list', '--site', 'site9', ...urls()], env);
  assert.match(elsewhere.stdout, /no open drills/);
});
