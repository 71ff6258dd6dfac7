import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ledgerDifferences, ledgerSeedOf } from '../src/fleet/ledger-seed.ts';
import { Inventory } from '../src/schemas/inventory.schema.ts';
import { LedgerConflictError, StaleLedgerTokenError, type Store } from '../src/store/index.ts';
import { sampleInventory } from '../src/testing/samples.ts';
import { useRedisStores } from './redis-stores.ts';

const { via } = useRedisStores(3, { flushBeforeEach: true });
const why = { kind: 'incident', id: 'inc-1' } as const;

async function seeded(): Promise<Store> {
  const store = via(0);
  await store.ledger.seed({
    at: 1_000,
    servers: new Map([['web', { state: 'bare-metal', host: 'h1' }]]),
    hosts: new Map([
      ['h1', { role: 'home', server: 'web' }],
      ['h2', { role: 'spare' }],
    ]),
  });
  return store;
}

test('fleet ledger - a recovery step moves a server and its new host in one change, with a history line for each', async () => {
  const store = await seeded();
  await store.ledger.apply({
    site: 'dc1', token: 3, why, at: 2_000,
    servers: [{ id: 'web', version: 1, placement: { state: 'bare-metal', host: 'h2' } }],
    hosts: [{ id: 'h2', version: 1, status: { role: 'home', server: 'web' } }, { id: 'h1', version: 1, status: { role: 'down' } }],
  });
  // Read through another connection: what is written is what anyone sees.
  const ledger = await via(1).ledger.read();
  assert.deepEqual(ledger.servers.get('web'), { version: 2, since: 2_000, why, token: 3, placement: { state: 'bare-metal', host: 'h2' } });
  assert.deepEqual(ledger.hosts.get('h2')?.status, { role: 'home', server: 'web' });
  assert.deepEqual(ledger.hosts.get('h1')?.status, { role: 'down' });
  const history = await via(2).ledger.history('server', 'web');
  assert.deepEqual(history.map((h) => [h.version, h.why.kind, h.placement]), [
    [1, 'inventory', { state: 'bare-metal', host: 'h1' }],
    [2, 'incident', { state: 'bare-metal', host: 'h2' }],
  ]);
});

test('fleet ledger - a change from a stale read is refused whole, and so is one from a deposed planner', async () => {
  const store = await seeded();
  await store.ledger.apply({ site: 'dc1', token: 5, why, at: 2_000, hosts: [{ id: 'h2', version: 1, status: { role: 'down' } }] });

  // A second writer read h2 at version 1 as well: nothing of its change lands, not even the server part.
  await assert.rejects(
    via(1).ledger.apply({
      site: 'dc1', token: 5, why, at: 3_000,
      servers: [{ id: 'web', version: 1, placement: { state: 'bare-metal', host: 'h2' } }],
      hosts: [{ id: 'h2', version: 1, status: { role: 'home', server: 'web' } }],
    }),
    (err: unknown) => err instanceof LedgerConflictError && err.id === 'h2' && err.version === 2,
  );
  assert.deepEqual((await store.ledger.server('web'))?.placement, { state: 'bare-metal', host: 'h1' });

  // The planner that held token 4 lost its lease to token 5: its writes are refused, whatever version it names.
  await assert.rejects(
    via(2).ledger.apply({ site: 'dc1', token: 4, why, at: 3_000, servers: [{ id: 'web', version: 1, placement: { state: 'down', host: 'h1' } }] }),
    (err: unknown) => err instanceof StaleLedgerTokenError && err.newest === 5 && /token 4/.test(err.message),
  );
  assert.equal((await store.ledger.server('web'))?.version, 1);
  // Another site's leader has its own tokens.
  await store.ledger.apply({ site: 'dc2', token: 1, why, at: 3_000, servers: [{ id: 'web', version: 1, placement: { state: 'down', host: 'h1' } }] });
  assert.equal((await store.ledger.history('server', 'web')).length, 2);
});

test('fleet ledger - seeding adds what is missing and keeps what incidents wrote; a re-import reports the differences', async () => {
  const inventory = Inventory.parse(sampleInventory());
  const store = via(0);
  const seed = ledgerSeedOf(inventory, 1_000);
  const first = await store.ledger.seed(seed);
  assert.equal(first.servers, inventory.servers.length);
  assert.equal(first.hosts, inventory.hosts.length);
  assert.deepEqual(ledgerDifferences(seed, await store.ledger.read()), []);

  const moved = inventory.assignments.find((a) => a.mode === 'bare-metal');
  const spare = inventory.hosts.find((h) => h.role === 'spare');
  assert.ok(moved && spare);
  await store.ledger.apply({ site: 'dc1', token: 1, why, at: 2_000, servers: [{ id: moved.server, version: 1, placement: { state: 'bare-metal', host: spare.id } }] });

  const again = await store.ledger.seed(ledgerSeedOf(inventory, 3_000));
  assert.deepEqual(again, { servers: 0, hosts: 0 }, 'a second seed adds nothing');
  assert.deepEqual((await store.ledger.server(moved.server))?.placement, { state: 'bare-metal', host: spare.id }, 'the recovery is kept');
  const differences = ledgerDifferences(seed, await store.ledger.read());
  assert.equal(differences.length, 1);
  assert.match(differences[0] ?? '', new RegExp(`server ${moved.server}: the inventory says .*"host":"${moved.host}".*the ledger .*"host":"${spare.id}".*incident inc-1`));
});
