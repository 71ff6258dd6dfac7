/**
 * Fewer machines than lost servers: Firebreak preempts low-priority work,
 * turns hosts into hypervisors and packs servers onto them as VMs, keeps
 * bare-metal-only servers on bare metal, and reports what it could not place.
 * The topology (2 racks of 12, seed 102) loses 9 servers with rack r1 and has
 * 4 usable hosts left in r2; a bare-metal-only server is among those that fit.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkFencedBeforeGrant, checkNoDuplicateActions, checkServersRunElsewhere, eventsSince, serversOn } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: { sites: 1, racksPerSite: 2, hostsPerRack: 12 }, seed: 102 });
});
after(() => system?.stop());

test('scarcity: hypervisors are made, VMs packed, low-priority work preempted, the rest reported', { timeout: 180_000 }, async (t) => {
  const { lab, observer } = system;
  const inventory = lab.inventory;
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const burnedAt = Date.now();
  const dead = lab.faults.burnRack('r1');
  const lost = serversOn(inventory, dead);
  const usable = inventory.hosts.filter((h) => !dead.includes(h.id) && h.role !== 'production');
  assert.ok(usable.length < lost.length, `fewer usable hosts (${usable.length}) than lost servers (${lost.length})`);

  const final = await observer
    .waitForOutcome('the incident for rack r1', (p) => p.hosts.some((h) => dead.includes(h)), 150_000)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.equal(final.phase, 'degraded', 'not everything fits, so the incident ends degraded');

  const byServer = new Map(final.servers.map((s) => [s.server, s]));
  const unplaced = final.servers.filter((s) => s.step === 'unplaced');
  const recovered = lost.filter(({ server }) => byServer.get(server.id)?.step === 'done');
  assert.ok(unplaced.length > 0, 'some servers are reported unplaced');
  for (const s of unplaced) assert.match(s.message ?? '', /\S+: .*not recovered: /, `${s.server} carries its reason`);
  assert.equal(recovered.length + unplaced.length, lost.length, `every lost server is recovered or reported: ${JSON.stringify(final.servers)}`);

  const hostRoles = new Map(inventory.hosts.map((h) => [h.id, h.role]));
  const vms = final.servers.filter((s) => s.step === 'done' && s.mode === 'vm');
  const converted = new Set(vms.map((s) => s.host).filter((h): h is string => h !== null && hostRoles.get(h) !== 'hypervisor'));
  assert.ok(converted.size > 0, 'a spare or repurposable host became a hypervisor');
  for (const host of converted) {
    assert.ok(lab.world.runsHypervisor(host), `${host} boots the hypervisor image`);
    assert.ok(vms.filter((v) => v.host === host).length >= 2, `${host} hosts several VMs`);
  }
  const preempted = [...new Set(final.servers.map((s) => s.host))].filter((h): h is string => h !== null && hostRoles.get(h) === 'repurposable');
  assert.ok(preempted.length > 0, 'a repurposable host running low-priority work was taken');
  const bareMetalOnly = recovered.filter(({ server }) => server.bareMetalOnly);
  assert.ok(bareMetalOnly.length > 0, 'a bare-metal-only server is recovered');
  for (const { server } of bareMetalOnly) assert.equal(byServer.get(server.id)?.mode, 'bare-metal', `${server.id} must not run under a hypervisor`);
  const tier0 = lost.filter(({ server }) => server.priority === 0);
  assert.ok(tier0.length > 0 && tier0.every(({ server }) => byServer.get(server.id)?.step === 'done'), 'every tier-0 server is recovered');

  const events = eventsSince(lab, sinceSeq);
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, recovered, dead, burnedAt), []);
  assert.deepEqual(checkFencedBeforeGrant(events, lost), []);
  assert.deepEqual(checkNoDuplicateActions(events), []);
  t.diagnostic(lost.map(({ server }) => `${server.id} t${server.priority}${server.bareMetalOnly ? ' bmo' : ''} ${server.cpus}/${server.memoryGiB} → ${byServer.get(server.id)?.mode ?? '-'} ${byServer.get(server.id)?.step}`).join('; '));
  t.diagnostic(`recovered ${recovered.length} (${vms.length} as VMs on ${converted.size} converted host(s)), unplaced ${unplaced.length}: ${unplaced.map((s) => s.message).join('; ')}`);
});
