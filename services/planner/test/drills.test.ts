/**
 * Drills through the incident manager on fake effects with real failure
 * modes: a drill borrows only idle capacity, stops in whatever state it is,
 * ends at its duration whatever it is doing, cleans up in dependency order
 * once its commands in flight have settled, and never calls itself recovered
 * when cleanup left anything behind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrillStart, HostFailed, Inventory, type Command, type IncidentProgress } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import type { IncidentManager } from '../src/incident-manager.ts';
import { referenceFleet } from '../src/readiness/testing/reference-fleet.ts';
import { FakeEffects, refused, succeeded, testManager, useRedis } from './fake-effects.ts';

const freshStore = useRedis();
const fleet = referenceFleet();

async function manager(effects: FakeEffects, inventory: Inventory = fleet): Promise<IncidentManager> {
  return testManager(await freshStore(), inventory, effects, { actor: { stepTimeoutMs: 1_000, heartbeatTimeoutMs: 5_000 }, input: { retryBaseMs: 1 } });
}

const drillOf = (drillId: string, hosts: string[], maxDurationSeconds = 3600): DrillStart =>
  DrillStart.parse({ drillId, scope: { site: 'dc1', hosts }, requestedBy: 'test', requestedAt: Date.now(), maxDurationSeconds });

function finalOf(effects: FakeEffects, drillId: string): IncidentProgress | undefined {
  return effects.progress.find((p) => p.incidentId === `drill-${drillId}` && p.report !== undefined);
}

async function untilFinal(effects: FakeEffects, drillId: string, timeoutMs = 10_000): Promise<IncidentProgress> {
  await waitFor(`drill ${drillId} to end`, () => finalOf(effects, drillId) !== undefined, timeoutMs);
  return finalOf(effects, drillId) as IncidentProgress;
}

const touches = (c: Command, host: string): boolean => ('host' in c && c.host === host) || ('hypervisor' in c && c.hypervisor === host);

test('drills - a drill borrows only idle capacity: with only repurposable hosts free it takes none, says why, and ends at once', async () => {
  // The spares are repurposable hosts here: each runs its own low-priority work, production to a drill.
  const busy = Inventory.parse({ ...fleet, hosts: fleet.hosts.map((h) => (h.role === 'spare' ? { ...h, role: 'repurposable' } : h)) });
  const effects = new FakeEffects();
  const m = await manager(effects, busy);
  const startedAt = Date.now();
  await m.onDrillStart(drillOf('idle-only', ['r9-h01']));
  const final = await untilFinal(effects, 'idle-only');
  assert.ok(Date.now() - startedAt < 5_000, 'a drill with nothing placed does not wait out its duration');
  const repurposable = busy.hosts.filter((h) => h.role === 'repurposable').map((h) => h.id);
  assert.deepEqual(effects.published.filter((c) => repurposable.some((h) => touches(c, h))), [], 'no command touched a repurposable host');
  const db = final.servers.find((s) => s.server === 'db-01');
  assert.equal(db?.step, 'unplaced');
  assert.match(db?.message ?? '', /drills use only idle capacity/);
  assert.notEqual(final.phase, 'recovered');
  await m.stop();
});

test('drills - stopped while recovering: the step in flight settles first, then every grant is revoked before its clone is deleted, and the hosts go back', async () => {
  const effects = new FakeEffects();
  const order: string[] = [];
  let releaseGrant!: () => void;
  const grantHeld = new Promise<void>((resolve) => (releaseGrant = resolve));
  effects.answer = async (c) => {
    if (c.kind === 'storage' && c.action === 'grant') {
      await grantHeld;
      order.push('grant done');
    }
    if (c.kind === 'storage' && (c.action === 'revoke' || c.action === 'delete-clone')) order.push(c.action);
    return succeeded;
  };
  const m = await manager(effects);
  await m.onDrillStart(drillOf('stop-mid', ['r9-h01']));
  await waitFor('the drill grants its clone', () => effects.published.some((c) => c.kind === 'storage' && c.action === 'grant'));
  assert.equal(m.onDrillStop('stop-mid'), true);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(finalOf(effects, 'stop-mid'), undefined, 'cleanup waits for the grant in flight');
  releaseGrant();
  const final = await untilFinal(effects, 'stop-mid');
  assert.deepEqual(order, ['grant done', 'revoke', 'delete-clone']);
  assert.equal(final.cleanup?.complete, true, JSON.stringify(final.cleanup));
  assert.match(final.servers.find((s) => s.server === 'db-01')?.message ?? '', /stopped before it came up/);
  assert.equal(effects.leases.size, 0, 'every borrowed host released');
  assert.equal(m.onDrillStop('stop-mid'), false, 'a finished drill is not open any more');
  await m.stop();
});

test('drills - a drill whose recovery hangs ends at its duration and cleans up', async () => {
  const effects = new FakeEffects();
  // The borrowed host's BMC never answers a power-on: the executor gives up at each command's deadline, again and again.
  effects.answer = async (c) => (c.kind === 'power' && c.action === 'on' ? new Promise((r) => setTimeout(() => r(refused('BMC timeout')), Math.max(0, c.deadline - Date.now()))) : succeeded);
  const m = await manager(effects);
  const startedAt = Date.now();
  await m.onDrillStart(drillOf('hung', ['r9-h01'], 1));
  const final = await untilFinal(effects, 'hung');
  const took = Date.now() - startedAt;
  assert.ok(took < 4_000, `ended ${took} ms after its start, with a 1 s duration`);
  assert.equal(final.cleanup?.complete, true);
  assert.notEqual(final.phase, 'recovered');
  await m.stop();
});

test('drills - cleanup that cannot undo something is tried three times and fails the drill, saying what is left', async () => {
  const effects = new FakeEffects();
  effects.answer = (c) => (c.kind === 'storage' && c.action === 'delete-clone' ? refused('array busy') : succeeded);
  const m = await manager(effects);
  await m.onDrillStart(drillOf('dirty', ['r9-h01']));
  await waitFor('the rehearsal is up', () => effects.progress.some((p) => p.incidentId === 'drill-dirty' && p.servers.some((s) => s.step === 'done')));
  m.onDrillStop('dirty');
  const final = await untilFinal(effects, 'dirty');
  assert.equal(final.phase, 'failed', 'a rehearsal that recovered but left a clone behind is not "recovered"');
  assert.match(final.message ?? '', /cleanup left work undone: .*array busy/);
  assert.equal(final.cleanup?.complete, false);
  assert.ok(final.cleanup?.left.some((l) => l.server === 'db-01' && /array busy/.test(l.what)));
  const deletes = new Set(effects.published.filter((c) => c.kind === 'storage' && c.action === 'delete-clone').map((c) => c.commandId));
  assert.equal(deletes.size, 3, 'three attempts, each a new command');
  await m.stop();
});

test('drills - production first: a real failure that needs the host a drill borrowed stops the drill, and its server is recovered on that host once the drill gives it back', async () => {
  // One free host in all: the spare r1-h01.
  const keep = (h: Inventory['hosts'][number]): boolean => (h.role !== 'spare' && h.role !== 'repurposable') || h.id === 'r1-h01';
  const scarce = Inventory.parse({ ...fleet, hosts: fleet.hosts.filter(keep) });
  const effects = new FakeEffects();
  const closed: string[] = [];
  const m = await testManager(await freshStore(), scarce, effects, {
    actor: { stepTimeoutMs: 1_000, heartbeatTimeoutMs: 5_000 },
    input: { retryBaseMs: 1 },
    onIncidentClosed: (id, outcome) => void closed.push(`${id} ${outcome}`),
  });
  await m.onDrillStart(drillOf('in-the-way', ['r9-h01']));
  await waitFor('the rehearsal is up on r1-h01', () => effects.progress.some((p) => p.incidentId === 'drill-in-the-way' && p.servers.some((s) => s.step === 'done' && s.host === 'r1-h01')));

  await m.onHostFailed(HostFailed.parse({ host: 'r9-h02', site: 'dc1', rack: 'r9', epoch: 1, cause: 'heartbeat-lost', detectedAt: Date.now(), detector: 'test', evidence: { lastHeartbeatAt: Date.now() - 1_000 } }));
  await untilFinal(effects, 'in-the-way');
  await waitFor('db-02 recovered on r1-h01', () => effects.progress.some((p) => p.trigger === 'event' && p.report !== undefined && p.phase === 'recovered' && p.servers.some((s) => s.server === 'db-02' && s.host === 'r1-h01')), 15_000).catch((err: unknown) => assert.fail(`${(err as Error).message}\n${JSON.stringify(effects.progress.filter((p) => p.report !== undefined).map((p) => [p.incidentId, p.phase, p.message, p.servers]), null, 1)}\nclosed ${closed.join(', ')}`));
  assert.ok(closed.some((c) => c.startsWith('drill-in-the-way ')), JSON.stringify(closed));
  await m.stop();
});

test('drills - production first: the rehearsed host really failing stops its drill, and the real incident recovers its server', async () => {
  const effects = new FakeEffects();
  const m = await manager(effects);
  await m.onDrillStart(drillOf('overtaken', ['r9-h01']));
  await waitFor('the rehearsal is up', () => effects.progress.some((p) => p.incidentId === 'drill-overtaken' && p.servers.some((s) => s.step === 'done')));
  await m.onHostFailed(HostFailed.parse({ host: 'r9-h01', site: 'dc1', rack: 'r9', epoch: 1, cause: 'heartbeat-lost', detectedAt: Date.now(), detector: 'test', evidence: { lastHeartbeatAt: Date.now() - 1_000 } }));
  const drill = await untilFinal(effects, 'overtaken');
  assert.equal(drill.cleanup?.complete, true);
  await waitFor('db-01 recovered for real', () => effects.progress.some((p) => p.incidentId === 'inc-r9-h01-1' && p.phase === 'recovered'), 15_000);
  await m.stop();
});

test('drills - a borrowed host is read before the drill changes it and put back exactly as read: power first, then its ports and boot entry, never a shut port', async () => {
  const effects = new FakeEffects();
  const before = { admin: 'down', pvid: 7, vlans: [{ vlan: 7, untagged: true }, { vlan: 9, untagged: false }] };
  const entry = { server: 'old-01', image: 'debian12', imageUrl: 'http://boot/old.ipxe' };
  const observe = effects.observe;
  effects.observe = (c) => (c.kind === 'net' && c.action === 'read' ? before : c.kind === 'boot' && c.action === 'read' ? { entry } : observe(c));
  const m = await manager(effects);
  await m.onDrillStart(drillOf('exact', ['r9-h01']));
  await waitFor('the rehearsal is up', () => effects.progress.some((p) => p.incidentId === 'drill-exact' && p.servers.some((s) => s.step === 'done')));
  const host = effects.published.find((c) => c.kind === 'storage' && c.action === 'grant')?.host ?? '';
  const firstChange = effects.first((c) => touches(c, host) && !(c.kind === 'power' && c.action === 'status') && !('action' in c && c.action === 'read'));
  const reads = effects.published.filter((c) => touches(c, host) && (c.action === 'read' || (c.kind === 'power' && c.action === 'status')));
  assert.ok(reads.length >= 3 && reads.every((r) => effects.published.indexOf(r) < firstChange), 'power, port and boot entry read before any change');

  m.onDrillStop('exact');
  const final = await untilFinal(effects, 'exact');
  assert.equal(final.cleanup?.complete, true, JSON.stringify(final.cleanup));
  const restores = effects.published.filter((c) => touches(c, host));
  const ports = restores.filter((c) => c.kind === 'net' && c.action === 'restore');
  assert.ok(ports.length > 0);
  for (const p of ports) assert.deepEqual(p.kind === 'net' && p.action === 'restore' ? p.state : undefined, before);
  const boot = restores.find((c) => c.kind === 'boot' && c.action === 'restore');
  assert.deepEqual(boot?.kind === 'boot' && boot.action === 'restore' ? boot.entry : undefined, entry);
  const powerBack = effects.published.findLastIndex((c) => touches(c, host) && c.kind === 'power' && c.action === 'off');
  assert.ok(powerBack >= 0 && powerBack < effects.published.indexOf(ports[0] as Command), 'powered back off before its ports change');
  assert.deepEqual(effects.published.filter((c) => touches(c, host) && c.kind === 'net' && c.action === 'shut'), [], 'no port left shut');
  await m.stop();
});
