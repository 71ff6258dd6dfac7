/**
 * A DR drill for a rack: its servers come up on spare capacity, on drill
 * VLANs with cloned LUNs, while production runs on untouched; stopping the
 * drill returns every borrowed host and removes the clones.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createStore, subjects, topics } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { eventsSince, serversOn } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: 'tiny' });
});
after(() => system?.stop());

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
