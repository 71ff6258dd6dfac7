import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { errorCodes, FirebreakError } from '../src/errors.ts';
import { redisKeys, type Store } from '../src/store/index.ts';
import { useRedisStores } from './redis-stores.ts';

const { via } = useRedisStores(2, { flushBeforeEach: true });
/** Writes through one connection and reads through another. */
const w = (): Store => via(0);
const r = (): Store => via(1);

// Stand-ins for the real inventory schemas: the store only needs some schema.
const Inventory = z.object({
  generation: z.number().int(),
  hosts: z.array(z.object({ id: z.string(), rack: z.string() })),
});

function inventory(generation: number): z.infer<typeof Inventory> {
  return { generation, hosts: Array.from({ length: 50 }, (_, i) => ({ id: `h${i}`, rack: `r${generation}` })) };
}

test('store - inventory: put and get round trip with a rising version', async () => {
  assert.equal(await r().inventory.getInventory(Inventory), undefined);
  assert.equal(await w().inventory.putInventory(inventory(0)), 1);
  assert.deepEqual(await r().inventory.getInventory(Inventory), { version: 1, inventory: inventory(0) });
  assert.equal(await w().inventory.putInventory(inventory(1)), 2);
  assert.deepEqual(await r().inventory.getInventory(Inventory), { version: 2, inventory: inventory(1) });
});

test('store - inventory: a reader never sees one document with another version', async () => {
  const writes = (async () => {
    for (let g = 0; g < 200; g++) await w().inventory.putInventory(inventory(g));
  })();
  let done = false;
  void writes.finally(() => (done = true));
  let reads = 0;
  while (!done) {
    const got = await r().inventory.getInventory(Inventory);
    if (got === undefined) continue;
    reads++;
    assert.equal(got.inventory.generation, got.version - 1);
    assert.ok(got.inventory.hosts.every((h) => h.rack === `r${got.inventory.generation}`));
  }
  await writes;
  assert.ok(reads > 0);
});

test('store - inventory: a stored document that fails the schema is an INVALID_INVENTORY error', async () => {
  await w().inventory.putInventory({ generation: 'one', hosts: [] });
  await assert.rejects(r().inventory.getInventory(Inventory), (err: unknown) => {
    assert.ok(err instanceof FirebreakError);
    assert.equal(err.code, errorCodes.invalidInventory);
    assert.match(err.message, /inventory in Redis does not match its schema/);
    assert.match(err.message, /generation/);
    return true;
  });
});

test('store - inventory: a failed command inside the MULTI is an error, not a silent partial write', async () => {
  await w().redis.set(redisKeys.inventory, 'not a hash');
  await assert.rejects(w().inventory.putInventory(inventory(0)), /replacing the inventory: WRONGTYPE/);
});
