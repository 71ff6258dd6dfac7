/**
 * Authentication under `firebreak up` and `firebreak lab` (issue #16): the
 * embedded NATS runs deploy/nats/nats.conf's users with generated passwords,
 * Redis a generated password; nobody without them gets in, the CLI logs in as
 * operator, and no password is printed, logged or recorded in lab.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTcp } from 'node:net';
import { connect, ErrorCode, NatsError, type NatsConnection } from 'nats';
import { startNatsServer, subjects, type EmbeddedServer } from '@firebreak/shared';
import { sampleCommand, sampleHostFailed, waitFor } from '@firebreak/shared/testing';
import { isolatedEnv, runCli, startCli } from './cli-process.ts';

const READY_MS = 90_000;
const encoder = new TextEncoder();

interface Recorded {
  natsUrl: string;
  redisUrl: string;
  inventoryPath: string;
}

/** What Redis answers a client that sends no password: the raw protocol, whatever a client library does first. */
function redisAnswerTo(url: string, command: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: hostname, port: Number(port) }, () => socket.write(`${command}\r\n`));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString());
    });
    socket.once('error', reject);
  });
}

interface Credentials {
  nats: Record<string, string>;
  redis: { password: string };
}

/** The subjects of the publishes the server refused on this connection. */
function refusedPublishes(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      const ctx = (status as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (ctx?.operation === 'publish') seen.push(ctx.subject);
    }
  })();
  return seen;
}

test('cli auth - up: no login, no NATS or Redis; operator may not command; the CLI and every service log in as their users; no password printed, logged or in lab.json', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  const env = isolatedEnv(stateDir);
  const up = startCli(t, ['up', '--logs'], env, 'SIGINT');
  await up.waitForOutput(
    'every service ready and the planner leading',
    (out) => ['detector', 'planner', 'executor'].every((s) => new RegExp(`${s}\\s+info\\s+ready`).test(out)) && out.includes('planning for the site'),
    READY_MS,
  );

  const recorded = JSON.parse(await readFile(join(stateDir, 'lab.json'), 'utf8')) as Recorded;
  const credentialsFile = join(stateDir, 'credentials.json');
  assert.equal((await stat(credentialsFile)).mode & 0o777, 0o600);
  assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
  const credentials = JSON.parse(await readFile(credentialsFile, 'utf8')) as Credentials;
  const passwords = [...Object.values(credentials.nats), credentials.redis.password];
  assert.deepEqual(Object.keys(credentials.nats).sort(), ['admin', 'detector', 'executor', 'host-agent', 'operator', 'planner']);
  const labJson = await readFile(join(stateDir, 'lab.json'), 'utf8');
  for (const password of passwords) assert.equal(labJson.includes(password), false, 'lab.json holds a password');
  assert.match(up.output(), new RegExp(`in ${credentialsFile.replaceAll('.', '\\.')} \\(mode 600\\).*log in as operator`));

  // The observed attack: a plain client publishing fb.cmd.power. It cannot even connect.
  for (const login of [{}, { user: 'operator', pass: 'guessed1' }]) {
    await assert.rejects(
      connect({ servers: recorded.natsUrl, reconnect: false, ...login }),
      (err: unknown) => err instanceof NatsError && err.code === ErrorCode.AuthorizationViolation,
      `a client with ${JSON.stringify(login)} connected`,
    );
  }
  // The operator (people, the CLI) watches and drills but never commands a device, nor speaks for the detector.
  const operator = await connect({ servers: recorded.natsUrl, user: 'operator', pass: credentials.nats.operator as string, inboxPrefix: '_INBOX.operator' });
  t.after(() => operator.close());
  const refused = refusedPublishes(operator);
  operator.publish(subjects.command('power'), encoder.encode(JSON.stringify(sampleCommand('power'))));
  operator.publish(subjects.hostEvent('failed'), encoder.encode(JSON.stringify(sampleHostFailed())));
  await operator.flush();
  await waitFor('the server to refuse the operator\'s command and verdict', () => refused.includes(subjects.command('power')) && refused.includes(subjects.hostEvent('failed')), 10_000);

  // Redis: nothing without the password, not even a read.
  assert.match(await redisAnswerTo(recorded.redisUrl, 'KEYS *'), /^-NOAUTH/);
  assert.match(await redisAnswerTo(recorded.redisUrl, 'AUTH guessed1'), /^-WRONGPASS/);

  // Another terminal: every command that talks to the system finds it, and its passwords, through the state dir.
  const status = await runCli(['status'], env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /no open incidents/);
  const imported = await runCli(['inventory', 'import', recorded.inventoryPath], env);
  assert.equal(imported.code, 0, imported.stderr);
  const where = await runCli(['where', '--json'], env);
  assert.equal(where.code, 0, where.stderr);
  const plan = await runCli(['plan', '--what-if', 'rack', 'r2', '--json'], env);
  assert.ok(plan.code === 0 || plan.code === 1, `plan --what-if: ${plan.code}\n${plan.stderr}`);
  assert.match(plan.stdout, /"domains"/);
  const drill = await runCli(['drill', 'start', 'rack', 'r3', '--duration', '1m', '--json'], env);
  assert.equal(drill.code, 0, drill.stderr);
  const { drillId } = JSON.parse(drill.stdout) as { drillId: string };
  const stopped = await runCli(['drill', 'stop', drillId], env);
  assert.equal(stopped.code, 0, stopped.stderr);

  // NATS_USER set: that login, not the file's; a wrong one is refused naming the user and where the passwords are, never a password.
  const wrong = await runCli(['status'], { ...env, NATS_USER: 'operator', NATS_PASSWORD: 'wrong1' });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /NATS at nats:\/\/127\.0\.0\.1:\d+ refused user "operator".*credentials\.json/);
  // The passwords go to the recorded URLs only: the same Redis by another name gets none, and the refusal says what to do.
  const noPassword = await runCli(['where', '--redis-url', recorded.redisUrl.replace('127.0.0.1', 'localhost')], env);
  assert.equal(noPassword.code, 2);
  assert.match(noPassword.stderr, /Redis at redis:\/\/localhost:\d+ refused the login \(NOAUTH\): give its password in the URL/);

  up.interrupt();
  assert.equal(await up.exited, 0, up.output());
  const out = up.output();
  const log = await readFile(join(stateDir, 'up.log'), 'utf8');
  assert.doesNotMatch(log, /permissions? violation/i, 'a service hit a permission nats.conf does not grant');
  for (const password of passwords) {
    for (const [what, text] of [['up\'s output', out], ['up.log', log], ['a CLI command', [status, imported, where, plan, drill, stopped, wrong, noPassword].map((r) => r.stdout + r.stderr).join('\n')]] as const) {
      assert.equal(text.includes(password), false, `${what} shows a password`);
    }
  }
  await assert.rejects(stat(credentialsFile), /ENOENT/, 'the passwords outlived the run');
  await assert.rejects(stat(join(stateDir, 'lab.json')), /ENOENT/);
});

test('cli auth - lab against given servers generates nothing, and keeps a given Redis URL\'s password out of lab.json', async (t) => {
  const nats: EmbeddedServer = await startNatsServer();
  t.after(() => nats.stop());
  const stateDir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  const lab = startCli(t, ['lab', '--nats-url', nats.url, '--redis-url', 'redis://:given1@127.0.0.1:1'], isolatedEnv(stateDir), 'SIGINT');
  await lab.waitForOutput('the lab to start', (out) => out.includes('lab running'), READY_MS);
  assert.doesNotMatch(lab.output(), /started (nats|redis)-server|log in as operator|given1/);
  const labJson = await readFile(join(stateDir, 'lab.json'), 'utf8');
  assert.equal((JSON.parse(labJson) as Recorded).redisUrl, 'redis://127.0.0.1:1');
  assert.equal((JSON.parse(labJson) as Recorded).natsUrl, nats.url);
  const credentials = join(stateDir, 'credentials.json');
  assert.equal((await stat(credentials)).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(await readFile(credentials, 'utf8')), { redis: { password: 'given1' } });
  lab.interrupt();
  assert.equal(await lab.exited, 0, lab.output());
  await assert.rejects(stat(credentials), /ENOENT/);
});
