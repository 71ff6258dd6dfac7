/**
 * The embedded servers with `auth`, as `firebreak up` and the e2e tests run
 * them: NATS with deploy/nats/nats.conf and a generated password per user,
 * Redis with a generated password; nobody without them gets in, and a
 * restart keeps them.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect, ErrorCode, NatsError } from 'nats';
import { connectBus, ConfigError, createStore, natsUsers, startNatsServer, startRedisServer, topics } from '../src/index.ts';
import { sampleCommand, sampleHeartbeat, waitFor } from '../src/testing/index.ts';

/** Undone last first, so clients close before the servers they talk to stop. */
function cleanups(t: TestContext): (undo: () => Promise<unknown>) => void {
  const stack: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const undo of stack.reverse()) await undo();
  });
  return (undo) => void stack.push(undo);
}

async function commandLine(pid: number | undefined): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
}

test('embedded servers - authenticated NATS: no login, no connection; operator may not command; each user does its part; a restart keeps the passwords', async (t) => {
  const cleanup = cleanups(t);
  const nats = await startNatsServer({ auth: true });
  // The server stops last, whichever instance runs then: a client left behind would reconnect for ever.
  let running = nats;
  cleanup(() => running.stop());
  assert.notEqual(nats.port, 4222);
  assert.deepEqual(Object.keys(nats.passwords).sort(), [...natsUsers].sort());
  assert.equal(new Set(Object.values(nats.passwords)).size, natsUsers.length, 'one password per user');

  // A plain client without credentials is refused at the door: it can publish nothing, fb.cmd.power least of all.
  await assert.rejects(connect({ servers: nats.url, reconnect: false }), (err: unknown) => err instanceof NatsError && err.code === ErrorCode.AuthorizationViolation);
  await assert.rejects(connectBus({ url: nats.url, name: 'anonymous' }), (err: unknown) => err instanceof ConfigError && /without NATS_USER and NATS_PASSWORD/.test(err.message));

  await nats.createStreams();
  const [operator, planner] = await Promise.all([nats.connectAs('operator'), nats.connectAs('planner')]);
  cleanup(() => Promise.all([operator.close(), planner.close()]));
  await assert.rejects(operator.publish(topics.command('power'), sampleCommand('power')), (err: unknown) => err instanceof NatsError && err.isPermissionError());
  await planner.publish(topics.command('power'), { ...sampleCommand('power'), commandId: 'auth-test-1' }, { msgId: 'auth-test-1' });

  // The host agents' user may not even ask for JetStream; a core-only bus heartbeats.
  const agent = await connectBus({ url: nats.url, name: 'agent', ...nats.credentialsFor('host-agent'), checkJetStream: false });
  cleanup(() => agent.close());
  const beats: string[] = [];
  const hb = sampleHeartbeat();
  await operator.subscribeCore(topics.heartbeats, (beat) => void beats.push(beat.host));
  await operator.nc.flush();
  agent.publishCore(topics.heartbeat(hb.site, hb.rack, hb.host), hb);
  await waitFor('the heartbeat at the operator', () => beats.includes(hb.host), 10_000);

  const passwords = Object.values(nats.passwords);
  assert.ok(!passwords.some((p) => nats.output().includes(p)), 'the server printed a password');
  assert.ok(!passwords.some((p) => nats.url.includes(p)));
  const cmdline = await commandLine(nats.pid);
  assert.match(cmdline, /nats\.conf/);
  assert.ok(!passwords.some((p) => cmdline.includes(p)), 'a password on the command line shows in ps');

  await nats.kill();
  const again = await nats.restart();
  running = again;
  assert.equal(again.port, nats.port);
  assert.deepEqual(again.passwords, nats.passwords);
  const operatorAgain = await again.connectAs('operator');
  cleanup(() => operatorAgain.close());
  // Same data dir: the streams and the planner's command are still there.
  const stored = await operatorAgain.jsm.streams.info('FB_CMDS');
  assert.equal(stored.state.messages, 1);
});

test('embedded servers - authenticated Redis: NOAUTH without the password, in through authUrl, none of it in ps or url; a restart keeps it', async (t) => {
  const cleanup = cleanups(t);
  const redis = await startRedisServer({ auth: true });
  cleanup(() => redis.stop());
  assert.notEqual(redis.port, 6379);
  assert.ok(!redis.url.includes(redis.password));
  assert.equal(redis.authUrl, `redis://:${redis.password}@127.0.0.1:${redis.port}`);

  const errors: string[] = [];
  const anonymous = createStore(redis.url, { redis: { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null }, onError: (err) => void errors.push(err.message) });
  await assert.rejects(anonymous.redis.connect());
  anonymous.redis.disconnect();
  assert.ok(errors.some((m) => m.startsWith('NOAUTH')), errors.join('\n'));

  const store = createStore(redis.authUrl);
  await store.redis.set('fb:auth-test', 'kept');
  await store.close();
  assert.ok(!(await commandLine(redis.pid)).includes(redis.password), 'the password shows in ps');

  await redis.kill();
  const again = await redis.restart();
  cleanup(() => again.stop());
  assert.equal(again.password, redis.password);
  const reopened = createStore(again.authUrl);
  cleanup(() => reopened.close());
  assert.equal(await reopened.redis.get('fb:auth-test'), 'kept', 'the append-only file outlived the crash');
});
