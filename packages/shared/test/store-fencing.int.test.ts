import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useRedisStores } from './redis-stores.ts';

const { via } = useRedisStores(4);

test('store fencing - a token older than the newest seen for its site is rejected', async () => {
  const s = via(0);
  assert.deepEqual(await s.fencing.check('site1', 5), { accepted: true });
  assert.deepEqual(await s.fencing.check('site1', 5), { accepted: true }, 'the same planner keeps working');
  assert.deepEqual(await s.fencing.check('site1', 7), { accepted: true });
  assert.deepEqual(await s.fencing.check('site1', 5), { accepted: false, newest: 7 });
  assert.deepEqual(await s.fencing.check('site2', 1), { accepted: true }, 'sites are fenced separately');
});

test('store fencing - racing executors never accept an old token after a newer one', async () => {
  const tokens = Array.from({ length: 400 }, (_, i) => i);
  const results = await Promise.all(
    tokens.map(async (t) => ({ t, r: await via(t).fencing.check('race', t), at: process.hrtime.bigint() })),
  );
  const newest = Math.max(...tokens);
  const rejectedNewest = results.filter((x) => x.t === newest && !x.r?.accepted);
  assert.equal(rejectedNewest.length, 0, 'the newest token is always accepted');
  for (const x of results) if (x.r && !x.r.accepted) assert.ok(x.r.newest > x.t);
  assert.deepEqual(await via(0).fencing.check('race', newest - 1), { accepted: false, newest });
});
