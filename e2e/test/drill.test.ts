/**
 * Drills rehearse on drill VLANs and cloned LUNs, leave no trace, and
 * production comes first. The first test follows one drill of a rack: its
 * servers come up on borrowed capacity while production runs untouched, and
 * stopping it returns every borrowed host and removes the clones. Each later
 * scenario takes a snapshot of every device the lab holds (every host's
 * power, every port's admin state, PVID and VLAN lists, every LUN, clone and
 * mask, every VM, and every boot entry) before the drill, and after its
 * cleanup requires the same snapshot — except where a real failure during the drill rightly changed
 * production, which is judged by the recovery checks. One difference is a
 * known gap, kept apart and marked todo below: what a borrowed bare-metal host
 * installed on its own disk (its image, server and drill flag) is not wiped.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createStore, subjects, topics, type IncidentProgress } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { diffSystemDeviceSnapshots, takeDeviceSnapshot, type SystemDeviceSnapshot } from '../src/device-snapshot.ts';
import { burnRack } from '../src/rack-burn.ts';
import { checkServersRunElsewhere, eventsSince, serversOn } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: 'tiny', executors: 2, planners: 2 });
});
after(() => system?.stop());

/** A borrowed host's disk keeps what the drill installed on it: the one trace cleanup cannot remove yet. */
const isDiskTrace = (line: string): boolean => /^host \S+ (image|server|drill): /.test(line);
const diskTraces: string[] = [];

/** Waits (devices land changes late) until every device but a borrowed host's disk is as before, then fails listing what is not. */
async function expectNoTrace(before: SystemDeviceSnapshot, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let lines: string[];
  for (;;) {
    lines = diffSystemDeviceSnapshots(before, await takeDeviceSnapshot(system));
    if (lines.every(isDiskTrace) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  diskTraces.push(...lines.filter(isDiskTrace).map((l) => `${what}: ${l}`));
  const left = lines.filter((l) => !isDiskTrace(l));
  assert.deepEqual(left, [], `${what}: ${left.length} device difference(s) from before`);
}

async function startDrill(rack: string, maxDurationSeconds = 600): Promise<string> {
  const drillId = `e2e-${rack}-${randomUUID().slice(0, 8)}`;
  await system.bus.publish(topics.drillStart, { drillId, scope: { domain: { kind: 'rack', id: rack, site: 'site1' } }, requestedBy: 'e2e', requestedAt: Date.now(), maxDurationSeconds });
  return drillId;
}

const progressOf = (drillId: string): IncidentProgress | undefined => system.observer.incidents.get(`drill-${drillId}`)?.at(-1);
const isFinal = (p: IncidentProgress | undefined): boolean => p !== undefined && ['recovered', 'degraded', 'failed'].includes(p.phase);

async function untilUp(drillId: string): Promise<void> {
  await waitFor(`drill ${drillId} to have a server up`, () => progressOf(drillId)?.servers.some((s) => s.step === 'done') === true, 120_000).catch((err: unknown) =>
    assert.fail(`${(err as Error).message}: ${JSON.stringify(progressOf(drillId))}\n${system.logs()}`),
  );
}

async function stopDrill(drillId: string): Promise<IncidentProgress> {
  await system.bus.publish(topics.drillStop, { drillId, requestedBy: 'e2e', requestedAt: Date.now() });
  return untilEnded(drillId);
}

async function untilEnded(drillId: string): Promise<IncidentProgress> {
  await waitFor(`drill ${drillId} to end`, () => isFinal(progressOf(drillId)), 120_000).catch((err: unknown) =>
    assert.fail(`${(err as Error).message}: ${JSON.stringify(progressOf(drillId))}\n${system.logs()}`),
  );
  return progressOf(drillId) as IncidentProgress;
}

test('a drill recovers a rack on drill VLANs and cloned LUNs, leaves production alone, and cleans up', { timeout: 180_000 }, async (t) => {
  const { lab, observer, bus } = system;
  const inventory = lab.inventory;
  const rack = 'r2';
  const rackHosts = inventory.hosts.filter((h) => h.rack === rack).map((h) => h.id);
  const rehearsed = serversOn(inventory, rackHosts);
  const production = new Set(inventory.hosts.filter((h) => h.role === 'production' || h.role === 'hypervisor').map((h) => h.id));
  const productionLuns = new Set(inventory.servers.flatMap((s) => s.luns));
  const drillVlanOf = new Map(inventory.vlans.map((v) => [v.id, v.drillVlan]));
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const drillId = `e2e-${Date.now()}`;
  const incidentId = `drill-${drillId}`;
  const startedAt = Date.now();

  await bus.publish(topics.drillStart, {
    drillId,
    scope: { domain: { kind: 'rack', id: rack, site: 'site1' } },
    requestedBy: 'e2e',
    requestedAt: startedAt,
    maxDurationSeconds: 600,
  });
  const progress = () => observer.incidents.get(incidentId)?.at(-1);
  await waitFor(
    'every rehearsed server up in the drill',
    () => {
      const p = progress();
      return p !== undefined && rehearsed.every(({ server }) => p.servers.find((s) => s.server === server.id && (s.step === 'done' || s.step === 'unplaced')));
    },
    120_000,
  ).catch((err: unknown) => assert.fail(`${(err as Error).message}: ${JSON.stringify(progress())}\n${system.logs()}`));

  const drillHosts = [...new Set((progress()?.servers ?? []).filter((s) => s.step === 'done').map((s) => s.host))].filter((h): h is string => h !== null);
  assert.ok(drillHosts.length > 0, 'the drill borrowed hosts');
  for (const s of progress()?.servers ?? []) {
    if (s.step !== 'done' || s.host === null) continue;
    const server = inventory.servers.find((x) => x.id === s.server);
    assert.ok(server);
    for (const vlan of server.vlans) {
      const drillVlan = drillVlanOf.get(vlan);
      assert.ok(drillVlan !== undefined, `VLAN ${vlan} has a drill twin`);
      assert.ok(lab.world.hostOnVlan(s.host, drillVlan), `${s.server} on ${s.host} is on drill VLAN ${drillVlan}`);
      assert.ok(!lab.world.anyNicOnVlan(s.host, vlan), `${s.server} on ${s.host} is kept off production VLAN ${vlan}`);
    }
    for (const lun of server.luns) {
      assert.ok(!lab.world.canSee(s.host, lun), `${s.host} does not see production LUN ${lun}`);
      const visibleClones: string[] = lab.world.lunsVisibleTo(lab.world.host(s.host).host.hba?.initiator ?? '').filter((l) => l.startsWith(`${lun}-d-`));
      assert.equal(visibleClones.length, 1, `${s.host} sees one clone of ${lun}`);
    }
  }
  // The ledger says whose the borrowed hosts are while the drill runs; the servers it rehearses never moved.
  const store = createStore(system.redisUrl);
  t.after(() => store.close());
  const before = new Map(await Promise.all(drillHosts.map(async (h) => [h, (await store.ledger.history('host', h)).at(-2)?.status] as const)));
  for (const host of drillHosts) assert.deepEqual((await store.ledger.host(host))?.status, { role: 'borrowed', drill: drillId }, `${host} is the drill's`);
  for (const { server, formerHost } of rehearsed) {
    const placement = (await store.ledger.server(server.id))?.placement;
    const on = placement?.state === 'bare-metal' ? placement.host : placement?.state === 'vm' ? placement.hypervisor : undefined;
    assert.equal(on, formerHost, `${server.id} stays where it runs: ${JSON.stringify(placement)}`);
  }

  // Production kept running where it was, the whole time.
  const now = Date.now();
  for (const { server, formerHost } of rehearsed) {
    assert.ok(now - (observer.hostHeartbeats.get(formerHost) ?? 0) < 2_000, `${formerHost} (running ${server.id}) still heartbeats`);
  }

  // Returned hosts go dark on purpose: the detector must not call that a failure.
  const failedVerdicts: string[] = [];
  const verdictSub = bus.nc.subscribe(subjects.hostEvent('failed'), {
    callback: (_err, msg) => failedVerdicts.push((msg.json() as { host: string }).host),
  });
  await bus.publish(topics.drillStop, { drillId, requestedBy: 'e2e', requestedAt: Date.now() });
  const final = await observer
    .waitForOutcome('the drill', (p) => p.incidentId === incidentId, 90_000)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.ok(final.report && final.report.length === rehearsed.length, 'the drill reports every rehearsed server');
  for (const r of final.report ?? []) if (r.outcome === 'recovered') assert.ok(r.rtoSeconds !== null && r.rtoSeconds > 0, `${r.server} has an achieved RTO`);

  const events = eventsSince(lab, sinceSeq);
  const touchedProduction = events.filter(
    (e) =>
      (e.source === 'bmc' && e.host !== undefined && production.has(e.host) && e.action !== 'login') ||
      (e.source === 'switch' && e.action.startsWith('set-') && e.host !== undefined && production.has(e.host)) ||
      (e.source === 'san' && ['grant', 'revoke', 'revoke-all'].includes(e.action) && productionLuns.has(String(e.detail?.['lun']))) ||
      (e.source === 'san' && e.action === 'revoke-all' && e.host !== undefined && production.has(e.host)),
  );
  assert.deepEqual(touchedProduction, [], 'no production power, VLAN or storage change');

  // Given back in the ledger too: each borrowed host is what it was before the drill.
  for (const host of drillHosts) {
    const status = (await store.ledger.host(host))?.status;
    assert.ok(status !== undefined && status.role !== 'borrowed', `${host} still borrowed: ${JSON.stringify(status)}`);
    assert.deepEqual(status, before.get(host), `${host} is what it was before the drill`);
  }
  for (const host of drillHosts) {
    const rt = lab.world.host(host);
    assert.equal(rt.power, 'off', `${host} is powered off again`);
    for (const vlan of [...drillVlanOf.values()].filter((v): v is number => v !== undefined)) {
      assert.ok(!lab.world.anyNicOnVlan(host, vlan), `${host} left drill VLAN ${vlan}`);
    }
  }
  // Past a whole detection window (4 × 250 ms) and the BMC check after it.
  await new Promise((r) => setTimeout(r, 3_000));
  verdictSub.unsubscribe();
  assert.deepEqual(failedVerdicts.filter((h) => drillHosts.includes(h)), [], 'no host.failed for the hosts the drill gave back');
  const clones = events.filter((e) => e.source === 'san' && e.action === 'clone').map((e) => String(e.detail?.['clone']));
  assert.ok(clones.length > 0, 'the drill cloned LUNs');
  for (const clone of clones) assert.ok(!lab.world.hasLun(clone), `clone ${clone} was deleted`);
  t.diagnostic(`drill borrowed ${drillHosts.join(', ')}; phases ${observer.phasesOf(incidentId).join(' → ')}`);
});

test('a drill stopped while it recovers puts every device back as it was', { timeout: 240_000 }, async () => {
  const before = await takeDeviceSnapshot(system);
  const drillId = await startDrill('r1');
  // Stopped mid-way: as soon as any rehearsed server has a step under way.
  await waitFor('the drill under way', () => progressOf(drillId)?.servers.some((s) => s.step !== 'unplaced' && s.step !== 'pending') === true, 60_000);
  const final = await stopDrill(drillId);
  assert.equal(final.cleanup?.complete, true, JSON.stringify(final.cleanup));
  await expectNoTrace(before, 'after a drill stopped mid-recovery');
});

test('two drills in a row each put every device back as it was', { timeout: 300_000 }, async () => {
  for (const rack of ['r2', 'r2']) {
    const before = await takeDeviceSnapshot(system);
    const drillId = await startDrill(rack);
    await untilUp(drillId);
    const final = await stopDrill(drillId);
    assert.equal(final.cleanup?.complete, true, JSON.stringify(final.cleanup));
    await expectNoTrace(before, `after drill ${drillId} of ${rack}`);
    // Its report is kept, and says what the final progress said.
    const store = createStore(system.redisUrl);
    try {
      await waitFor(`drill ${drillId}'s report`, async () => (await store.drills.report(drillId)) !== undefined, 10_000);
      const report = await store.drills.report(drillId);
      assert.equal(report?.phase, final.phase);
      assert.equal(report?.cleanup?.complete, true);
    } finally {
      await store.close();
    }
  }
});

test('what a borrowed host installed on its own disk is wiped at cleanup', { todo: 'needs a wipe image booted at cleanup (README, Drills)' }, () => {
  assert.deepEqual(diskTraces, []);
});

test('the drilled rack burning during its drill: the drill stops and gives its hosts back, and every server of the rack is recovered', { timeout: 300_000 }, async () => {
  const drillId = await startDrill('r3');
  await untilUp(drillId);
  const burned = burnRack(system, 'r3');
  const drill = await untilEnded(drillId);
  assert.equal(drill.cleanup?.complete, true, JSON.stringify(drill.cleanup));
  // The capacity the drill held comes back when it ends: a server the first plan could not place is planned again then.
  const { observer, lab } = system;
  await waitFor('every server of r3 heartbeating from a new host', () => burned.lost.every(({ server }) => {
    const at = observer.serverHeartbeats.get(server.id);
    return at !== undefined && at.at > burned.burnedAt && !burned.dead.includes(at.host);
  }), 180_000).catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, burned.lost, burned.dead, burned.burnedAt), []);
});
