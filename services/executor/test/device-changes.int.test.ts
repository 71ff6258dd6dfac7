/**
 * Issue #16: two executors changing ports of one switch at once must not undo
 * each other. Two driver stacks, each with its own Redis connection, driver
 * cache and SNMP sessions (what two executor processes have), trunk the two
 * NICs of each host at the same time against the real lab switch agent with
 * a realistic per-request latency; the switch itself is the judge, read over
 * SNMP by a third driver and in the lab's world, never the commands' reports.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ConcurrentWriteError, SnmpNetDriver, type PortState } from '@firebreak/drivers';
import { createStore, FirebreakError, Inventory, type NetCommand, type Store } from '@firebreak/shared';
import { freeUdpPort, startRedis, type TestServer } from '@firebreak/shared/testing';
import { Faults, LabRecorder, startSwitchSimulator, World, type SwitchSimulator } from '@firebreak/lab';
import { InventoryCommandDrivers } from '../src/index.ts';

const env = { LAB_SNMP_TOR: JSON.stringify({ community: 'tor-rw-community' }) };
const HOSTS = 8;
/**
 * Each SNMP request waits this long at the switch, plus up to the jitter: the
 * window between one manager's read and its SET, and requests from two
 * managers served in another order than they were sent.
 */
const SWITCH = { mode: 'slow', latencyMs: 10, jitterMs: 30 } as const;
const ROUNDS = 6;

/** One top-of-rack switch; every host has two NICs on it (ports 2i+1 and 2i+2), as the lab's racks are cabled. */
function rackInventory(port: number): Inventory {
  const hosts = Array.from({ length: HOSTS }, (_, i) => ({
    id: `h${i + 1}`,
    site: 's1',
    rack: 'r1',
    arch: 'x86_64',
    cpus: 8,
    memoryGiB: 32,
    nics: [0, 1].map((n) => ({ mac: `52:54:00:00:0${n}:${String(i + 1).padStart(2, '0')}`, switch: 'tor', port: 2 * i + n + 1 })),
    bmc: { address: '127.0.0.1:8443', credentialsRef: 'env:LAB_BMC' },
    role: 'spare',
  }));
  return Inventory.parse({
    version: 1,
    racks: [{ id: 'r1', site: 's1' }],
    switches: [{ id: 'tor', fabric: 'f1', address: `127.0.0.1:${port}`, credentialsRef: 'env:LAB_SNMP_TOR' }],
    vlans: [10, 20, 30, 40].map((id) => ({ id, name: `v${id}`, fabric: 'f1' })),
    hosts,
    servers: [],
    assignments: [],
  });
}

let redis: TestServer;
let world: World;
let sim: SwitchSimulator;
let judge: SnmpNetDriver;
/**
 * Two executors: each its own store connection and drivers, sharing only Redis and the switch. Commands go
 * straight to the drivers, as the command runner hands them over once a command passed its lease checks.
 */
const executors: { id: string; store: Store; drivers: InventoryCommandDrivers }[] = [];

before(async () => {
  redis = await startRedis();
  world = new World(rackInventory(await freeUdpPort()), new LabRecorder());
  sim = await startSwitchSimulator(world, { env });
  new Faults(world).setSwitch('tor', SWITCH);
  for (const id of ['exec-a', 'exec-b']) {
    const store = createStore(redis.url);
    executors.push({ id, store, drivers: new InventoryCommandDrivers(world.inventory, { env, requestTimeoutMs: 1_000, deviceLocks: store.deviceLocks, executorId: id }) });
  }
  const [sw] = world.inventory.switches;
  assert.ok(sw);
  judge = await SnmpNetDriver.fromInventory(sw, { env, timeoutMs: 1_000 });
});

after(async () => {
  await judge?.close();
  for (const e of executors) {
    await e.drivers.close();
    await e.store.close();
  }
  await sim?.stop();
  await redis?.stop();
});

/** A trunk (or, with one VLAN, an access port) for one NIC, as the planner's network step sends it. */
function netCommand(host: string, port: number, vlans: number[], deadlineMs = 20_000, claim = { site: 's1', fencingToken: 7 }): NetCommand {
  const now = Date.now();
  const [native] = vlans;
  assert.ok(native !== undefined);
  const frame = { kind: 'net', host, switch: 'tor', port, ...claim, incidentId: 'inc-1', issuer: 'planner-1', attempt: 1, drill: false, commandId: `c-${randomUUID()}`, issuedAt: now, deadline: now + deadlineMs };
  return (vlans.length === 1 ? { ...frame, action: 'access', vlan: native } : { ...frame, action: 'trunk', vlans, nativeVlan: native }) as NetCommand;
}

/** What one port must read as after its command: exactly its VLANs, the first untagged and as PVID, link up. */
function expected(vlans: number[]): PortState {
  const [native = 0] = vlans;
  return { admin: 'up', oper: 'up', pvid: native, vlans: [...vlans].sort((a, b) => a - b), untagged: [native] };
}

/** Every NIC of every host, each read from the switch over SNMP, against what its command asked for. */
async function wrongPorts(want: ReadonlyMap<number, number[]>): Promise<string[]> {
  const wrong: string[] = [];
  for (const [port, vlans] of want) {
    const seen = await judge.read({ switch: 'tor', port }, AbortSignal.timeout(5_000));
    const inLab = world.port('tor', port);
    const inWorld = [...inLab.egress].sort((a, b) => a - b);
    if (JSON.stringify(seen) !== JSON.stringify(expected(vlans)) || JSON.stringify(inWorld) !== JSON.stringify(expected(vlans).vlans)) {
      wrong.push(`port ${port}: SNMP reads ${JSON.stringify(seen)}, the lab has vlans [${inWorld.join(', ')}] pvid ${inLab.pvid}; wanted ${JSON.stringify(expected(vlans))}`);
    }
  }
  return wrong;
}

/** Sixteen commands of about 100 ms each (seven requests to a 10-40 ms switch), one after another: a round well under this never waited out a settle. */
const ROUND_LIMIT_MS = 8_000;

test('device changes - two executors trunking both NICs of every host on one switch at once leave every port with exactly its VLANs', async (t) => {
  const failures: string[] = [];
  let badRounds = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Hosts move between overlapping VLAN sets, so every command rewrites PortLists other commands rewrite too.
    const plan = world.inventory.hosts.map((h, i) => ({ host: h, vlans: [[10, 20], [30], [20, 30, 40], [40, 10]][(i + round) % 4] ?? [10] }));
    const want = new Map<number, number[]>();
    const runs: Promise<string | undefined>[] = [];
    const started = Date.now();
    for (const { host, vlans } of plan) {
      for (const [n, nic] of host.nics.entries()) {
        want.set(nic.port, vlans);
        // NIC 0 through one executor, NIC 1 through the other, all at once.
        const executor = executors[n % executors.length];
        assert.ok(executor);
        const command = netCommand(host.id, nic.port, vlans);
        runs.push(
          executor.drivers.execute(command, AbortSignal.timeout(command.deadline - Date.now())).then(
            () => undefined,
            (err: unknown) => `${executor.id} ${command.action} on port ${nic.port}: ${(err as Error).message}`,
          ),
        );
      }
    }
    const errors = (await Promise.all(runs)).filter((e): e is string => e !== undefined);
    const tookMs = Date.now() - started;
    const wrong = await wrongPorts(want);
    // A lost update the read-back caught before it was too late still costs the whole settle wait.
    if (tookMs > ROUND_LIMIT_MS) errors.push(`the round took ${tookMs} ms: a read-back waited out its settle time`);
    if (errors.length > 0 || wrong.length > 0) badRounds++;
    failures.push(...errors.map((e) => `round ${round}: ${e}`), ...wrong.map((w) => `round ${round}: ${w}`));
    t.diagnostic(`round ${round}: ${tookMs} ms, ${errors.length} problem(s), ${wrong.length} wrong port(s)`);
  }
  assert.equal(badRounds, 0, `${badRounds} of ${ROUNDS} rounds left ports wrong or failed commands:\n${failures.join('\n')}`);
});

/** Runs one command through an executor's drivers with the command's own deadline. */
function run(executor: (typeof executors)[number] | undefined, command: NetCommand): Promise<unknown> {
  assert.ok(executor);
  return executor.drivers.execute(command, AbortSignal.timeout(command.deadline - Date.now()));
}

test('device changes - a PortList written outside the lock between our SET and its read-back fails the step at once, naming switch, port and VLANs; the retry puts it right', async () => {
  const [a] = executors;
  await Promise.all([run(a, netCommand('h1', 1, [10])), run(a, netCommand('h2', 3, [10]))]);
  // Another manager read VLAN 30's list before our change, added its own port 3 and wrote it back just after our SET.
  const recorder = world.recorder;
  const record = recorder.record.bind(recorder);
  let overwrote = false;
  recorder.record = (source, action, options) => {
    record(source, action, options);
    if (overwrote || source !== 'switch' || action !== 'set-pvid' || options?.detail?.['port'] !== 1) return;
    overwrote = true;
    const ours = world.port('tor', 1);
    ours.egress.delete(30);
    ours.untagged.delete(30);
    world.port('tor', 3).egress.add(30);
  };
  try {
    const started = Date.now();
    await assert.rejects(run(a, netCommand('h1', 1, [30])), (err: unknown) => {
      assert.ok(err instanceof ConcurrentWriteError, String(err));
      assert.equal(err.retryable, true);
      assert.match(err.message, /access VLAN 30 on switch tor port 1: another manager wrote the switch between our SET and its read-back \(VLAN 30's egress list lost port\(s\) \[1\] and gained port\(s\) \[3\] since our SET/);
      return true;
    });
    assert.ok(overwrote);
    assert.ok(Date.now() - started < 2_000, `reported after ${Date.now() - started} ms: at once, not after the 10 s settle wait`);
  } finally {
    recorder.record = record;
  }
  // What the command runner does with a retryable failure: the step again, from a fresh read.
  await run(a, netCommand('h1', 1, [30]));
  assert.deepEqual(await judge.read({ switch: 'tor', port: 1 }, AbortSignal.timeout(5_000)), expected([30]));
});

test('device changes - the switch lock of an executor that died frees itself within its TTL, and the change then goes ahead', async () => {
  const [a, b] = executors;
  assert.ok(a && b);
  // Taken by a process that is gone: nobody renews or releases it.
  assert.deepEqual(await a.store.deviceLocks.acquire('switch:tor', 'exec-dead/c-1#0', { site: 's1', token: 7 }), { acquired: true });
  const started = Date.now();
  await run(b, netCommand('h3', 5, [20, 40]));
  const waited = Date.now() - started;
  assert.ok(waited >= 2_500 && waited < 6_000, `waited ${waited} ms for the 3 s lock of a dead executor`);
  assert.deepEqual(await judge.read({ switch: 'tor', port: 5 }, AbortSignal.timeout(5_000)), expected([20, 40]));
});

test('device changes - after a newer planner\'s command changed the switch, a command of the deposed one is refused and writes nothing', async () => {
  const [a, b] = executors;
  const site = 's-handover';
  await run(b, netCommand('h4', 7, [40], 20_000, { site, fencingToken: 12 }));
  const sets = (): number => ['set-pvid', 'set-egress', 'set-untagged', 'set-admin'].reduce((n, action) => n + world.recorder.count('switch', action), 0);
  const before = sets();
  await assert.rejects(run(a, netCommand('h4', 7, [10], 20_000, { site, fencingToken: 11 })), (err: unknown) => {
    assert.ok(err instanceof FirebreakError, String(err));
    assert.equal(err.code, 'STALE_FENCING_TOKEN');
    assert.equal(err.retryable, false);
    assert.match(err.message, /switch:tor: fencing token 11 of site s-handover is older than 12/);
    return true;
  });
  assert.equal(sets(), before, 'no SET reached the switch');
  assert.deepEqual(await judge.read({ switch: 'tor', port: 7 }, AbortSignal.timeout(5_000)), expected([40]));
});
