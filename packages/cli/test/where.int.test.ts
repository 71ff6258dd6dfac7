import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore, Inventory, ledgerSeedOf, type Store } from '@firebreak/shared';
import { startRedis, type TestServer } from '@firebreak/shared/testing';
import { generateTopology } from '@firebreak/lab';
import { isolatedEnv, runMain } from './cli-process.ts';

let redis: TestServer;
let store: Store;
const inventory = Inventory.parse(generateTopology({ size: 'tiny', seed: 1 }));
const moved = inventory.assignments.find((a) => a.mode === 'bare-metal' && a.host === 'r1-h01');
const why = { kind: 'incident', id: 'inc-r1-h01-1' } as const;

before(async () => {
  Object.assign(process.env, isolatedEnv(await mkdtemp(join(tmpdir(), 'fb-state-'))));
  redis = await startRedis();
  store = createStore(redis.url);
});
after(async () => {
  await store?.close();
  await redis?.stop();
});

test('cli where - with an empty ledger it says no planner has run yet and exits 2', async () => {
  const run = await runMain(['where', '--redis-url', redis.url]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /the fleet ledger is empty: no planner has been elected/);
});

test('cli where and history - where each server runs, VMs under their hypervisor, and what one server has been', async () => {
  assert.ok(moved, 'r1-h01 runs a server in the tiny lab');
  await store.ledger.seed(ledgerSeedOf(inventory, Date.parse('2026-12-01T00:00:00Z')));
  // A recovery put r1-h01's server on the standing hypervisor r2-h08, step by step.
  const at = Date.parse('2026-12-07T10:00:00Z');
  await store.ledger.apply({ site: 'site1', token: 2, why, at, servers: [{ id: moved.server, version: 1, placement: { state: 'down', host: 'r1-h01' } }], hosts: [{ id: 'r1-h01', version: 1, status: { role: 'down' } }] });
  await store.ledger.apply({
    site: 'site1', token: 2, why, at: at + 4_000,
    servers: [{ id: moved.server, version: 2, placement: { state: 'vm', hypervisor: 'r2-h08' } }],
    hosts: [{ id: 'r2-h08', version: 1, status: { role: 'hypervisor', servers: [moved.server], converted: false } }],
  });

  const fleet = await runMain(['where', '--redis-url', redis.url]);
  assert.equal(fleet.code, 0, fleet.stderr);
  assert.match(fleet.stdout, /^r1-h01: down since 2026-12-07T10:00:00Z, incident inc-r1-h01-1 \(token 2\)$/m);
  assert.match(fleet.stdout, new RegExp(`^r2-h08: hypervisor carrying ${moved.server} since 2026-12-07T10:00:04Z.*\\n  └ ${moved.server}: VM on hypervisor r2-h08 since 2026-12-07T10:00:04Z`, 'm'));
  const other = inventory.assignments.find((a) => a.mode === 'bare-metal' && a.host === 'r1-h02');
  assert.ok(other);
  assert.match(fleet.stdout, new RegExp(`^r1-h02: runs ${other.server} since 2026-12-01T00:00:00Z, inventory seed$`, 'm'));

  const one = await runMain(['where', moved.server, '--json', '--redis-url', redis.url]);
  assert.equal(one.code, 0, one.stderr);
  const doc = JSON.parse(one.stdout) as { server: { id: string; placement: unknown; version: number; why: unknown } };
  assert.deepEqual([doc.server.id, doc.server.placement, doc.server.version, doc.server.why], [moved.server, { state: 'vm', hypervisor: 'r2-h08' }, 3, why]);

  const history = await runMain(['history', moved.server, '--redis-url', redis.url]);
  assert.equal(history.code, 0, history.stderr);
  assert.deepEqual(history.stdout.trim().split('\n'), [
    `server ${moved.server}:`,
    '  2026-12-01T00:00:00Z  v1  bare metal on r1-h01  (inventory seed)',
    '  2026-12-07T10:00:00Z  v2  down (was on r1-h01), being recovered  (incident inc-r1-h01-1 (token 2))',
    '  2026-12-07T10:00:04Z  v3  VM on hypervisor r2-h08  (incident inc-r1-h01-1 (token 2))',
  ]);

  const unknown = await runMain(['where', 'no-such-box', '--redis-url', redis.url]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no server or host "no-such-box" in the fleet ledger \(\d+ servers, 24 hosts\); "firebreak where" lists them/);
  const noName = await runMain(['history', '--redis-url', redis.url]);
  assert.equal(noName.code, 2);
  assert.match(noName.stderr, /history takes one SERVER or HOST/);
});
