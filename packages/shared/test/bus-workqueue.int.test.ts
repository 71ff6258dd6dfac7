import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectBus, ensureStreams, type Bus } from '../src/bus/index.ts';
import { streams, subjects } from '../src/subjects.ts';
import { startNats, waitFor, type TestServer } from '../src/testing/index.ts';
import { sampleCommand } from '../src/testing/samples.ts';
import { topics } from '../src/topics.ts';

const powerTopic = topics.command('power');
const storageTopic = topics.command('storage');

let nats: TestServer;
const buses: Bus[] = [];

async function newBus(name: string): Promise<Bus> {
  const bus = await connectBus({ url: nats.url, name });
  buses.push(bus);
  return bus;
}

before(async () => {
  nats = await startNats();
  await ensureStreams((await newBus('setup')).jsm);
});

after(async () => {
  // A bus whose connection a test killed is left as it is: its handler never settles.
  await Promise.all(buses.filter((b) => !b.nc.isClosed()).map((b) => b.close()));
  await nats?.stop();
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('bus - two instances on one FB_CMDS durable share the commands, each handled once', async () => {
  const [a, b] = [await newBus('executor-a'), await newBus('executor-b')];
  const handledBy = new Map<string, string[]>([
    ['a', []],
    ['b', []],
  ]);
  for (const [name, bus] of [
    ['a', a],
    ['b', b],
  ] as const) {
    await bus.consume({
      topic: powerTopic,
      durable: 'executor-power',
      ackWaitMs: 1_000,
      handler: async (cmd) => {
        handledBy.get(name)?.push(cmd.commandId);
        await new Promise((r) => setTimeout(r, 10));
      },
    });
  }

  const ids = Array.from({ length: 20 }, (_, i) => `cmd-${i}`);
  for (const commandId of ids) await a.publish(powerTopic, { ...sampleCommand('power'), commandId });

  const all = () => [...(handledBy.get('a') ?? []), ...(handledBy.get('b') ?? [])];
  await waitFor('all commands', () => all().length >= ids.length);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(all().sort(), [...ids].sort(), 'each command handled exactly once');
  assert.ok((handledBy.get('a') ?? []).length > 0 && (handledBy.get('b') ?? []).length > 0, 'both instances took work');
  const stream = await a.jsm.streams.info(streams.commands);
  assert.equal(stream.state.messages, 0, 'acked commands leave the work queue');

  // The work queue refuses a second durable whose filter overlaps: executors must share one.
  await assert.rejects(
    a.consume({ topic: topics.commands, durable: 'executor-all', handler: async () => {} }),
    /not unique/,
  );
});

test('bus - a handler slower than ack wait keeps its message: no second delivery', async () => {
  const bus = await newBus('executor-slow');
  const deliveries: number[] = [];
  const done = deferred();
  await bus.consume({
    topic: topics.command('boot'),
    durable: 'executor-boot',
    ackWaitMs: 200,
    handler: async (_cmd, ctx) => {
      deliveries.push(ctx.deliveries);
      await new Promise((r) => setTimeout(r, 700));
      done.resolve();
    },
  });
  await bus.publish(topics.command('boot'), sampleCommand('boot'));
  await done.promise;
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(deliveries, [1]);
});

test('bus - stopping a consumer mid-handler leaves the message unacked and it is redelivered', async () => {
  const bus = await newBus('executor-net');
  const started = deferred();
  const first = await bus.consume({
    topic: topics.command('net'),
    durable: 'executor-net',
    ackWaitMs: 5_000,
    handler: async (_cmd, ctx) => {
      started.resolve();
      await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopping'))));
    },
  });
  await bus.publish(topics.command('net'), sampleCommand('net'));
  await started.promise;
  const pending = await bus.jsm.consumers.info(streams.commands, 'executor-net');
  assert.equal(pending.num_ack_pending, 1, 'not acked while the handler runs');
  await first.stop();

  const seen: number[] = [];
  await bus.consume({
    topic: topics.command('net'),
    durable: 'executor-net',
    ackWaitMs: 5_000,
    handler: async (_cmd, ctx) => {
      seen.push(ctx.deliveries);
    },
  });
  // Well inside ack wait: the interrupted message was handed back, not left to time out.
  await waitFor('the redelivery', () => seen.length > 0, 2_000);
  assert.deepEqual(seen, [2]);
});

test('bus - a process that dies before acking gets its message redelivered to the next one', async () => {
  const crashing = await newBus('executor-crashing');
  const started = deferred();
  await crashing.consume({
    topic: storageTopic,
    durable: 'executor-storage',
    ackWaitMs: 300,
    handler: async () => {
      started.resolve();
      await new Promise(() => {}); // the effect never completes
    },
  });
  await crashing.publish(storageTopic, sampleCommand('storage'));
  await started.promise;
  await crashing.nc.close(); // dies: no ack, no drain

  const next = await newBus('executor-next');
  const seen: Array<{ id: string; deliveries: number }> = [];
  await next.consume({
    topic: storageTopic,
    durable: 'executor-storage',
    ackWaitMs: 300,
    handler: async (cmd, ctx) => {
      seen.push({ id: cmd.commandId, deliveries: ctx.deliveries });
    },
  });
  await waitFor('the redelivery', () => seen.length > 0);
  assert.deepEqual(seen, [{ id: sampleCommand('storage').commandId, deliveries: 2 }]);
});

test('bus - a message whose last allowed attempt died with its process is dead-lettered, not dropped', async () => {
  const crashing = await newBus('executor-vm-crashing');
  const started = deferred();
  const options = { topic: topics.command('vm'), durable: 'executor-vm', ackWaitMs: 300, maxDeliver: 1 };
  await crashing.consume({
    ...options,
    handler: async () => {
      started.resolve();
      await new Promise(() => {});
    },
  });
  await crashing.publish(topics.command('vm'), sampleCommand('vm'));
  await started.promise;
  await crashing.nc.close();

  const next = await newBus('executor-vm-next');
  let calls = 0;
  await next.consume({
    ...options,
    handler: async () => {
      calls++;
    },
  });
  let reason = '';
  await waitFor('the dead letter', async () => {
    const sm = await next.jsm.streams
      .getMessage(streams.deadLetters, { last_by_subj: subjects.deadLetter(topics.command('vm').subject) })
      .catch(() => undefined);
    reason = sm?.json<{ reason: string }>().reason ?? '';
    return reason !== '';
  });
  assert.match(reason, /^max deliveries \(1\) exceeded: the last attempt never settled/);
  assert.equal(calls, 0, 'the handler is not run past maxDeliver');
});
