import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '@firebreak/shared';
import { checkExecutorVariables, executorConfigSchema, executorLimits } from '../src/index.ts';

const base = { NATS_URL: 'nats://127.0.0.1:4222', REDIS_URL: 'redis://127.0.0.1:6379' };

test('executor config - every kind gets FB_EXEC_PER_KIND unless its own variable overrides it', () => {
  assert.deepEqual(executorLimits(loadConfig(executorConfigSchema, base)), { perKind: {}, defaultPerKind: 64, perDevice: 4 });
  const limits = executorLimits(loadConfig(executorConfigSchema, { ...base, FB_EXEC_PER_KIND: '8', FB_EXEC_PER_KIND_POWER: '2', FB_EXEC_PER_KIND_VM: '', FB_EXEC_PER_DEVICE: '3' }));
  assert.deepEqual(limits, { perKind: { power: 2 }, defaultPerKind: 8, perDevice: 3 }, 'an empty variable counts as unset');
});

test('executor config - a bad per-kind limit is refused, naming the variable and what it takes', () => {
  assert.throws(
    () => loadConfig(executorConfigSchema, { ...base, FB_EXEC_PER_KIND_NET: '0', FB_EXEC_PER_KIND_STORAGE: 'many' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /FB_EXEC_PER_KIND_NET: .*net commands at once, a whole number ≥ 1; unset, FB_EXEC_PER_KIND applies.*got "0"/);
      assert.match(err.message, /FB_EXEC_PER_KIND_STORAGE: .*got "many"/);
      return true;
    },
  );
});

test('executor config - a per-kind variable for no kind is refused rather than silently ignored', () => {
  checkExecutorVariables({ ...base, FB_EXEC_PER_KIND: '8', FB_EXEC_PER_KIND_BOOT: '1', FB_EXEC_PER_KIND_SAN: '' });
  assert.throws(
    () => checkExecutorVariables({ ...base, FB_EXEC_PER_KIND_SAN: '4' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /FB_EXEC_PER_KIND_SAN: no command kind "san"; the per-kind limits are FB_EXEC_PER_KIND_POWER, FB_EXEC_PER_KIND_NET, FB_EXEC_PER_KIND_STORAGE/);
      return true;
    },
  );
});

test('executor config - FB_EXEC_CONCURRENCY, which no longer means anything, is refused naming what replaced it', () => {
  checkExecutorVariables({ ...base, FB_EXEC_CONCURRENCY: '' });
  assert.throws(
    () => checkExecutorVariables({ ...base, FB_EXEC_CONCURRENCY: '64', FB_EXEC_PER_KIND_SAN: '4' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /FB_EXEC_CONCURRENCY: no longer read: each command kind has its own consumer with FB_EXEC_PER_KIND_<KIND> handler slots .*set those instead/);
      assert.match(err.message, /FB_EXEC_PER_KIND_SAN: no command kind "san"/, 'every problem at once');
      return true;
    },
  );
});
