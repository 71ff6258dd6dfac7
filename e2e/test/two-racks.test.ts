/**
 * Two racks burn 200 ms apart. The detector reports one domain.failed per
 * rack, not a rack and a scatter of single hosts; the planner treats every
 * host of both racks as gone, spares included, so no server is placed in a
 * burned rack; every server there is capacity for comes back, and the ledger
 * says why each of the rest did not.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { createStore } from '@firebreak/shared';
import { checkFencedBeforeGrant, checkNoDuplicateActions, eventsSince, serversOn } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: { sites: 1, racksPerSite: 4, hostsPerRack: 8 }, executors: 2, planners: 2 });
});
after(() => system?.stop());

test('two racks burned 200 ms apart: one domain.failed each, nothing placed in either, every server with capacity recovered', { timeout: 300_000 }, async (t) => {
  const { lab, observer } = system;
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const burnedAt = Date.now();
  const r1 = lab.faults.burnRack('r1');
  await sleep(200);
  const r2 = lab.faults.burnRack('r2');
  const allBurnedAt = Date.now();
  const burned = new Set([...r1, ...r2]);
  const lost = serversOn(lab.inventory, [...burned]);

  for (const [rack, hosts] of [['r1', r1], ['r2', r2]] as const) {
    await observer
      .waitForOutcome(`the incident for rack ${rack}`, (p) => p.hosts.some((h) => hosts.includes(h)), 200_000)
      .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  }
  const domains = observer.domainFailures.filter((d) => d.detectedAt >= burnedAt - 1_000);
  assert.deepEqual(domains.map((d) => `${d.domain.kind} ${d.domain.id}`).sort(), ['rack r1', 'rack r2'], 'one domain.failed per rack');
  const scattered = observer.hostFailures.filter((v) => burned.has(v.host));
  assert.deepEqual(scattered.map((v) => v.host), [], 'no burned host reported on its own');

  // Where each lost server is now, by its own heartbeat since both racks burned: never in a burned rack. A second's
  // margin lets heartbeats sent just before the burn drain; no recovery is that fast (detection alone takes longer).
  const recovered = lost.filter(({ server }) => (observer.serverHeartbeats.get(server.id)?.at ?? 0) > allBurnedAt + 1_000);
  for (const { server } of recovered) {
    const host = observer.serverHeartbeats.get(server.id)?.host ?? '?';
    assert.ok(!burned.has(host), `${server.id} runs on ${host}, in a burned rack`);
    for (const vlan of server.vlans) assert.ok(lab.world.hostOnVlan(host, vlan), `${server.id}: ${host} carries VLAN ${vlan}`);
    for (const lun of server.luns) assert.ok(lab.world.canSee(host, lun), `${server.id}: ${host} sees LUN ${lun}`);
  }
  const events = eventsSince(lab, sinceSeq);
  assert.deepEqual(checkFencedBeforeGrant(events, lost), []);
  assert.deepEqual(checkNoDuplicateActions(events), []);

  const store = createStore(system.redisUrl);
  try {
    const ledger = await store.ledger.read();
    for (const host of burned) assert.deepEqual(ledger.hosts.get(host)?.status, { role: 'down' }, `${host} (${lab.inventory.hosts.find((h) => h.id === host)?.role}) is down`);
    const unrecovered = lost.filter((l) => !recovered.includes(l));
    for (const { server } of unrecovered) {
      const placement = ledger.servers.get(server.id)?.placement;
      // Only the lack of a fitting host may keep a server down: never a step that failed.
      assert.ok(placement?.state === 'unrecovered' && !/heartbeat|power|storage|network|boot|timeout|aborted/i.test(placement.reason), `${server.id}: ${JSON.stringify(placement)}`);
    }
    // Capacity was used: no server stays down while a host it fits (arch, CPUs, memory) sits idle outside the burned racks.
    const idle = lab.inventory.hosts.filter((h) => !burned.has(h.id) && ['spare', 'repurposable'].includes(ledger.hosts.get(h.id)?.status.role ?? ''));
    for (const { server } of unrecovered) {
      const fits = idle.filter((h) => h.arch === server.arch && h.cpus >= server.cpus && h.memoryGiB >= server.memoryGiB);
      assert.deepEqual(fits.map((h) => h.id), [], `${server.id} stays down (${JSON.stringify(ledger.servers.get(server.id)?.placement)}) while hosts it fits are idle`);
    }
    t.diagnostic(`${recovered.length} of ${lost.length} servers recovered; idle outside the burned racks: ${idle.map((h) => `${h.id} (${h.arch})`).join(', ')}`);
  } finally {
    await store.close();
  }
});
