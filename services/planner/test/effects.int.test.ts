import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import {
  connectBus,
  createStore,
  ensureStreams,
  streams,
  subjects,
  topics,
  type Bus,
  type BusLogger,
  type CommandResult,
  type ConsumerHandle,
  type CoreHandler,
  type CoreSubscription,
  type Heartbeat,
  type IncidentProgress,
  type PowerCommand,
  type Store,
  type Topic,
} from '@firebreak/shared';
import { sampleIncidentProgress, startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { createBusEffects, type BusEffects, type EffectsBus } from '../src/effects/index.ts';

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
let store: Store;
let effects: BusEffects;
let responder: ConsumerHandle;

/** Subscriptions the effects hold open right now, counted at the bus they use. */
let openSubscriptions = 0;
let mostSubscriptions = 0;
/** Commands the effects handed to the bus, duplicates included (JetStream's dedupe would hide them in the stream). */
let commandPublishes = 0;
/** Result subjects whose next message the connection "loses", as core NATS does across a reconnect. */
const loseNextMessageOn = new Set<string>();
/** JetStream API requests to fail, as they do while the connection is re-established. */
let failingLookups = 0;
const logged: { level: string; msg: string }[] = [];
const logger: BusLogger = {
  info: (_o, msg) => logged.push({ level: 'info', msg }),
  warn: (_o, msg) => logged.push({ level: 'warn', msg }),
  error: (_o, msg) => logged.push({ level: 'error', msg }),
};

// ---- a fake executor: takes commands off FB_CMDS like the real one, with its failure modes ----

interface Behaviour {
  delayMs?: number;
  outcome?: CommandResult['outcome'];
  /** Never answers (a command stuck on a dead device) until the consumer stops. */
  hold?: boolean;
  /** Publishes a broken message on the result subject before the real result. */
  garbageFirst?: boolean;
}
const behaviours = new Map<string, Behaviour>();
const deliveries = new Map<string, number>();
const recorded = new Map<string, CommandResult>();

async function respond(command: PowerCommand, ctx: { signal: AbortSignal }): Promise<void> {
  deliveries.set(command.commandId, (deliveries.get(command.commandId) ?? 0) + 1);
  const earlier = recorded.get(command.commandId);
  if (earlier !== undefined) {
    // Like the executor: a command delivered again replays what it recorded.
    await bus.publish(topics.result(command.incidentId, command.commandId), { ...earlier, replayed: true }, { msgId: `res-${command.commandId}-replay-${randomUUID()}` });
    return;
  }
  const behaviour = behaviours.get(command.commandId) ?? {};
  const startedAt = Date.now();
  if (behaviour.hold) await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true }));
  if (behaviour.delayMs) await sleep(behaviour.delayMs);
  if (behaviour.garbageFirst) {
    bus.nc.publish(subjects.result(command.incidentId, command.commandId), new TextEncoder().encode('{"not":"a result"'));
    await bus.nc.flush();
  }
  const result: CommandResult = {
    commandId: command.commandId,
    incidentId: command.incidentId,
    kind: 'power',
    outcome: behaviour.outcome ?? 'succeeded',
    attempts: 1,
    startedAt,
    finishedAt: Date.now(),
    executor: 'fake-executor',
    replayed: false,
    ...(behaviour.outcome === 'failed' ? { error: { code: 'TRANSIENT', message: 'BMC timed out', retryable: true } } : {}),
  };
  recorded.set(command.commandId, result);
  await bus.publish(topics.result(command.incidentId, command.commandId), result, { msgId: `res-${command.commandId}-first` });
}

function command(incidentId: string, host: string, behaviour: Behaviour = {}): PowerCommand {
  const now = Date.now();
  const cmd: PowerCommand = {
    kind: 'power',
    action: 'on',
    host,
    commandId: `cmd-${randomUUID()}`,
    incidentId,
    site: 'site1',
    fencingToken: 3,
    issuer: 'planner-test',
    issuedAt: now,
    deadline: now + 60_000,
    attempt: 1,
    drill: false,
  };
  behaviours.set(cmd.commandId, behaviour);
  return cmd;
}

const newIncident = () => `inc-${randomUUID()}`;

async function commandsStored(): Promise<number> {
  return (await bus.jsm.streams.info(streams.commands)).state.last_seq;
}

/** The real bus, counted and with the faults of a flaky connection on demand. */
function instrumentedBus(inner: Bus): EffectsBus {
  const streamsApi = Object.create(inner.jsm.streams) as typeof inner.jsm.streams;
  streamsApi.getMessage = (stream, query) => {
    if (failingLookups > 0) {
      failingLookups--;
      return Promise.reject(new Error('TIMEOUT'));
    }
    return inner.jsm.streams.getMessage(stream, query);
  };
  const jsm = Object.create(inner.jsm, { streams: { value: streamsApi } }) as typeof inner.jsm;
  return {
    jsm,
    publish: (topic, message, options) => {
      if (topic.stream === streams.commands) commandPublishes++;
      return inner.publish(topic, message, options);
    },
    subscribeCore: async <S extends z.ZodType>(topic: Topic<S>, handler: CoreHandler<z.output<S>>): Promise<CoreSubscription> => {
      const sub = await inner.subscribeCore(topic, (message, ctx) => {
        if (loseNextMessageOn.delete(ctx.subject)) return;
        return handler(message, ctx);
      });
      openSubscriptions++;
      mostSubscriptions = Math.max(mostSubscriptions, openSubscriptions);
      let stopped = false;
      return {
        counters: sub.counters,
        stop: async () => {
          if (stopped) return;
          stopped = true;
          await sub.stop();
          openSubscriptions--;
        },
      };
    },
  };
}

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'planner-effects-test' });
  await ensureStreams(bus.jsm);
  store = createStore(redis.url);
  responder = await bus.consume({
    topic: topics.command('power'),
    durable: 'fake-executor',
    handler: respond,
    concurrency: 64,
    ackWaitMs: 5_000,
  });
  effects = createBusEffects({
    bus: instrumentedBus(bus),
    store,
    logger,
    owner: 'planner-test',
    resultRecheckMs: 500,
    retry: { initialMs: 20, maxMs: 200 },
  });
});

after(async () => {
  await effects?.close();
  await responder?.stop();
  await store?.close();
  await bus?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

// ---- runCommands ----

test('effects - runCommands resolves with one result per command, in the order given, whatever order they finish in', async () => {
  const incident = newIncident();
  const cmds = [
    command(incident, 'h1', { delayMs: 400 }),
    command(incident, 'h2', { delayMs: 200, outcome: 'failed' }),
    command(incident, 'h3', { garbageFirst: true }),
    command(incident, 'h4'),
  ];
  const results = await effects.runCommands(cmds, AbortSignal.timeout(10_000));
  assert.deepEqual(
    results.map((r) => r.commandId),
    cmds.map((c) => c.commandId),
  );
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['succeeded', 'failed', 'succeeded', 'succeeded'],
  );
  assert.equal(results[1]?.error?.message, 'BMC timed out');
  assert.equal(results[2]?.executor, 'fake-executor', 'the broken message on the result subject is ignored');
  for (const c of cmds) assert.equal(deliveries.get(c.commandId), 1, `${c.commandId} executed once`);
  assert.equal(openSubscriptions, 0);
});

test('effects - a command whose result is already recorded is not published again (resume without re-issuing)', async () => {
  const incident = newIncident();
  const finished = command(incident, 'h1');
  const fresh = command(incident, 'h2');
  // What a planner that crashed after this command finished finds on the bus.
  const earlier: CommandResult = {
    commandId: finished.commandId,
    incidentId: incident,
    kind: 'power',
    outcome: 'succeeded',
    attempts: 2,
    startedAt: Date.now() - 60_000,
    finishedAt: Date.now() - 50_000,
    executor: 'executor-before-the-crash',
    replayed: false,
  };
  await bus.publish(topics.result(incident, finished.commandId), earlier, { msgId: `res-${finished.commandId}-first` });

  const results = await effects.runCommands([finished, fresh], AbortSignal.timeout(10_000));
  assert.equal(results[0]?.executor, 'executor-before-the-crash');
  assert.equal(results[0]?.finishedAt, earlier.finishedAt);
  assert.equal(results[1]?.executor, 'fake-executor');
  assert.equal(deliveries.get(finished.commandId), undefined, 'the finished command never reached an executor');
  assert.equal(deliveries.get(fresh.commandId), 1);
});

test('effects - running the same commands again publishes nothing and returns the recorded results', async () => {
  const incident = newIncident();
  const cmds = [command(incident, 'h1'), command(incident, 'h2', { outcome: 'failed' })];
  const first = await effects.runCommands(cmds, AbortSignal.timeout(10_000));
  const publishedBefore = commandPublishes;

  const again = await effects.runCommands(cmds, AbortSignal.timeout(10_000));
  assert.deepEqual(again, first);
  assert.equal(commandPublishes, publishedBefore, 'no command was published again, not even one for JetStream to drop');
  for (const c of cmds) assert.equal(deliveries.get(c.commandId), 1);
});

test('effects - a result the subscription missed is found in FB_RESULTS', async () => {
  const incident = newIncident();
  const cmd = command(incident, 'h1');
  loseNextMessageOn.add(subjects.result(incident, cmd.commandId));
  const [result] = await effects.runCommands([cmd], AbortSignal.timeout(5_000));
  assert.equal(result?.commandId, cmd.commandId);
  assert.equal(loseNextMessageOn.size, 0, 'the live message was lost');
  assert.equal(deliveries.get(cmd.commandId), 1, 'found, not re-issued');
});

test('effects - a look-up that fails while JetStream is unreachable is retried, not given up', async () => {
  const incident = newIncident();
  const cmd = command(incident, 'h1');
  const before = logged.length;
  failingLookups = 3;
  const [result] = await effects.runCommands([cmd], AbortSignal.timeout(5_000));
  assert.equal(result?.commandId, cmd.commandId);
  assert.equal(failingLookups, 0);
  assert.equal(deliveries.get(cmd.commandId), 1);
  assert.ok(logged.slice(before).some((l) => l.level === 'warn' && /looking up a recorded result failed/.test(l.msg)));
});

test('effects - a replayed result counts like any other', async () => {
  const incident = newIncident();
  // The fake executor never answers this one; another executor replays its recorded result instead.
  const cmd = command(incident, 'h1', { hold: true });
  const replay: CommandResult = {
    commandId: cmd.commandId,
    incidentId: incident,
    kind: 'power',
    outcome: 'succeeded',
    attempts: 1,
    startedAt: Date.now() - 2_000,
    finishedAt: Date.now() - 1_000,
    executor: 'executor-1',
    replayed: true,
  };
  const running = effects.runCommands([cmd], AbortSignal.timeout(10_000));
  await waitFor('the command to reach the executor', () => deliveries.get(cmd.commandId) === 1);
  await bus.publish(topics.result(incident, cmd.commandId), replay, { msgId: `res-${cmd.commandId}-replay-1` });
  assert.deepEqual(await running, [replay]);
});

test('effects - the same new command from two callers at once is executed once and both get its result', async () => {
  const incident = newIncident();
  const cmd = command(incident, 'h1', { delayMs: 100 });
  const [a, b] = await Promise.all([
    effects.runCommands([cmd], AbortSignal.timeout(10_000)),
    effects.runCommands([cmd], AbortSignal.timeout(10_000)),
  ]);
  assert.deepEqual(a, b);
  // Give a duplicate that slipped through the time to arrive before counting.
  await sleep(300);
  assert.equal(deliveries.get(cmd.commandId), 1, 'JetStream dropped the repeat publish by its message id');
});

test('effects - an aborted runCommands rejects with the abort reason and leaves no subscription behind', async () => {
  const incident = newIncident();
  const stuck = command(incident, 'h1', { hold: true });
  const done = command(incident, 'h2');
  const controller = new AbortController();
  const deadline = new Error('deadline of the recovering step passed');
  const running = effects.runCommands([done, stuck], controller.signal);
  await waitFor('the stuck command to reach the executor', () => deliveries.get(stuck.commandId) === 1);
  assert.equal(openSubscriptions, 1);
  controller.abort(deadline);
  await assert.rejects(running, (err) => err === deadline);
  assert.equal(openSubscriptions, 0);

  // An already-aborted signal rejects at once, without subscribing or publishing.
  const storedBefore = await commandsStored();
  await assert.rejects(effects.runCommands([command(incident, 'h3')], AbortSignal.abort(deadline)), (err) => err === deadline);
  assert.equal(openSubscriptions, 0);
  assert.equal(await commandsStored(), storedBefore);
});

test('effects - hundreds of commands from concurrent callers share one subscription and come back in order', async () => {
  const incident = newIncident();
  const cmds = Array.from({ length: 300 }, (_, i) => command(incident, `h${i}`, { delayMs: (i * 7) % 50 }));
  // A third of them finished before a (simulated) crash.
  const finishedBefore = cmds.filter((_, i) => i % 3 === 0);
  await Promise.all(
    finishedBefore.map((c) =>
      bus.publish(
        topics.result(incident, c.commandId),
        { commandId: c.commandId, incidentId: incident, kind: 'power', outcome: 'succeeded', attempts: 1, startedAt: 1, finishedAt: 2, executor: 'before-crash' },
        { msgId: `res-${c.commandId}-first` },
      ),
    ),
  );
  mostSubscriptions = openSubscriptions;
  const started = Date.now();
  // As 30 per-server machines would: ten commands each, all at once.
  const batches = Array.from({ length: 30 }, (_, i) => cmds.slice(i * 10, i * 10 + 10));
  const perBatch = await Promise.all(batches.map((batch) => effects.runCommands(batch, AbortSignal.timeout(30_000))));
  const took = Date.now() - started;
  batches.forEach((batch, i) =>
    assert.deepEqual(
      perBatch[i]?.map((r) => r.commandId),
      batch.map((c) => c.commandId),
    ),
  );
  const results = perBatch.flat();
  assert.equal(mostSubscriptions, 1, 'one wildcard subscription for the incident, shared by every caller');
  assert.equal(openSubscriptions, 0);
  assert.equal(results.filter((r) => r.executor === 'before-crash').length, finishedBefore.length);
  assert.equal(finishedBefore.filter((c) => deliveries.has(c.commandId)).length, 0, 'none of the finished ones was issued again');
  assert.ok(took < 15_000, `took ${took} ms`);
});

// ---- waitForHeartbeat ----

function heartbeat(host: string, server: string | null, sentAt: number, seq = 1): Heartbeat {
  return { host, site: 'site1', rack: 'r1', server, seq, sentAt };
}

/** Publishes and makes sure the server has handed the message to every subscriber before the caller looks. */
async function beat(hb: Heartbeat): Promise<void> {
  bus.publishCore(topics.heartbeat(hb.site, hb.rack, hb.host), hb);
  await bus.nc.flush();
  await sleep(50);
}

function settledState<T>(promise: Promise<T>): { settled: boolean } {
  const state = { settled: false };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

test('effects - waitForHeartbeat ignores the wrong server and a heartbeat from before the reboot, and resolves on the right one', async () => {
  const host = `h-${randomUUID()}`;
  const poweredOnAt = Date.now();
  const waiting = effects.waitForHeartbeat({ site: 'site1', rack: 'r1', host, server: 'db1', sentAfter: poweredOnAt }, AbortSignal.timeout(10_000));
  const state = settledState(waiting);
  await waitFor('the heartbeat subscription', () => openSubscriptions === 1);

  await beat(heartbeat(host, 'print1', poweredOnAt + 10)); // what the repurposed host ran before
  await beat(heartbeat(host, null, poweredOnAt + 20));
  await beat(heartbeat(host, 'db1', poweredOnAt - 1)); // sent before the power-on
  await beat(heartbeat(`${host}-other`, 'db1', poweredOnAt + 30)); // right server, wrong host
  assert.equal(state.settled, false);

  await beat(heartbeat(host, 'db1', poweredOnAt + 40));
  assert.equal(await waiting, poweredOnAt + 40);
  assert.equal(openSubscriptions, 0);
});

test('effects - a heartbeat watched from the power-on counts for a wait begun after it; one from before the power-on or of another server does not', async () => {
  const host = `h-${randomUUID()}`;
  const poweredOnAt = Date.now();
  const wanted = { site: 'site1', rack: 'r1', host, server: 'db1', sentAfter: poweredOnAt };
  const watching = new AbortController();
  assert.ok(effects.watchHeartbeats, 'the bus effects can watch');
  effects.watchHeartbeats(wanted, watching.signal);
  await waitFor('the watch subscription', () => openSubscriptions === 1);
  await beat(heartbeat(host, 'db1', poweredOnAt - 1)); // sent before the power-on
  await beat(heartbeat(host, 'print1', poweredOnAt + 10)); // what the repurposed host ran before
  await beat(heartbeat(host, 'db1', poweredOnAt + 20)); // the boot-time beat, before the power-on result came back

  // The power-on result is in; the wait begins after the beat went by.
  assert.equal(await effects.waitForHeartbeat(wanted, AbortSignal.timeout(2_000)), poweredOnAt + 20);
  watching.abort();
  await waitFor('the subscriptions closed', () => openSubscriptions === 0);

  // Without a watch, a wait begun after the boot-time beat went by never hears it (core NATS keeps nothing).
  await beat(heartbeat(`${host}-unwatched`, 'db1', poweredOnAt + 20));
  await assert.rejects(effects.waitForHeartbeat({ ...wanted, host: `${host}-unwatched` }, AbortSignal.timeout(300)));
});

test('effects - waitForHeartbeat for a bare hypervisor host wants a heartbeat without a server', async () => {
  const host = `hv-${randomUUID()}`;
  const sentAfter = Date.now();
  const waiting = effects.waitForHeartbeat({ site: 'site1', rack: 'r1', host, server: null, sentAfter }, AbortSignal.timeout(10_000));
  const state = settledState(waiting);
  await waitFor('the heartbeat subscription', () => openSubscriptions === 1);
  await beat(heartbeat(host, 'vm-web1', sentAfter + 5)); // a VM on it, not the host itself
  assert.equal(state.settled, false);
  await beat(heartbeat(host, null, sentAfter));
  assert.equal(await waiting, sentAfter, 'sentAt equal to sentAfter counts');
});

test('effects - VMs waiting on one hypervisor share its subscription and each gets its own heartbeat', async () => {
  const hypervisor = `hv-${randomUUID()}`;
  const sentAfter = Date.now();
  const wanted = (server: string) => ({ site: 'site1', rack: 'r1', host: hypervisor, server, sentAfter });
  mostSubscriptions = openSubscriptions;
  const web = effects.waitForHeartbeat(wanted('vm-web1'), AbortSignal.timeout(10_000));
  const db = effects.waitForHeartbeat(wanted('vm-db1'), AbortSignal.timeout(10_000));
  const dbState = settledState(db);
  await waitFor('the heartbeat subscription', () => openSubscriptions === 1);
  await beat(heartbeat(hypervisor, 'vm-web1', sentAfter + 1));
  assert.equal(await web, sentAfter + 1);
  assert.equal(dbState.settled, false);
  assert.equal(openSubscriptions, 1, 'still subscribed for the VM that has not come up');
  await beat(heartbeat(hypervisor, 'vm-db1', sentAfter + 2));
  assert.equal(await db, sentAfter + 2);
  assert.equal(mostSubscriptions, 1);
  assert.equal(openSubscriptions, 0);
});

test('effects - waitForHeartbeat rejects with the abort reason and unsubscribes', async () => {
  const host = `h-${randomUUID()}`;
  const controller = new AbortController();
  const deadline = new Error('no heartbeat within the RTO');
  const waiting = effects.waitForHeartbeat({ site: 'site1', rack: 'r1', host, server: 'db1', sentAfter: Date.now() }, controller.signal);
  await waitFor('the heartbeat subscription', () => openSubscriptions === 1);
  controller.abort(deadline);
  await assert.rejects(waiting, (err) => err === deadline);
  assert.equal(openSubscriptions, 0);
});

// ---- claimHosts / releaseHosts ----

test('effects - two incidents claiming overlapping hosts at once: each host goes to exactly one, the other learns the holder', async () => {
  const tag = randomUUID().slice(0, 8);
  const host = (n: number) => `claim-${tag}-h${n}`;
  const a = `inc-a-${tag}`;
  const b = `inc-b-${tag}`;
  const [claimA, claimB] = await Promise.all([
    effects.claimHosts(a, [host(1), host(2), host(3), host(4)]),
    effects.claimHosts(b, [host(3), host(4), host(5), host(2)]),
  ]);
  assert.ok(claimA.claimed.includes(host(1)));
  assert.ok(claimB.claimed.includes(host(5)));
  for (const h of [host(2), host(3), host(4)]) {
    const byA = claimA.claimed.includes(h);
    const byB = claimB.claimed.includes(h);
    assert.notEqual(byA, byB, `${h} claimed by exactly one incident`);
    const loser = byA ? claimB : claimA;
    const winner = byA ? a : b;
    assert.deepEqual(
      loser.lost.find((l) => l.host === h),
      { host: h, holder: `incident:${winner}` },
    );
    assert.equal((await store.leases.holder(h))?.owner, `incident:${winner}`);
  }
  assert.equal(claimA.claimed.length + claimA.lost.length, 4);
  assert.equal(claimB.claimed.length + claimB.lost.length, 4);
});

test('effects - an incident claiming again keeps its hosts, and a release lets another incident claim them', async () => {
  const tag = randomUUID().slice(0, 8);
  const [h1, h2] = [`rel-${tag}-h1`, `rel-${tag}-h2`];
  const a = `inc-a-${tag}`;
  const b = `inc-b-${tag}`;
  assert.deepEqual(await effects.claimHosts(a, [h1, h2]), { claimed: [h1, h2], lost: [] });
  assert.deepEqual(await effects.claimHosts(a, [h1, h2, h1]), { claimed: [h1, h2], lost: [] }, 'a resumed incident still holds its hosts');
  const holder = await store.leases.holder(h1);
  assert.ok(holder !== undefined && holder.expiresInMs > 60 * 60_000, 'held for hours: recovery holds the host until release');

  assert.deepEqual(await effects.claimHosts(b, [h1]), { claimed: [], lost: [{ host: h1, holder: `incident:${a}` }] });
  await effects.releaseHosts(a, [h1]);
  assert.deepEqual(await effects.claimHosts(b, [h1]), { claimed: [h1], lost: [] });

  // Releasing what it no longer holds does not take it from the new holder.
  await effects.releaseHosts(a, [h1, h2]);
  assert.equal((await store.leases.holder(h1))?.owner, `incident:${b}`);
  assert.equal(await store.leases.holder(h2), undefined);
});

// ---- publishProgress ----

async function progressStored(incidentId: string, phase: string): Promise<number> {
  const info = await bus.jsm.streams.info(streams.events, { subjects_filter: subjects.incidentProgress(incidentId, phase) });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

test('effects - publishProgress stores each update once, even when published twice, and never throws', async () => {
  const incidentId = newIncident();
  const progress: IncidentProgress = { ...sampleIncidentProgress(), incidentId, at: Date.now() };
  effects.publishProgress(progress);
  effects.publishProgress(progress); // a resumed planner replaying its last state
  effects.publishProgress({ ...progress, servers: [] }); // a different update in the same millisecond
  await waitFor('two progress updates stored', async () => (await progressStored(incidentId, 'recovering')) === 2);

  const stored = await bus.jsm.streams.getMessage(streams.events, { last_by_subj: subjects.incidentProgress(incidentId, 'recovering') });
  assert.equal(stored.json<IncidentProgress>().incidentId, incidentId);

  const before = logged.length;
  assert.doesNotThrow(() => effects.publishProgress({ ...progress, incidentId: 'not.a.token' }));
  assert.doesNotThrow(() => effects.publishProgress({ ...progress, hosts: [''] }));
  await waitFor('both failures logged', () => logged.slice(before).filter((l) => /progress/.test(l.msg)).length === 2);
});
