import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { AckPolicy, connect, nanos, StringCodec, type NatsConnection } from 'nats';
import { pino } from 'pino';
import {
  CommandResult,
  connectBus,
  createStore,
  ensureStreams,
  loadConfig,
  plannerLeaseKey,
  streams,
  subjects,
  topics,
  type Bus,
  type NetCommand,
  type PowerCommand,
  type StorageCommand,
  type Store,
  type VmSpec,
} from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { startLab, type Lab } from '@firebreak/lab';
import {
  executorConfigSchema,
  executorDurables,
  executorLimits,
  idempotencyKey,
  InventoryCommandDrivers,
  RETIRED_EXECUTOR_DURABLE,
  startExecutor,
  type Executor,
  type ExecutorOptions,
} from '../src/index.ts';

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
let store: Store;
let lab: Lab;
let nc: NatsConnection;
let executor: Executor;
const results = new Map<string, CommandResult[]>();
const deadLetters: { subject: string; reason: string }[] = [];
const sc = StringCodec();
/** Short, so a command whose executor died comes back within the test. */
const ACK_WAIT_MS = 2_000;
/** The planner lease the tests' commands come under: the executor obeys only its holder. */
const leader = { fencingToken: 0, issuer: 'planner-test' };
const DEFAULT_LIMITS: ExecutorOptions['limits'] = { perKind: {}, defaultPerKind: 16, perDevice: 2 };

function powerCommand(host: string, action: PowerCommand['action'], overrides: Partial<PowerCommand> = {}): PowerCommand {
  const now = Date.now();
  return {
    kind: 'power',
    action,
    host,
    commandId: `c-${randomUUID()}`,
    incidentId: 'inc-1',
    site: 'site1',
    ...leader,
    issuedAt: now,
    deadline: now + 10_000,
    attempt: 1,
    drill: false,
    ...overrides,
  };
}

async function send(cmd: PowerCommand): Promise<void> {
  await bus.publish(topics.command('power'), cmd, { msgId: randomUUID() });
}

async function resultOf(commandId: string, n = 1, timeoutMs = 10_000): Promise<CommandResult[]> {
  await waitFor(`${n} result(s) for ${commandId}`, () => (results.get(commandId)?.length ?? 0) >= n, timeoutMs);
  return results.get(commandId) ?? [];
}

const spares = (): string[] => lab.inventory.hosts.filter((h) => h.role === 'spare').map((h) => h.id);

function startTestExecutor(executorId: string, limits = DEFAULT_LIMITS): Promise<Executor> {
  return startExecutor({
    inventory: lab.inventory,
    bus,
    store,
    logger: pino({ level: 'silent' }),
    executorId,
    drivers: new InventoryCommandDrivers(lab.inventory, { requestTimeoutMs: 1_000 }),
    limits,
    retry: { initialMs: 50, maxMs: 200 },
    ackWaitMs: ACK_WAIT_MS,
  });
}

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'executor-test' });
  await ensureStreams(bus.jsm);
  store = createStore(redis.url);
  const lease = await store.leaderLeases.acquire(plannerLeaseKey('site1'), leader.issuer, 3_600_000);
  assert.ok(lease.acquired);
  leader.fencingToken = lease.token;
  lab = await startLab({ natsUrl: nats.url, size: 'tiny', powerDelayMs: 100 });
  nc = await connect({ servers: nats.url });
  nc.subscribe(subjects.resultsAll, {
    callback: (_e, m) => {
      const r = JSON.parse(sc.decode(m.data)) as CommandResult;
      results.set(r.commandId, [...(results.get(r.commandId) ?? []), r]);
    },
  });
  nc.subscribe(subjects.deadLettersAll, {
    callback: (_e, m) => deadLetters.push({ subject: m.subject, reason: (JSON.parse(sc.decode(m.data)) as { reason: string }).reason }),
  });
  executor = await startTestExecutor('e1');
});

after(async () => {
  await executor?.stop();
  await nc?.close();
  await lab?.stop();
  await store?.close();
  await bus?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

test('executor - powers a spare on through its BMC and reports the state read back', async () => {
  const [host] = spares();
  assert.ok(host);
  const cmd = powerCommand(host, 'on');
  await send(cmd);
  const [result] = await resultOf(cmd.commandId);
  assert.equal(result?.outcome, 'succeeded', JSON.stringify(result));
  assert.deepEqual(result?.observed, { powerState: 'on', health: 'OK' });
  assert.equal(lab.world.host(host).power, 'on');
  assert.equal(lab.recorder.count('bmc', 'power-on', host), 1);
});

test('executor - a command sent again after it was carried out replays its recorded result', async () => {
  const host = spares()[1];
  assert.ok(host);
  const cmd = powerCommand(host, 'on');
  await send(cmd);
  await resultOf(cmd.commandId);
  // The same command under another message id, as a restarted planner re-sends it.
  // (A crash between effect and ack is below: "killed after recording a result".)
  await send(cmd);
  const [first, again] = await resultOf(cmd.commandId, 2);
  assert.equal(again?.replayed, true);
  assert.equal(again?.finishedAt, first?.finishedAt, 'the recorded result, not a new run');
  assert.equal(lab.recorder.count('bmc', 'power-on', host), 1, 'one power-on at the BMC');
});

test('executor - only the lease holder acts: forged tokens below, equal to and above its own, and a deposed leader, change nothing and block nothing', async () => {
  const host = spares()[2];
  assert.ok(host);
  const forged = [
    { why: /stale/, cmd: powerCommand(host, 'on', { fencingToken: leader.fencingToken - 1 }) },
    { why: /issuer does not match/, cmd: powerCommand(host, 'on', { issuer: 'mallory' }) },
    { why: /above the lease holder's/, cmd: powerCommand(host, 'on', { fencingToken: leader.fencingToken + 1 }) },
    { why: /above the lease holder's/, cmd: powerCommand(host, 'off', { fencingToken: 1_000_000, issuer: 'mallory' }) },
  ];
  const lettersBefore = deadLetters.length;
  for (const { cmd } of forged) await send(cmd);
  await waitFor('a dead letter per forged command', () => deadLetters.length >= lettersBefore + forged.length);
  const letters = deadLetters.slice(lettersBefore);
  for (const [i, { why }] of forged.entries()) assert.match(letters[i]?.reason ?? '', why, `forged command ${i}: ${letters[i]?.reason}`);
  assert.ok(letters.every((l) => l.subject === subjects.deadLetter(subjects.command('power'))));

  // The real leader's command under the id a forger used first: recorded nothing, so it runs; the huge token raised nothing.
  const real = powerCommand(host, 'on', { commandId: forged[0]?.cmd.commandId ?? '' });
  await send(real);
  const [result] = await resultOf(real.commandId);
  assert.equal(result?.outcome, 'succeeded', JSON.stringify(result));
  assert.equal(results.get(real.commandId)?.length, 1, 'no result was ever published for a forged command');
  assert.equal(lab.recorder.count('bmc', 'power-on', host), 1, 'only the real command reached the BMC');
  assert.equal(lab.recorder.count('bmc', 'power-off', host), 0);

  // A handover: the new holder's command acts at once; the deposed leader's, sent after it, is refused.
  const deposed = { ...leader };
  assert.ok(await store.leaderLeases.release(plannerLeaseKey('site1'), leader.issuer));
  const next = await store.leaderLeases.acquire(plannerLeaseKey('site1'), 'planner-next', 3_600_000);
  assert.ok(next.acquired);
  try {
    const fromNext = powerCommand(host, 'status', { fencingToken: next.token, issuer: 'planner-next' });
    await send(fromNext);
    assert.equal((await resultOf(fromNext.commandId))[0]?.outcome, 'succeeded');
    const late = powerCommand(host, 'off', deposed);
    const before = deadLetters.length;
    await send(late);
    await waitFor('the deposed leader\'s command dead-lettered', () => deadLetters.length > before);
    assert.match(deadLetters[before]?.reason ?? '', new RegExp(`token ${deposed.fencingToken} refused: stale, the site site1 lease is now held with token ${next.token}`));
    assert.equal(lab.world.host(host).power, 'on', 'the deposed leader powered nothing off');
  } finally {
    await store.leaderLeases.release(plannerLeaseKey('site1'), 'planner-next');
    const back = await store.leaderLeases.acquire(plannerLeaseKey('site1'), leader.issuer, 3_600_000);
    assert.ok(back.acquired);
    leader.fencingToken = back.token;
  }
  // Leave the spare as the later tests expect it: off.
  const off = powerCommand(host, 'off');
  await send(off);
  assert.equal((await resultOf(off.commandId))[0]?.outcome, 'succeeded');
});

test('executor - a malformed command is dead-lettered and the next one still runs', async () => {
  const before = deadLetters.length;
  await bus.js.publish(subjects.command('power'), sc.encode(JSON.stringify({ kind: 'power', host: 'r1-h01' })), { msgID: randomUUID() });
  await waitFor('the dead letter', () => deadLetters.slice(before).some((d) => d.subject === subjects.deadLetter(subjects.command('power'))));
  assert.match(deadLetters[before]?.reason ?? '', /commandId/);
  const ok = powerCommand(spares()[0] ?? '', 'status', {});
  await send(ok);
  assert.equal((await resultOf(ok.commandId))[0]?.outcome, 'succeeded');
});

test('executor - a device that times out is retried, then reported failed within the deadline', async () => {
  const host = lab.inventory.hosts.find((h) => h.rack === 'r2' && h.role === 'spare')?.id;
  assert.ok(host);
  lab.faults.setBmc(host, { mode: 'slow', latencyMs: 3_000 });
  const cmd = powerCommand(host, 'on', { ...leader, deadline: Date.now() + 1_500 });
  await send(cmd);
  const [result] = await resultOf(cmd.commandId, 1, 5_000);
  assert.equal(result?.outcome, 'failed');
  assert.ok((result?.attempts ?? 0) >= 2, `attempts ${result?.attempts}`);
  assert.ok((result?.finishedAt ?? 0) <= cmd.deadline + 300, 'reported within the deadline');
  lab.faults.setBmc(host, { mode: 'ok' });
});

test('executor - per-device concurrency holds at the BMC under a burst of 1,000 commands', async () => {
  const r1 = lab.inventory.hosts.filter((h) => h.rack === 'r1');
  const bmc = r1[0]?.bmc.address;
  assert.ok(bmc && r1.every((h) => h.bmc.address === bmc), 'rack r1 shares one BMC endpoint');
  // A real BMC takes a while to answer; one that answers at once finishes each request before the next arrives.
  for (const h of r1) lab.faults.setBmc(h.id, { mode: 'slow', latencyMs: 5 });
  try {
    lab.recorder.resetPeaks();
    const burst = Array.from({ length: 1_000 }, (_, i) => powerCommand(r1[i % r1.length]?.id ?? '', 'status', {}));
    await Promise.all(burst.map((c) => send(c)));
    await waitFor('1,000 results', () => burst.every((c) => results.has(c.commandId)), 60_000);
    assert.ok(burst.every((c) => results.get(c.commandId)?.[0]?.outcome === 'succeeded'));
  } finally {
    for (const h of r1) lab.faults.setBmc(h.id, { mode: 'ok' });
  }
  // Counted by the BMC itself, from each request's arrival until it answered.
  const peak = lab.recorder.peakInFlight('bmc', bmc);
  assert.ok(peak <= 2, `the BMC had ${peak} requests in hand at once; the limit is 2`);
  assert.equal(peak, 2, 'the burst did press on the limit');
});

test('executor - storage: a grant makes the LUN visible to the new host, a fence takes every LUN away', async () => {
  const spare = lab.inventory.hosts.find((h) => h.role === 'spare' && h.hba);
  const lun = lab.inventory.luns[0];
  assert.ok(spare?.hba && lun);
  const base = { kind: 'storage' as const, array: lun.array, site: 'site1', incidentId: 'inc-1', ...leader, attempt: 1, drill: false };
  const now = Date.now();
  const grant: StorageCommand = { ...base, action: 'grant', lun: lun.id, initiator: spare.hba.initiator, host: spare.id, commandId: `c-${randomUUID()}`, issuedAt: now, deadline: now + 10_000 };
  await bus.publish(topics.command('storage'), grant, { msgId: randomUUID() });
  const [granted] = await resultOf(grant.commandId);
  assert.equal(granted?.outcome, 'succeeded', JSON.stringify(granted));
  assert.deepEqual(granted?.observed, { visible: true });
  assert.equal(lab.world.canSee(spare.id, lun.id), true);

  const fence: StorageCommand = { ...base, action: 'revoke-all', initiator: spare.hba.initiator, host: spare.id, commandId: `c-${randomUUID()}`, issuedAt: now, deadline: now + 10_000 };
  await bus.publish(topics.command('storage'), fence, { msgId: randomUUID() });
  const [fenced] = await resultOf(fence.commandId);
  assert.equal(fenced?.outcome, 'succeeded', JSON.stringify(fenced));
  assert.equal(lab.world.canSee(spare.id, lun.id), false);
  assert.deepEqual(lab.world.lunsVisibleTo(spare.hba.initiator), []);
});

test('executor - boot without a boot service configured fails permanently with the fix, at once', async () => {
  const spare = lab.inventory.hosts.find((h) => h.role === 'spare');
  const image = lab.inventory.images[0];
  assert.ok(spare?.nics[0] && image);
  const now = Date.now();
  const cmd = { kind: 'boot' as const, action: 'configure' as const, host: spare.id, mac: spare.nics[0].mac, image: image.id, server: 'db1', site: 'site1', incidentId: 'inc-1', ...leader, attempt: 1, drill: false, commandId: `c-${randomUUID()}`, issuedAt: now, deadline: now + 10_000 };
  await bus.publish(topics.command('boot'), cmd, { msgId: randomUUID() });
  const [result] = await resultOf(cmd.commandId);
  assert.equal(result?.outcome, 'failed');
  assert.equal(result?.attempts, 1, 'permanent errors are not retried');
  assert.match(result?.error?.message ?? '', /set FB_BOOT_SERVICE_URL/);
});

test('executor - vm: a VM is defined and started on a running hypervisor, and its state is read back', async () => {
  const hypervisor = lab.inventory.hosts.find((h) => h.role === 'hypervisor' && h.hypervisor);
  const server = lab.inventory.servers[0];
  assert.ok(hypervisor && server, 'the tiny lab has a standing hypervisor');
  const base = { kind: 'vm' as const, hypervisor: hypervisor.id, vm: `${server.id}-vm`, site: 'site1', incidentId: 'inc-1', ...leader, attempt: 1, drill: false };
  const run = async (extra: { action: 'define'; spec: VmSpec } | { action: 'start' | 'undefine' }): Promise<CommandResult | undefined> => {
    const now = Date.now();
    const cmd = { ...base, ...extra, commandId: `c-${randomUUID()}`, issuedAt: now, deadline: now + 10_000 };
    await bus.publish(topics.command('vm'), cmd, { msgId: randomUUID() });
    return (await resultOf(cmd.commandId))[0];
  };
  const spec = { cpus: 2, memoryGiB: 2, image: server.image, vlans: server.vlans, luns: [], mac: '52:54:00:fb:10:01' };
  const defined = await run({ action: 'define', spec });
  assert.equal(defined?.outcome, 'succeeded', JSON.stringify(defined));
  assert.deepEqual(defined?.observed, { state: 'stopped' });
  const started = await run({ action: 'start' });
  assert.deepEqual(started?.observed, { state: 'running' }, JSON.stringify(started));
  assert.equal(lab.world.recorder.count('vm', 'start', hypervisor.id), 1);
  const removed = await run({ action: 'undefine' });
  assert.deepEqual(removed?.observed, { state: 'absent' }, JSON.stringify(removed));
});

test('executor - net: an access VLAN command puts a spare on a server VLAN, read back from the switch', async () => {
  const spare = lab.inventory.hosts.find((h) => h.role === 'spare');
  const vlan = lab.inventory.vlans[0]?.id;
  const nic = spare?.nics[0];
  assert.ok(spare && nic && vlan !== undefined);
  const now = Date.now();
  const cmd: NetCommand = { kind: 'net', action: 'access', vlan, switch: nic.switch, port: nic.port, host: spare.id, site: 'site1', incidentId: 'inc-1', ...leader, attempt: 1, drill: false, commandId: `c-${randomUUID()}`, issuedAt: now, deadline: now + 10_000 };
  await bus.publish(topics.command('net'), cmd, { msgId: randomUUID() });
  const [result] = await resultOf(cmd.commandId);
  assert.equal(result?.outcome, 'succeeded', JSON.stringify(result));
  assert.equal((result?.observed as { pvid?: number }).pvid, vlan);
  // Only this NIC was asked for; the lab has a host on a VLAN only once every NIC is, so the port is what to check.
  assert.deepEqual([...lab.world.port(nic.switch, nic.port).egress], [vlan]);
});

/** An access-VLAN command for each spare's first NIC: net commands that touch switches only, never a BMC. */
function netCommands(): NetCommand[] {
  const vlan = lab.inventory.vlans[0]?.id;
  assert.ok(vlan !== undefined);
  const now = Date.now();
  return lab.inventory.hosts
    .filter((h) => h.role === 'spare')
    .flatMap((h) => (h.nics[0] ? [{ host: h.id, nic: h.nics[0] }] : []))
    .map(({ host, nic }) => ({ kind: 'net', action: 'access', vlan, switch: nic.switch, port: nic.port, host, site: 'site1', incidentId: 'inc-1', ...leader, attempt: 1, drill: false, commandId: `c-${randomUUID()}`, issuedAt: now, deadline: now + 10_000 }));
}

test('executor - per-kind: net commands published after a power burst larger than its limit do not wait for it, and the power limit holds at the BMCs', async () => {
  await executor.stop();
  const config = loadConfig(executorConfigSchema, { NATS_URL: nats.url, REDIS_URL: redis.url, FB_EXEC_PER_KIND: '16', FB_EXEC_PER_KIND_POWER: '2', FB_EXEC_PER_DEVICE: '4' });
  executor = await startTestExecutor('e-kinds', executorLimits(config));
  // Two hosts on each of the three racks' BMCs: at 4 per device they would allow 12 power requests at once.
  const hosts = lab.inventory.racks.flatMap((r) => lab.inventory.hosts.filter((h) => h.rack === r.id && h.role === 'production').slice(0, 2).map((h) => h.id));
  assert.equal(new Set(hosts.map((id) => lab.inventory.hosts.find((h) => h.id === id)?.bmc.address)).size, 3);
  const net = netCommands();
  assert.ok(net.length > 0);
  // 20 times the power limit, and more than the 16 slots a net consumer has: at 200 ms a BMC request, about 4 s of work.
  const power = Array.from({ length: 40 }, (_, i) => powerCommand(hosts[i % hosts.length] ?? '', 'status', {}));
  for (const h of hosts) lab.faults.setBmc(h, { mode: 'slow', latencyMs: 200 });
  try {
    lab.recorder.resetPeaks();
    // The whole burst is in the work queue before the first net command: one durable for every kind
    // would hand the net commands out only once all but its slots' worth of the burst were done.
    for (const c of power) await send(c);
    for (const c of net) await bus.publish(topics.command('net'), c, { msgId: randomUUID() });

    await waitFor('the net results', () => net.every((c) => results.has(c.commandId)), 10_000);
    const powerDone = power.filter((c) => results.has(c.commandId)).length;
    assert.ok(powerDone < power.length / 2, `the net commands waited for ${powerDone} of the ${power.length} power commands ahead of them`);
    for (const c of net) assert.equal(results.get(c.commandId)?.[0]?.outcome, 'succeeded', JSON.stringify(results.get(c.commandId)));

    await waitFor('the power results', () => power.every((c) => results.has(c.commandId)), 30_000);
    assert.ok(power.every((c) => results.get(c.commandId)?.[0]?.outcome === 'succeeded'));
    // Counted by the BMCs: every endpoint's requests in hand, added up.
    const peak = lab.recorder.peakInFlight('bmc');
    assert.ok(peak <= 2, `the BMCs had ${peak} power requests in hand at once; FB_EXEC_PER_KIND_POWER is 2`);
    assert.equal(peak, 2, 'the burst did press on the limit');
  } finally {
    for (const h of hosts) lab.faults.setBmc(h, { mode: 'ok' });
  }
});

test('executor - per-kind: executors share each kind\'s durable, so every command goes to exactly one of them', async () => {
  // Two slots each for power, so neither executor can take the whole burst.
  const limits: ExecutorOptions['limits'] = { perKind: { power: 2 }, defaultPerKind: 16, perDevice: 4 };
  await executor.stop();
  executor = await startTestExecutor('e-a', limits);
  const other = await startTestExecutor('e-b', limits);
  try {
    const hosts = lab.inventory.hosts.filter((h) => h.role === 'production').map((h) => h.id);
    const power = Array.from({ length: 40 }, (_, i) => powerCommand(hosts[i % hosts.length] ?? '', 'status', {}));
    const net = netCommands();
    for (const c of power) await send(c);
    for (const c of net) await bus.publish(topics.command('net'), c, { msgId: randomUUID() });
    const all = [...power, ...net];
    await waitFor('every result', () => all.every((c) => results.has(c.commandId)), 30_000);
    // A command delivered twice would show up as a second, replayed result.
    await new Promise((r) => setTimeout(r, 500));
    for (const c of all) assert.equal(results.get(c.commandId)?.length, 1, JSON.stringify(results.get(c.commandId)));
    assert.ok(all.every((c) => results.get(c.commandId)?.[0]?.outcome === 'succeeded'));
    const by = new Set(power.map((c) => results.get(c.commandId)?.[0]?.executor));
    assert.deepEqual([...by].sort(), ['e-a', 'e-b'], 'both executors took power commands');
  } finally {
    await other.stop();
  }
});

test('executor - upgrading: the durable older executors shared is named with the fix; once deleted, the commands it held are carried out', async () => {
  await executor.stop();
  // The work queue as an executor from before the per-kind durables leaves it: its one durable on fb.cmd.>, a command in hand.
  for (const durable of executorDurables) await bus.jsm.consumers.delete(streams.commands, durable);
  await bus.jsm.consumers.add(streams.commands, { durable_name: RETIRED_EXECUTOR_DURABLE, filter_subject: subjects.commandsAll, ack_policy: AckPolicy.Explicit, ack_wait: nanos(60_000) });
  const [a, b] = spares();
  assert.ok(a && b);
  const inHand = powerCommand(a, 'status', {});
  const queued = powerCommand(b, 'status', {});
  await send(inHand);
  await send(queued);
  const held = await (await bus.js.consumers.get(streams.commands, RETIRED_EXECUTOR_DURABLE)).next({ expires: 5_000 });
  assert.equal(held?.subject, subjects.command('power'), 'the old executor took a command and never acked it');

  await assert.rejects(
    () => startTestExecutor('e-upgrading'),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /cannot create the durables executor-power \(fb\.cmd\.power\), executor-net .* on FB_CMDS/);
      assert.match(err.message, /the durable "executor" \(fb\.cmd\.>\)/);
      assert.match(err.message, /run the streams job as the NATS admin \(deploy\/bin\/ensure-streams\.ts.*or `nats consumer rm FB_CMDS executor`/);
      return true;
    },
  );
  const left = (await bus.jsm.consumers.list(streams.commands).next()).map((c) => c.name);
  assert.deepEqual(left, [RETIRED_EXECUTOR_DURABLE], 'nothing half-started next to the old durable');

  // What the streams job does (deploy/test/nats-permissions.int.test.ts runs the job itself).
  await bus.jsm.consumers.delete(streams.commands, RETIRED_EXECUTOR_DURABLE);
  executor = await startTestExecutor('e-upgraded');
  for (const cmd of [inHand, queued]) {
    const [result] = await resultOf(cmd.commandId);
    assert.equal(result?.outcome, 'succeeded', JSON.stringify(result));
    assert.equal(result?.executor, 'e-upgraded');
  }
});

test('executor - the service refuses to start with FB_EXEC_CONCURRENCY set (exit 2), naming what replaced it', async () => {
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main], {
    env: { ...process.env, NATS_URL: nats.url, REDIS_URL: redis.url, FB_INVENTORY: lab.inventoryPath, FB_EXEC_CONCURRENCY: '64', SERVICE_INSTANCE_ID: 'e-old-config' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 2, output);
  assert.match(output, /FB_EXEC_CONCURRENCY: no longer read: each command kind has its own consumer with FB_EXEC_PER_KIND_<KIND> handler slots/);
  assert.doesNotMatch(output, /"msg":"ready"/);
});

const crashingExecutorEntry = fileURLToPath(new URL('./fixtures/crashing-executor.ts', import.meta.url));

/** A real executor in its own process that SIGKILLs itself at `crash` while running `commandId`. */
async function runCrashingExecutor(crash: 'after-effect' | 'after-result', cmd: PowerCommand, executorId: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), crashingExecutorEntry], {
    env: {
      ...process.env,
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      FB_INVENTORY: lab.inventoryPath,
      FB_CRASH: crash,
      FB_CRASH_COMMAND: cmd.commandId,
      FB_ACK_WAIT_MS: String(ACK_WAIT_MS),
      SERVICE_INSTANCE_ID: executorId,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  child.once('exit', (code, signal) => (exit = { code, signal }));
  try {
    await waitFor('the crashing executor to consume', () => output.includes('ready\n') || exit !== undefined, 30_000);
    assert.equal(exit, undefined, `the crashing executor exited before it was ready:\n${output}`);
    await send(cmd);
    await waitFor('the crashing executor to die', () => exit !== undefined, 15_000);
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' }, output);
  } finally {
    if (exit === undefined) child.kill('SIGKILL');
  }
}

test('executor - killed after recording a result but before the ack: the next executor replays it, and the BMC acted once', async () => {
  const host = spares()[2];
  assert.ok(host);
  assert.equal(lab.world.host(host).power, 'off');
  const ons = lab.recorder.count('bmc', 'power-on', host);
  const cmd = powerCommand(host, 'on', {});
  // Only the doomed executor consumes, so it is the one that gets the command.
  await executor.stop();
  await runCrashingExecutor('after-result', cmd, 'doomed-1');

  const [first] = await resultOf(cmd.commandId);
  assert.equal(first?.executor, 'doomed-1');
  assert.equal(first?.outcome, 'succeeded', JSON.stringify(first));
  assert.deepEqual(await store.idempotency.get(idempotencyKey(cmd.commandId), CommandResult), { state: 'done', result: first });
  assert.equal(lab.recorder.count('bmc', 'power-on', host), ons + 1);
  const reads = lab.recorder.count('bmc', 'get-system', host);

  // Unacked, the command comes back after the ack wait, to whichever executor consumes then.
  executor = await startTestExecutor('e2');
  const [, again] = await resultOf(cmd.commandId, 2, 3 * ACK_WAIT_MS);
  assert.deepEqual(again, { ...first, replayed: true }, 'the recorded result, published again');
  assert.equal(lab.recorder.count('bmc', 'power-on', host), ons + 1, 'one power-on at the BMC');
  assert.equal(lab.recorder.count('bmc', 'get-system', host), reads, 'the redelivery did not touch the BMC');
  assert.equal(lab.world.host(host).power, 'on');
});

test('executor - killed after the effect but before recording it: the redelivery runs again, finds the state held and reports it', async () => {
  const host = spares()[2];
  assert.ok(host);
  assert.equal(lab.world.host(host).power, 'on');
  const offs = lab.recorder.count('bmc', 'power-off', host);
  const cmd = powerCommand(host, 'off', {});
  await executor.stop();
  await runCrashingExecutor('after-effect', cmd, 'doomed-2');

  assert.equal(lab.world.host(host).power, 'off', 'the BMC powered the host off before the executor died');
  assert.equal(lab.recorder.count('bmc', 'power-off', host), offs + 1);
  assert.deepEqual(await store.idempotency.get(idempotencyKey(cmd.commandId)), { state: 'pending' }, 'died before recording a result');
  assert.equal(results.has(cmd.commandId), false, 'nothing was published');
  const reads = lab.recorder.count('bmc', 'get-system', host);

  executor = await startTestExecutor('e3');
  const [result] = await resultOf(cmd.commandId, 1, 3 * ACK_WAIT_MS);
  assert.equal(result?.outcome, 'succeeded', JSON.stringify(result));
  assert.equal(result?.executor, 'e3', 'a fresh run, not a replay');
  assert.equal(result?.replayed, false);
  assert.deepEqual(result?.observed, { powerState: 'off', health: 'OK' });
  assert.ok(lab.recorder.count('bmc', 'get-system', host) > reads, 'the second run went to the BMC');
  // Ensured, not toggled: the state already held, so no second reset (a toggle would have powered it back on).
  assert.equal(lab.recorder.count('bmc', 'power-off', host), offs + 1, 'one power-off at the BMC');
  assert.equal(lab.world.host(host).power, 'off');
  assert.deepEqual(await store.idempotency.get(idempotencyKey(cmd.commandId), CommandResult), { state: 'done', result }, 'the published result is the recorded one');
});
