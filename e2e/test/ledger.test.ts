/**
 * The fleet ledger, end to end: where a server runs survives a planner
 * handover, and a recovered server whose new host fails is recovered again.
 * Judged at the lab's devices and by the servers' own heartbeats.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createStore, type Store } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { checkFencedBeforeGrant, checkNoDuplicateActions, checkServersRunElsewhere, eventsSince, serversOn, type LostServer } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;
let store: Store;

before(async () => {
  system = await startSystem({ size: 'tiny', executors: 2 });
  store = createStore(system.redisUrl);
});
after(async () => {
  await store?.close();
  await system?.stop();
});

/** Kills a host (its BMC still answers: off) and waits for its incident to end; returns the servers it ran, with where they went. */
async function killAndRecover(host: string, lost: LostServer[]): Promise<Map<string, string>> {
  const { lab, observer } = system;
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const killedAt = Date.now();
  lab.faults.killHost(host);
  const final = await observer
    .waitForOutcome(`the incident for ${host}`, (p) => p.hosts.includes(host) && p.openedAt >= killedAt - 10_000, 120_000)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.equal(final.phase, 'recovered', `${JSON.stringify(final.report)}\n${system.logs()}`);
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, lost, [host], killedAt), []);
  assert.deepEqual(checkFencedBeforeGrant(eventsSince(lab, sinceSeq), lost), []);
  return new Map(lost.map(({ server }) => [server.id, observer.serverHeartbeats.get(server.id)?.host ?? '?']));
}

let firstHome = '';
let firstServer = '';

test('a planner that takes over after an incident never gives a host that carries a recovered server to another server', { timeout: 240_000 }, async () => {
  const { lab, observer } = system;
  // Bare-metal-only servers: each must get a whole host, so a host given twice would be caught.
  const [lostA] = serversOn(lab.inventory, ['r1-h06']);
  assert.ok(lostA?.server.bareMetalOnly, 'r1-h06 runs a bare-metal-only server');
  const placedA = await killAndRecover('r1-h06', [lostA]);
  firstServer = lostA.server.id;
  firstHome = placedA.get(firstServer) ?? '';

  // The ledger says what the devices say, and keeps the why.
  const entry = await store.ledger.server(firstServer);
  const asVm = lab.world.runsHypervisor(firstHome);
  assert.deepEqual(entry?.placement, asVm ? { state: 'vm', hypervisor: firstHome } : { state: 'bare-metal', host: firstHome });
  assert.equal(entry?.why.kind, 'incident');
  const homeStatus = (await store.ledger.host(firstHome))?.status;
  if (asVm) assert.ok(homeStatus?.role === 'hypervisor' && homeStatus.servers.includes(firstServer), JSON.stringify(homeStatus));
  else assert.deepEqual(homeStatus, { role: 'home', server: firstServer });
  assert.deepEqual((await store.ledger.host('r1-h06'))?.status, { role: 'down' });

  // Handover: the planner that did it is gone; a new one reads the ledger, not the inventory.
  await system.services.get('planner')?.kill();
  const planner2 = system.startService('planner', 'planner-2');
  await planner2.waitForLog((l) => l.includes('planning for the site'), 60_000);

  const [lostB] = serversOn(lab.inventory, ['r3-h05']);
  assert.ok(lostB?.server.bareMetalOnly, 'r3-h05 runs a bare-metal-only server');
  const placedB = await killAndRecover('r3-h05', [lostB]);
  // Beside it as another VM on the same hypervisor is fine; on bare metal, over it, never.
  const placedOnFirst = placedB.get(lostB.server.id) === firstHome;
  assert.ok(!placedOnFirst || (await store.ledger.server(lostB.server.id))?.placement.state === 'vm', `${lostB.server.id} was put on ${firstHome}, which runs ${firstServer}`);
  // The first server still runs where it was put: its host was not rebooted or rewired under it.
  const since = Date.now();
  await waitFor(`${firstServer} to heartbeat again from ${firstHome}`, () => (observer.serverHeartbeats.get(firstServer)?.at ?? 0) > since, 10_000);
  assert.equal(observer.serverHeartbeats.get(firstServer)?.host, firstHome);
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, [lostA], ['r1-h06'], since), []);
});

test('a recovered server whose new host fails is recovered again, on a third host', { timeout: 240_000 }, async () => {
  assert.ok(firstHome && firstServer, 'the first test recovered a server');
  const server = system.lab.inventory.servers.find((s) => s.id === firstServer);
  assert.ok(server);
  const placed = await killAndRecover(firstHome, [{ server, formerHost: firstHome }]);
  const third = placed.get(firstServer);
  assert.ok(third !== undefined && third !== firstHome && third !== 'r1-h06', `${firstServer} now on ${third}`);
  const placement = (await store.ledger.server(firstServer))?.placement;
  assert.deepEqual(placement, system.lab.world.runsHypervisor(third) ? { state: 'vm', hypervisor: third } : { state: 'bare-metal', host: third });
  const history = await store.ledger.history('server', firstServer);
  assert.deepEqual(
    history.map(({ placement: p }) => (p?.state === 'bare-metal' ? p.host : p?.state === 'vm' ? p.hypervisor : p?.state)),
    ['r1-h06', 'down', firstHome, 'down', third],
    'its history: home, down, recovered, down, recovered again',
  );
  assert.deepEqual(checkNoDuplicateActions(eventsSince(system.lab, 0)), []);
});
