/**
 * Forged commands against a running system (two planners, two executors),
 * its NATS and Redis authenticated as `firebreak up` runs them. A client
 * without credentials is not let in, and the operator identity may not
 * publish a command. Even with the planner's own login (leaked, or a bus run
 * without authentication) power commands with fencing tokens below, equal to
 * and far above the leader's act on no device, none makes a real command
 * look stale, a 1 MB bad message is dead-lettered without holding up the
 * queue, and the next real rack loss recovers completely — judged at the
 * lab's BMCs and switches, not by what Firebreak reports.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { connectBus, createStore, plannerLeaseKey, streams, subjects, topics, type DeadLetter, type PowerCommand } from '@firebreak/shared';
import { sampleHostFailed, waitFor } from '@firebreak/shared/testing';

const observer = () => system.observer;
import { burnRack, expectRackRecovered } from '../src/rack-burn.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: 'tiny', executors: 2, planners: 2 });
});
after(() => system?.stop());

function forged(host: string, action: PowerCommand['action'], fencingToken: number, issuer: string): PowerCommand {
  const now = Date.now();
  return { kind: 'power', action, host, commandId: `forged-${randomUUID()}`, incidentId: 'forged', site: 'site1', fencingToken, issuer, issuedAt: now, deadline: now + 30_000, attempt: 1, drill: false };
}

test('a client without credentials cannot connect, and the operator identity cannot publish a command or an event', async () => {
  await assert.rejects(connectBus({ url: system.natsUrl, name: 'intruder' }), /Authorization Violation|NATS refused/i);
  const { bus, lab } = system;
  const queued = (await bus.jsm.streams.info(streams.commands)).state.messages;
  const host = lab.inventory.hosts.find((h) => h.role === 'production')?.id ?? '';
  // Raw JetStream publishes with a short wait for the ack that a refused publish never gets.
  const publishAsOperator = (subject: string, message: unknown) => bus.js.publish(subject, Buffer.from(JSON.stringify(message)), { msgID: `op-${randomUUID()}`, timeout: 1_500 });
  await assert.rejects(publishAsOperator(subjects.command('power'), forged(host, 'off', 1, 'operator')), /permission|timeout/i);
  const failedCount = observer().hostFailures.length;
  await assert.rejects(publishAsOperator(subjects.hostEvent('failed'), { ...sampleHostFailed(), host, site: 'site1' }), /permission|timeout/i);
  assert.equal((await bus.jsm.streams.info(streams.commands)).state.messages, queued, 'nothing reached the command queue');
  assert.equal(lab.world.host(host).power, 'on');
  assert.equal(observer().hostFailures.length, failedCount, 'no failure was published');
});

test('forged commands with tokens below, equal to and above the leader\'s change nothing and block nothing', { timeout: 240_000 }, async () => {
  const { lab, bus, observer } = system;
  // The planner's own login: what a leaked password, or a bus without authentication, would give a forger.
  const forger = await system.connectAs('planner', 'forger');
  after(() => forger.close());
  const store = createStore(system.redisUrl);
  const leader = await store.leaderLeases.holder(plannerLeaseKey('site1')).finally(() => store.close());
  assert.ok(leader, 'a planner leads site1');

  const deadLetters: DeadLetter[] = [];
  const letters = await bus.subscribeCore(topics.deadLetters, (d) => void deadLetters.push(d));
  // Production hosts of a rack that is not burned below: a forged power-off would fail them over.
  const victims = lab.inventory.hosts.filter((h) => h.rack === 'r1' && h.role === 'production').map((h) => h.id);
  assert.ok(victims.length >= 2);
  const [a = '', b = ''] = victims;
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const attempts = [
    forged(a, 'off', Math.max(0, leader.token - 1), leader.owner),
    forged(a, 'off', leader.token, 'mallory'),
    forged(b, 'off', leader.token + 1, leader.owner),
    forged(b, 'status', 1_000_000, leader.owner),
  ];
  try {
    for (const cmd of attempts) await forger.publish(topics.command('power'), cmd, { msgId: cmd.commandId });
    await waitFor('every forged command dead-lettered', () => attempts.every((c) => deadLetters.some((d) => d.originalMsgId === c.commandId)), 30_000).catch((err: unknown) =>
      assert.fail(`${(err as Error).message}\n${system.logs()}`),
    );
  } finally {
    await letters.stop();
  }
  for (const cmd of attempts) {
    const letter = deadLetters.find((d) => d.originalMsgId === cmd.commandId);
    assert.match(letter?.reason ?? '', /refused: (stale|token above|the site site1 lease is held by another planner)/, `${cmd.fencingToken}/${cmd.issuer}: ${letter?.reason}`);
  }
  // Judged at the lab: no BMC was asked for anything, every victim still runs, nothing was declared failed.
  const bmcActions = lab.recorder.events().filter((e) => e.seq > sinceSeq && e.source === 'bmc' && (e.host === a || e.host === b) && e.action !== 'get-system');
  assert.deepEqual(bmcActions, [], 'no forged command reached a BMC');
  for (const host of [a, b]) assert.equal(lab.world.host(host).power, 'on', `${host} still runs`);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  assert.deepEqual(observer.hostFailures.filter((f) => f.host === a || f.host === b), [], 'nothing was failed over');

  // A 1 MB bad message on the power queue is dead-lettered (a truncated copy, its size and hash) and the queue moves on.
  const huge = Buffer.from(JSON.stringify({ kind: 'power', action: 'off', host: a, padding: 'x'.repeat(1_000_000) }));
  const hugeId = `huge-${randomUUID()}`;
  const hugeLetters: DeadLetter[] = [];
  const watch = await bus.subscribeCore(topics.deadLetters, (d) => void (d.originalMsgId === hugeId && hugeLetters.push(d)));
  try {
    await forger.js.publish(subjects.command('power'), huge, { msgID: hugeId });
    await waitFor('the 1 MB message dead-lettered', () => hugeLetters.length > 0, 30_000);
  } finally {
    await watch.stop();
  }
  assert.equal(hugeLetters[0]?.payloadBytes, huge.length);
  assert.equal(hugeLetters[0]?.payloadTruncated, true);
  assert.equal(lab.world.host(a).power, 'on');

  // Nothing blocked: the leader's real commands (its token was never raised past) recover a burned rack in full.
  const burned = burnRack(system, 'r2');
  await expectRackRecovered(system, burned, 150_000);
});
