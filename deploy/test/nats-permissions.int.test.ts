/**
 * deploy/nats/nats.conf on the real nats-server, exercised through the real
 * Bus: each user can do its service's job, and is refused what it must not do.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AckPolicy, connect, ErrorCode, NatsError, nanos, type NatsConnection } from 'nats';
import type { z } from 'zod';
import { executorDurable, executorDurables, RETIRED_EXECUTOR_DURABLE } from '@firebreak/executor';
import {
  baseConfigSchema,
  commandKinds,
  ConfigError,
  connectBus,
  ensureStreams,
  headers,
  loadConfig,
  natsUsers,
  passwordVariable,
  randomPassword,
  ReadinessReport,
  redactConfig,
  startNatsServer,
  streams,
  subjects,
  TokenFloor,
  topics,
  type AuthenticatedNatsServer,
  type Bus,
  type Command,
  type CommandKind,
  type CommandResult,
  type ConsumerHandle,
  type DeadLetter,
  type Heartbeat,
  type NatsUser,
  type Topic,
} from '@firebreak/shared';
import {
  sampleCommand,
  sampleCommandResult,
  sampleDeadLetter,
  sampleDrillStart,
  sampleHeartbeat,
  sampleHostFailed,
  sampleIncidentProgress,
  waitFor,
} from '@firebreak/shared/testing';
import { runNatsUntilExit } from './nats-config-run.ts';

/** The planner's durables (services/planner/src/index.ts). */
const plannerDurables = { hostFailed: 'planner-host-failed', drillStart: 'planner-drill-start' } as const;

const ensureStreamsJob = fileURLToPath(new URL('../bin/ensure-streams.ts', import.meta.url));
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const WAIT_MS = 20_000;

let nats: AuthenticatedNatsServer;
const buses: Bus[] = [];
const raw: NatsConnection[] = [];

async function as(user: NatsUser): Promise<Bus> {
  const bus = await nats.connectAs(user, `deploy-test-${user}`);
  buses.push(bus);
  return bus;
}

/** A plain core-NATS client, as a host agent is. */
async function rawAs(user: NatsUser): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url, user, pass: nats.passwords[user], name: `deploy-test-raw-${user}` });
  raw.push(nc);
  return nc;
}

function isPermissionViolation(err: unknown, subject?: string): boolean {
  if (!(err instanceof NatsError) || !err.isPermissionError()) return false;
  return subject === undefined || err.message.includes(`"${subject}"`);
}

async function refused(what: string, action: () => Promise<unknown>, subject?: string): Promise<void> {
  await assert.rejects(action, (err: unknown) => {
    assert.ok(isPermissionViolation(err, subject), `${what}: expected a permissions violation${subject ? ` on ${subject}` : ''}, got ${String(err)}`);
    return true;
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still going after ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** The server ends a refused subscription with a permissions violation; an allowed one would stay open. */
async function subscriptionRefused(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject);
  const drained = (async () => {
    for await (const _msg of sub) assert.fail(`subscription to ${subject} delivered a message`);
  })();
  await refused(`subscribe ${subject}`, () => withTimeout(drained, WAIT_MS, `subscription to ${subject}`), subject);
}

/** Subjects of the publishes the server refused on this connection, as it reports them. */
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

async function corePublishRefused(nc: NatsConnection, seen: string[], subject: string, data: Uint8Array): Promise<void> {
  nc.publish(subject, data);
  await nc.flush();
  await waitFor(`the server to refuse ${subject}`, () => seen.includes(subject), WAIT_MS);
}

before(async () => {
  nats = await startNatsServer({ auth: true, readyTimeoutMs: 30_000 });
});

after(async () => {
  await Promise.all(buses.map((b) => b.close().catch(() => {})));
  await Promise.all(raw.map((nc) => nc.close().catch(() => {})));
  await nats?.stop();
});

test('deploy nats - the server will not start while a user has no password variable, and names it', async () => {
  const env = Object.fromEntries(natsUsers.filter((u) => u !== 'executor').map((u) => [passwordVariable(u), randomPassword()]));
  const run = await runNatsUntilExit(env);
  assert.notEqual(run.code, 0, run.output);
  assert.match(run.output, /NATS_EXECUTOR_PASSWORD/);
});

test('deploy nats - a wrong password or missing credentials are refused naming the user, never the password', async () => {
  const wrong = randomPassword();
  await assert.rejects(
    () => connectBus({ url: nats.url, name: 'deploy-test-wrong', user: 'executor', password: wrong }),
    (err: unknown) => err instanceof ConfigError && /NATS refused user "executor".*NATS_USER and NATS_PASSWORD/.test(err.message) && !err.message.includes(wrong),
  );
  await assert.rejects(
    () => connectBus({ url: nats.url, name: 'deploy-test-anonymous' }),
    (err: unknown) => err instanceof ConfigError && /without NATS_USER and NATS_PASSWORD/.test(err.message),
  );
  await assert.rejects(
    () => connectBus({ url: nats.url, name: 'deploy-test-half', user: 'executor' }),
    (err: unknown) => err instanceof ConfigError && /NATS_PASSWORD is missing/.test(err.message),
  );
  assert.equal(nats.output().includes(wrong), false, 'the server logged a password');

  // nats.js ignores a URL's user:password, so such a NATS_URL is refused at start-up instead of failing to log in.
  const secret = randomPassword();
  assert.throws(
    () => loadConfig(baseConfigSchema, { NATS_URL: `nats://executor:${secret}@127.0.0.1:4222`, REDIS_URL: 'redis://127.0.0.1:6379' }),
    (err: unknown) => err instanceof ConfigError && /NATS_URL: must not carry credentials .*NATS_USER and NATS_PASSWORD/.test(err.message) && !err.message.includes(secret),
  );
  const config = loadConfig(baseConfigSchema, { NATS_URL: nats.url, REDIS_URL: 'redis://127.0.0.1:6379', NATS_USER: 'executor', NATS_PASSWORD: secret });
  assert.deepEqual(redactConfig(config).NATS_PASSWORD, '[REDACTED]');
  await assert.rejects(
    () => connectBus({ url: nats.url, name: 'deploy-test-bad-user', user: 'exec utor', password: secret }),
    (err: unknown) => err instanceof Error && /NATS_USER/.test(err.message),
  );
});

interface JobRun {
  code: number | null;
  output: string;
}

function runEnsureStreams(user: NatsUser, extraEnv: Record<string, string> = {}): Promise<JobRun> {
  const env = { ...process.env, NATS_URL: nats.url, NATS_USER: user, NATS_PASSWORD: nats.passwords[user], LOG_LEVEL: 'info', ...extraEnv };
  const child = spawn(process.execPath, ['--import', 'tsx', ensureStreamsJob], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return withTimeout(
    new Promise<JobRun>((resolve) => child.once('close', (code) => resolve({ code, output }))),
    60_000,
    'ensure-streams',
  );
}

test('deploy nats - only admin creates and changes the streams; the services check they are there', async () => {
  const detector = await as('detector');
  await assert.rejects(
    () => ensureStreams(detector.jsm),
    /stream FB_\w+ does not exist and this NATS user may not create it/,
    'a service created the streams or failed without saying why',
  );

  const job = await runEnsureStreams('admin');
  assert.equal(job.code, 0, job.output);
  for (const stream of Object.values(streams)) assert.match(job.output, new RegExp(`"stream":"${stream}".*"msg":"stream ready"`));
  assert.equal(job.output.includes(nats.passwords.admin), false, 'the job logged its password');

  // Every service's start-up check now passes without any right to manage streams.
  assert.equal((await ensureStreams(detector.jsm)).length, Object.values(streams).length);

  const executor = await as('executor');
  await refused('executor shortens FB_EVENTS', () => executor.jsm.streams.update(streams.events, { max_age: nanos(1_000) }), '$JS.API.STREAM.UPDATE.FB_EVENTS');
  await refused('executor deletes FB_CMDS', () => executor.jsm.streams.delete(streams.commands), '$JS.API.STREAM.DELETE.FB_CMDS');
  const operator = await as('operator');
  await refused('operator purges FB_DLQ', () => operator.jsm.streams.purge(streams.deadLetters), '$JS.API.STREAM.PURGE.FB_DLQ');

  // Drift the admin's own tuning; the job run by a service user cannot fix it and says so, the admin's run does.
  const admin = await as('admin');
  await admin.jsm.streams.update(streams.deadLetters, { max_age: nanos(60 * 60_000) });
  const wrongUser = await runEnsureStreams('detector');
  assert.equal(wrongUser.code, 1, wrongUser.output);
  assert.match(wrongUser.output, /FB_DLQ.*NATS user "detector" may not manage streams/);
  const fixed = await runEnsureStreams('admin');
  assert.equal(fixed.code, 0, fixed.output);
  assert.equal((await admin.jsm.streams.info(streams.deadLetters)).config.max_age, nanos(30 * 24 * 60 * 60_000));
});

test('deploy nats - each service does its job under its own user', async () => {
  const [detector, planner, executor, operator] = await Promise.all([as('detector'), as('planner'), as('executor'), as('operator')]);
  const agent = await rawAs('host-agent');
  const consumers: ConsumerHandle[] = [];
  try {
    const seenByOperator: string[] = [];
    const watch = operator.nc.subscribe('fb.>', { callback: (_err, msg) => void seenByOperator.push(msg.subject) });
    await operator.nc.flush();

    // Heartbeats: host agent → detector (all) and planner (the recovered server's host).
    const beats: Heartbeat[] = [];
    const plannerBeats: Heartbeat[] = [];
    await detector.subscribeCore(topics.heartbeats, (hb) => void beats.push(hb));
    const hb = sampleHeartbeat();
    await planner.subscribeCore(topics.heartbeat(hb.site, hb.rack, hb.host), (beat) => void plannerBeats.push(beat));
    agent.publish(subjects.heartbeat(hb.site, hb.rack, hb.host), encoder.encode(JSON.stringify(hb)));
    await waitFor('the heartbeat at the detector and the planner', () => beats.length === 1 && plannerBeats.length === 1, WAIT_MS);

    // A verdict: detector → planner's durable; a drill: operator → planner's durable.
    const failures: string[] = [];
    const drills: string[] = [];
    consumers.push(
      await planner.consume({ topic: topics.hostFailed, durable: plannerDurables.hostFailed, handler: async (e) => void failures.push(e.host) }),
      await planner.consume({ topic: topics.drillStart, durable: plannerDurables.drillStart, handler: async (d) => void drills.push(d.drillId) }),
    );
    const failed = sampleHostFailed();
    await detector.publish(topics.hostFailed, failed, { msgId: `deploy-test-${failed.host}` });
    await operator.publish(topics.drillStart, sampleDrillStart());
    await waitFor('the verdict and the drill at the planner', () => failures.length === 1 && drills.length === 1, WAIT_MS);

    // A command: planner → the executors' shared durable for its kind → result back to the planner, live and stored.
    for (const kind of commandKinds) {
      const topic: Topic<z.ZodType<Command>> = topics.command(kind);
      consumers.push(
        await executor.consume({
          topic,
          durable: executorDurable(kind),
          handler: async (command) => {
            const result: CommandResult = { ...sampleCommandResult(), commandId: command.commandId, incidentId: command.incidentId, kind: command.kind };
            await executor.publish(topics.result(command.incidentId, command.commandId), result, { msgId: `result:${command.commandId}` });
          },
        }),
      );
    }
    const command = { ...sampleCommand('power'), commandId: 'deploy-cmd-1', incidentId: 'deploy-inc-1' };
    const results: CommandResult[] = [];
    await planner.subscribeCore(topics.resultsOf(command.incidentId), (r) => void results.push(r));
    await planner.publish(topics.command('power'), command, { msgId: command.commandId });
    await waitFor('the result at the planner', () => results.length === 1, WAIT_MS);
    assert.equal(results[0]?.commandId, command.commandId);
    const stored = await planner.jsm.streams.getMessage(streams.results, { last_by_subj: subjects.result(command.incidentId, command.commandId) });
    assert.equal((JSON.parse(decoder.decode(stored.data)) as CommandResult).commandId, command.commandId);

    // The planner's fencing-token floor: recorded and read back by the planner, in FB_FENCING.
    const floor = new TokenFloor(planner);
    await floor.record('site1', 3, 'planner-deploy-test', await floor.read('site1'));
    assert.equal((await floor.read('site1'))?.token, 3);

    // Incident progress: planner → FB_EVENTS, read back by the operator.
    const progress = { ...sampleIncidentProgress(), incidentId: command.incidentId };
    await planner.publish(topics.incidentProgress(progress.incidentId, progress.phase), progress);
    const progressSubject = subjects.incidentProgress(progress.incidentId, progress.phase);
    const storedProgress = await operator.jsm.streams.getMessage(streams.events, { last_by_subj: progressSubject });
    assert.equal(storedProgress.subject, progressSubject);
    // Acked, not merely delivered: the operator sees no backlog on any of the durables.
    for (const [stream, durable] of [[streams.commands, executorDurable('power')], [streams.events, plannerDurables.hostFailed], [streams.events, plannerDurables.drillStart]] as const) {
      await waitFor(`${durable} to have acked everything`, async () => {
        const info = await operator.jsm.consumers.info(stream, durable);
        return info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.consumer_seq > 0;
      }, WAIT_MS);
    }

    // What-if readiness: the planner answers the operator's check (request/reply) and publishes reports.
    const report: ReadinessReport = { site: 'site1', at: Date.now(), domains: [] };
    const responder = await planner.serve(topics.readinessCheck, ReadinessReport, async (check) => (check.site === report.site ? report : undefined), {
      queue: 'planner-readiness-site1',
    });
    try {
      assert.deepEqual(await operator.request(topics.readinessCheck, { site: report.site }, ReadinessReport, { timeoutMs: WAIT_MS, responder: 'planner' }), report);
    } finally {
      await responder.stop();
    }
    planner.publishCore(topics.readiness(report.site), report);

    // History, as `firebreak status` reads it: the operator's own ordered consumer on FB_EVENTS.
    const history = await operator.js.consumers.get(streams.events, { filterSubjects: subjects.eventsAll });
    const verdicts: string[] = [];
    try {
      const batch = await history.fetch({ max_messages: 10, expires: 5_000 });
      for await (const msg of batch) {
        verdicts.push(msg.subject);
        if (msg.info.pending === 0) break;
      }
    } finally {
      await history.delete();
    }
    assert.deepEqual(verdicts, [subjects.hostEvent('failed')]);

    // Bad input is dead-lettered under each consumer's own rights: executor for commands, planner for events.
    await planner.js.publish(subjects.command('power'), encoder.encode('not json'), { msgID: 'deploy-bad-cmd' });
    await detector.js.publish(subjects.hostEvent('failed'), encoder.encode('{"host":42}'), { msgID: 'deploy-bad-verdict' });
    for (const original of [subjects.command('power'), subjects.hostEvent('failed')]) {
      const dlq = subjects.deadLetter(original);
      await waitFor(`a dead letter on ${dlq}`, async () => {
        try {
          const msg = await operator.jsm.streams.getMessage(streams.deadLetters, { last_by_subj: dlq });
          return (JSON.parse(decoder.decode(msg.data)) as DeadLetter).originalSubject === original && msg.header.get(headers.deadLetterReason) !== '';
        } catch {
          return false;
        }
      }, WAIT_MS);
    }

    const live = [
      subjects.heartbeat(hb.site, hb.rack, hb.host),
      subjects.hostEvent('failed'),
      subjects.drillStart,
      subjects.command('power'),
      subjects.result(command.incidentId, command.commandId),
      progressSubject,
      subjects.readiness(report.site),
    ];
    for (const subject of live) assert.ok(seenByOperator.includes(subject), `the operator did not see ${subject} live`);
    watch.unsubscribe();
  } finally {
    await Promise.all(consumers.map((c) => c.stop()));
  }
});

test('deploy nats - what a user must not do is refused', async () => {
  const [detector, planner, executor, operator, admin] = await Promise.all([as('detector'), as('planner'), as('executor'), as('operator'), as('admin')]);
  const command = { ...sampleCommand('power'), commandId: 'deploy-forbidden', incidentId: 'deploy-inc-2' };
  const result: CommandResult = { ...sampleCommandResult(), commandId: command.commandId, incidentId: command.incidentId };
  const power = subjects.command('power');
  const resultSubject = subjects.result(command.incidentId, command.commandId);
  const failedSubject = subjects.hostEvent('failed');

  // Commands come from the planner only: they power hosts off.
  await refused('executor publishes a command', () => executor.publish(topics.command('power'), command), power);
  await refused('detector publishes a command', () => detector.publish(topics.command('power'), command), power);
  await refused('operator publishes a command', () => operator.publish(topics.command('power'), command), power);
  await refused('admin publishes a command', () => admin.publish(topics.command('power'), command), power);
  // Only on the kinds' subjects, where the executors' durables take them; on another, a command would sit unread.
  const noKind = subjects.command('san' as CommandKind);
  await refused('planner publishes a command of no kind', () => planner.js.publish(noKind, encoder.encode(JSON.stringify(command))), noKind);
  // The token floor is the planner's: nobody else may lift it (and so make a deposed planner's token look current).
  const floorSubject = subjects.plannerTokenFloor('site1');
  await refused('executor records a token floor', () => new TokenFloor(executor).record('site1', 99, 'executor', undefined), floorSubject);
  await refused('operator records a token floor', () => new TokenFloor(operator).record('site1', 99, 'operator', undefined), floorSubject);
  // Verdicts from the detector only, results from executors only.
  await refused('planner publishes a verdict', () => planner.publish(topics.hostFailed, sampleHostFailed()), failedSubject);
  await refused('executor publishes a verdict', () => executor.publish(topics.hostFailed, sampleHostFailed()), failedSubject);
  await refused('planner publishes a result', () => planner.publish(topics.result(command.incidentId, command.commandId), result), resultSubject);
  await refused('detector publishes a result', () => detector.publish(topics.result(command.incidentId, command.commandId), result), resultSubject);
  await refused('detector starts a drill', () => detector.publish(topics.drillStart, sampleDrillStart()), subjects.drillStart);
  const foreignDeadLetter = { ...sampleDeadLetter(), originalSubject: failedSubject, stream: streams.events };
  await refused('executor dead-letters an event', () => executor.publish(topics.deadLetter(failedSubject), foreignDeadLetter), subjects.deadLetter(failedSubject));

  // Nobody takes another service's messages: consumers are created per user and durable.
  const noop = async (): Promise<void> => {};
  await refused('executor reads the planner\'s failures', () => executor.consume({ topic: topics.hostFailed, durable: plannerDurables.hostFailed, handler: noop }));
  await refused('executor opens a second durable on the work queue', () => executor.consume({ topic: topics.commands, durable: 'thief', handler: noop }));
  await refused('executor widens its durable to every kind', () => executor.consume({ topic: topics.commands, durable: executorDurable('power'), handler: noop }));
  await refused('executor re-creates the durable older versions shared', () => executor.consume({ topic: topics.commands, durable: RETIRED_EXECUTOR_DURABLE, handler: noop }));
  await refused('planner takes commands off the work queue', () => planner.consume({ topic: topics.command('power'), durable: executorDurable('power'), handler: noop }));
  await refused('detector takes commands off the work queue', () => detector.consume({ topic: topics.command('net'), durable: executorDurable('net'), handler: noop }));
  await refused('operator creates a consumer on the work queue', () => operator.jsm.consumers.add(streams.commands, { durable_name: 'peek', filter_subject: 'fb.cmd.>' }));
  await refused('operator pulls from the planner\'s durable', () =>
    operator.nc.request(`$JS.API.CONSUMER.MSG.NEXT.${streams.events}.${plannerDurables.hostFailed}`, encoder.encode('{"batch":1}'), { timeout: WAIT_MS }),
  );
  await refused('operator deletes the planner\'s durable', () => operator.jsm.consumers.delete(streams.events, plannerDurables.hostFailed));
  await refused('operator re-creates the planner\'s durable', () =>
    operator.jsm.consumers.add(streams.events, { durable_name: plannerDurables.drillStart, filter_subject: subjects.drillStart, ack_policy: AckPolicy.Explicit }),
  );

  // Readiness is the planner's to answer and to publish; nobody else replies into an inbox.
  await subscriptionRefused(detector.nc, subjects.readinessCheck);
  const report = encoder.encode(JSON.stringify({ site: 'site1', at: Date.now(), domains: [] }));
  await corePublishRefused(executor.nc, refusedPublishes(executor.nc), subjects.readiness('site1'), report);
  await corePublishRefused(planner.nc, refusedPublishes(planner.nc), '_INBOX.operator.unasked', report);

  // Replies: each user reads its own inbox only.
  await subscriptionRefused(detector.nc, '_INBOX.planner.>');
  await subscriptionRefused(executor.nc, '_INBOX.>');
  await subscriptionRefused(planner.nc, 'fb.cmd.>');
  await subscriptionRefused(executor.nc, 'fb.hb.>');

  // A heartbeat from anyone but a host agent could hide a dead host.
  const beat = sampleHeartbeat();
  const beatSubject = subjects.heartbeat(beat.site, beat.rack, beat.host);
  const beatData = encoder.encode(JSON.stringify(beat));
  for (const bus of [detector, planner, executor, operator]) await corePublishRefused(bus.nc, refusedPublishes(bus.nc), beatSubject, beatData);

  // Host agents: heartbeats and nothing else, not even the JetStream API.
  await assert.rejects(() => nats.connectAs('host-agent', 'deploy-test-host-agent'), (err: unknown) => isPermissionViolation(err));
  const agent = await rawAs('host-agent');
  const agentRefused = refusedPublishes(agent);
  const seen: string[] = [];
  const watch = operator.nc.subscribe('fb.>', { callback: (_err, msg) => void seen.push(msg.subject) });
  await operator.nc.flush();
  await corePublishRefused(agent, agentRefused, failedSubject, encoder.encode(JSON.stringify(sampleHostFailed())));
  await corePublishRefused(agent, agentRefused, power, encoder.encode(JSON.stringify(command)));
  agent.publish(beatSubject, beatData);
  // Same connection, so anything published before the heartbeat would have arrived first.
  await waitFor('the agent\'s heartbeat at the operator', () => seen.includes(beatSubject), WAIT_MS);
  assert.deepEqual(
    seen.filter((s) => s !== beatSubject),
    [],
    'a refused publish from the host agent was delivered',
  );
  watch.unsubscribe();
  await subscriptionRefused(agent, 'fb.hb.>');
  await subscriptionRefused(agent, '_INBOX.>');
  await assert.rejects(() => operator.jsm.streams.getMessage(streams.commands, { last_by_subj: power }), (err: unknown) => err instanceof NatsError && err.code !== ErrorCode.PermissionsViolation && /no message found/i.test(err.message));
});

test('deploy nats - upgrading: the streams job deletes the durable older executors shared, and the commands it held go to the per-kind durables', async () => {
  const [admin, planner, executor] = await Promise.all([as('admin'), as('planner'), as('executor')]);
  // The work queue as executors from before the per-kind durables leave it: their one durable on fb.cmd.>, a command in hand.
  for (const durable of executorDurables) await admin.jsm.consumers.delete(streams.commands, durable).catch(() => false);
  await admin.jsm.consumers.add(streams.commands, { durable_name: RETIRED_EXECUTOR_DURABLE, filter_subject: subjects.commandsAll, ack_policy: AckPolicy.Explicit, ack_wait: nanos(60_000) });
  const command = { ...sampleCommand('power'), commandId: 'deploy-upgrade-1', incidentId: 'deploy-inc-3' };
  await planner.publish(topics.command('power'), command, { msgId: command.commandId });
  const held = await (await admin.js.consumers.get(streams.commands, RETIRED_EXECUTOR_DURABLE)).next({ expires: WAIT_MS });
  assert.equal(held?.subject, subjects.command('power'));

  const received: string[] = [];
  const consumePower = () => executor.consume({ topic: topics.command('power'), durable: executorDurable('power'), handler: async (c) => void received.push(c.commandId) });
  await assert.rejects(consumePower, /filtered consumer not unique on workqueue stream/, 'the server refuses a per-kind durable beside the old one');

  const wrongUser = await runEnsureStreams('executor');
  assert.equal(wrongUser.code, 1, wrongUser.output);
  assert.match(wrongUser.output, /NATS user "executor" may not look up or delete the durable executor on FB_CMDS.*admin in deploy\/nats\/nats.conf/);

  const job = await runEnsureStreams('admin');
  assert.equal(job.code, 0, job.output);
  assert.match(job.output, /"stream":"FB_CMDS","durable":"executor","filter":"fb\.cmd\.>".*"inHand":1.*"msg":"deleted a durable an older version left"/);
  await assert.rejects(() => admin.jsm.consumers.info(streams.commands, RETIRED_EXECUTOR_DURABLE), /consumer not found/);

  const consumer = await consumePower();
  try {
    await waitFor('the command the old durable held, at the new one', () => received.includes(command.commandId), WAIT_MS);
  } finally {
    await consumer.stop();
  }
  const again = await runEnsureStreams('admin');
  assert.equal(again.code, 0, again.output);
  assert.doesNotMatch(again.output, /deleted a durable/, 'nothing left to delete');
});
