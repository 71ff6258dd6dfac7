import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, ensureStreams, freePort, streams, type Bus } from '@firebreak/shared';
import { startNats, type TestServer } from '@firebreak/shared/testing';
import { isolatedEnv, runMain } from './cli-process.ts';

let nats: TestServer;
let bus: Bus;

before(async () => {
  nats = await startNats();
  bus = await connectBus({ url: nats.url, name: 'cli-streams-test' });
  Object.assign(process.env, isolatedEnv(await mkdtemp(join(tmpdir(), 'fb-state-'))));
});

after(async () => {
  await bus?.close();
  await nats?.stop();
});

test('cli - pointed at a NATS server Firebreak\'s services have not set up, commands exit 2 saying so and create no stream or consumer', async () => {
  const deadRedis = `redis://127.0.0.1:${await freePort()}`;
  const cases = [
    ['status', '--nats-url', nats.url, '--redis-url', deadRedis],
    ['drill', 'start', 'rack', 'r2', '--nats-url', nats.url],
    ['drill', 'start', 'rack', 'r2', '--wait', '--nats-url', nats.url],
    ['drill', 'stop', 'rack-r2-x1', '--nats-url', nats.url, '--redis-url', deadRedis],
    ['drill', 'list', '--nats-url', nats.url, '--redis-url', deadRedis],
    ['plan', '--what-if', 'rack', 'r2', '--timeout', '1s', '--nats-url', nats.url],
  ];
  for (const args of cases) {
    const run = await runMain(args);
    const what = `firebreak ${args.join(' ')}`;
    assert.equal(run.code, 2, `${what}: ${run.stdout}${run.stderr}`);
    assert.equal(run.stdout, '', what);
    assert.match(run.stderr, new RegExp(`NATS at ${nats.url} has no stream ${Object.values(streams).join(', ')}: Firebreak's services have not set up this NATS server`), what);
    assert.match(run.stderr, /point --nats-url at the NATS server they use/, what);
  }
  const account = await bus.jsm.getAccountInfo();
  assert.deepEqual({ streams: account.streams, consumers: account.consumers }, { streams: 0, consumers: 0 });
  assert.deepEqual(await bus.jsm.streams.list().next(), []);
});

test('cli - on a server the services set up, commands use the streams as they are and change none', async () => {
  await ensureStreams(bus.jsm);
  // An operator's choice the CLI must not "correct" back to its own idea of the stream.
  const events = (await bus.jsm.streams.info(streams.events)).config;
  const hourNs = 3_600_000_000_000;
  await bus.jsm.streams.update(streams.events, { ...events, max_age: hourNs });

  const run = await runMain(['drill', 'start', 'rack', 'r2', '--nats-url', nats.url]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /drill rack-r2-\S+ started/);

  assert.equal((await bus.jsm.streams.info(streams.events)).config.max_age, hourNs);
  const account = await bus.jsm.getAccountInfo();
  assert.deepEqual({ streams: account.streams, consumers: account.consumers }, { streams: Object.values(streams).length, consumers: 0 });
});
