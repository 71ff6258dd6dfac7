/**
 * Twenty recoveries in a row, two at a time, with two executors and two planners, on
 * switches that take their time over SNMP (so two executors changing one
 * switch's port lists would overlap). After each, every NIC of every host a
 * server was recovered to — this one's and all before it — must carry exactly
 * its servers' VLANs, read from the lab's switches: a later recovery's
 * change to a shared port list must not undo an earlier one's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkServersRunElsewhere, expectEveryNicCarriesItsVlans, serversOn, type LostServer } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

const ROUNDS = 20;
let system: RunningSystem;

before(async () => {
  // 64 hosts in 4 racks: room for twenty servers to move.
  system = await startSystem({ size: { sites: 1, racksPerSite: 4, hostsPerRack: 16 }, executors: 2, planners: 2 });
  for (const sw of system.lab.inventory.switches) system.lab.faults.setSwitch(sw.id, { mode: 'slow', latencyMs: 5, jitterMs: 20 });
});
after(() => system?.stop());

test(`${ROUNDS} recoveries in a row leave every NIC of every recovered host carrying exactly its servers' VLANs`, { timeout: 900_000 }, async () => {
  const { lab, observer } = system;
  // Hosts running a server, taken round-robin across racks so every switch sees changes.
  const byRack = new Map<string, string[]>();
  for (const h of lab.inventory.hosts) {
    if (h.role !== 'production' || serversOn(lab.inventory, [h.id]).length === 0) continue;
    byRack.set(h.rack, [...(byRack.get(h.rack) ?? []), h.id]);
  }
  const racks = [...byRack.values()];
  const victims = Array.from({ length: Math.max(...racks.map((r) => r.length)) }, (_, i) => racks.flatMap((r) => (r[i] === undefined ? [] : [r[i]]))).flat();
  assert.ok(victims.length >= ROUNDS, `${victims.length} production hosts for ${ROUNDS} rounds`);

  // Two hosts of different racks fail together in each round: two incidents' changes land on the switches at once.
  const recovered: LostServer[] = [];
  const pairs = Array.from({ length: ROUNDS / 2 }, (_, i) => victims.slice(2 * i, 2 * i + 2));
  for (const [round, hosts] of pairs.entries()) {
    const killedAt = Date.now();
    for (const host of hosts) lab.faults.killHost(host);
    for (const host of hosts) {
      const lost = serversOn(lab.inventory, [host]);
      const final = await observer
        .waitForOutcome(`round ${round + 1}: the incident for ${host}`, (p) => p.hosts.includes(host) && p.openedAt >= killedAt - 5_000, 120_000)
        .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
      assert.equal(final.phase, 'recovered', `round ${round + 1} (${host}): ${JSON.stringify(final.report)}\n${system.logs()}`);
      assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, lost, [host], killedAt), [], `round ${round + 1} (${host})`);
      recovered.push(...lost);
    }
    expectEveryNicCarriesItsVlans(lab, recovered);
  }
});
