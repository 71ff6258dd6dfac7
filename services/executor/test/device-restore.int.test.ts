/**
 * Issue #17, "borrow, then give back exactly": a drill reads the state of
 * every device of a host it borrows, changes it, and gives back exactly what
 * it read. Commands go over NATS to two executor processes' worth of drivers
 * (each its own Redis connection, sharing the switch locks), as the planner
 * sends them under its lease; the devices are the judge: the lab's switches
 * read over SNMP by a third driver and in the lab's world, the boot service's
 * served script and entry, the array's masking.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect, StringCodec, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { SnmpNetDriver } from '@firebreak/drivers';
import {
  BootEntryObserved,
  CommandResult,
  connectBus,
  createStore,
  ensureStreams,
  plannerLeaseKey,
  PortState,
  StorageMasks,
  subjects,
  topics,
  type Bus,
  type CommandInput,
  type Host,
  type Store,
} from '@firebreak/shared';
import { startNats, startRedis, waitFor, type TestServer } from '@firebreak/shared/testing';
import { startLab, type Lab } from '@firebreak/lab';
import { startBootService, type BootService } from '@firebreak/boot-service';
import { InventoryCommandDrivers, startExecutor, type Executor } from '../src/index.ts';

let nats: TestServer;
let redis: TestServer;
let bus: Bus;
let lab: Lab;
let boot: BootService;
let bootDir: string;
let nc: NatsConnection;
const stores: Store[] = [];
const executors: Executor[] = [];
const judges = new Map<string, SnmpNetDriver>();
const results = new Map<string, CommandResult>();
const sc = StringCodec();
/** The planner lease the commands come under: the executors obey only its holder. */
const leader = { fencingToken: 0, issuer: 'planner-drill-test' };

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ url: nats.url, name: 'device-restore-test' });
  await ensureStreams(bus.jsm);
  const leases = createStore(redis.url);
  stores.push(leases);
  const lease = await leases.leaderLeases.acquire(plannerLeaseKey('site1'), leader.issuer, 3_600_000);
  assert.ok(lease.acquired);
  leader.fencingToken = lease.token;
  lab = await startLab({ natsUrl: nats.url, size: 'tiny', powerDelayMs: 100 });
  bootDir = await mkdtemp(join(tmpdir(), 'fb-exec-restore-'));
  boot = await startBootService({ dir: bootDir });
  nc = await connect({ servers: nats.url });
  nc.subscribe(subjects.resultsAll, {
    callback: (_e, m) => {
      const r = CommandResult.parse(JSON.parse(sc.decode(m.data)));
      results.set(r.commandId, r);
    },
  });
  for (const id of ['e-a', 'e-b']) {
    const store = createStore(redis.url);
    stores.push(store);
    executors.push(
      await startExecutor({
        inventory: lab.inventory,
        bus,
        store,
        logger: pino({ level: 'silent' }),
        executorId: id,
        drivers: new InventoryCommandDrivers(lab.inventory, { requestTimeoutMs: 1_000, deviceLocks: store.deviceLocks, executorId: id, bootServiceUrl: boot.url }),
        // Two net slots each, so neither executor can take every port's command at once.
        limits: { perKind: { net: 2 }, defaultPerKind: 16, perDevice: 4 },
        retry: { initialMs: 50, maxMs: 200 },
        ackWaitMs: 5_000,
      }),
    );
  }
  for (const sw of lab.inventory.switches) judges.set(sw.id, await SnmpNetDriver.fromInventory(sw, { timeoutMs: 1_000 }));
});

after(async () => {
  for (const e of executors) await e.stop();
  for (const j of judges.values()) await j.close();
  await nc?.close();
  await boot?.stop();
  await lab?.stop();
  for (const s of stores) await s.close();
  await bus?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
  if (bootDir) await rm(bootDir, { recursive: true, force: true });
});

type Order = DistributiveOmit<CommandInput, 'commandId' | 'incidentId' | 'site' | 'fencingToken' | 'issuer' | 'issuedAt' | 'deadline' | 'attempt' | 'drill'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Sends one drill command under the leader's lease and waits for its result. */
async function run(order: Order): Promise<CommandResult> {
  const now = Date.now();
  const command = { ...order, commandId: `c-${randomUUID()}`, incidentId: 'drill-1', site: 'site1', ...leader, issuedAt: now, deadline: now + 15_000, attempt: 1, drill: true };
  // The whole Command schema on the kind's subject, as the planner's command gateway publishes.
  await bus.publish({ ...topics.commands, subject: topics.command(order.kind).subject }, command as CommandInput, { msgId: randomUUID() });
  await waitFor(`the result of ${order.kind} ${order.action}`, () => results.has(command.commandId), 20_000);
  const result = results.get(command.commandId);
  assert.ok(result);
  return result;
}

async function succeeded(order: Order): Promise<CommandResult> {
  const result = await run(order);
  assert.equal(result.outcome, 'succeeded', `${order.kind} ${order.action}: ${JSON.stringify(result)}`);
  return result;
}

const spares = (): Host[] => lab.inventory.hosts.filter((h) => h.role === 'spare');

/**
 * One switch as its agent serves it and as the world holds it: every port's
 * admin, link, PVID and VLANs, and every VLAN row's member lists. Rows the
 * drill created (on a switch without the twins) and left without a port are not a port's state: `dropEmptyRowsBeyond` leaves them out.
 */
function switchState(sw: string, dropEmptyRowsBeyond?: ReadonlySet<number>): string {
  const ports = lab.world.portsOf(sw).map((p) => ({ port: p.port, admin: p.admin, oper: p.oper, pvid: p.pvid, egress: [...p.egress].sort((a, b) => a - b), untagged: [...p.untagged].sort((a, b) => a - b) }));
  const rows = lab.switches.vlanTable(sw).filter((r) => dropEmptyRowsBeyond === undefined || dropEmptyRowsBeyond.has(r.vlan) || r.egress.length > 0 || r.untagged.length > 0);
  return JSON.stringify({ ports, rows });
}

const vlanIds = (sw: string): Set<number> => new Set(lab.switches.vlanTable(sw).map((r) => r.vlan));

test('device restore - ports read, trunked onto drill VLANs and restored at once by two executors are as they were: shut, access, trunks, a PVID not carried', async () => {
  const [r1, r2, r3] = spares();
  assert.ok(r1 && r2 && r3, 'the tiny lab has a spare per rack');
  const nics = [...r1.nics, ...r2.nics, ...r3.nics];
  assert.equal(nics.length, 6);
  const prod = lab.inventory.vlans.map((v) => v.id);
  const drill = lab.inventory.vlans.slice(0, 2).flatMap((v) => (v.drillVlan === undefined ? [] : [v.drillVlan]));
  assert.ok(prod.length >= 5 && drill.length === 2);
  const [a, b, c, d, e, f] = nics;
  assert.ok(a && b && c && d && e && f);
  // How a borrowed host's ports might be before a drill: each state set straight on the switch, not through Firebreak.
  const judge = (sw: string): SnmpNetDriver => judges.get(sw) ?? assert.fail(`no judge for ${sw}`);
  const sig = (): AbortSignal => AbortSignal.timeout(5_000);
  const setups: { name: string; nic: typeof a; expected: PortState; set: () => Promise<unknown> }[] = [
    { name: 'shut, on VLAN 1', nic: a, expected: { admin: 'down', pvid: 1, vlans: [{ vlan: 1, untagged: true }] }, set: () => judge(a.switch).shutPort(a, sig()) },
    { name: `access VLAN ${prod[0]}`, nic: b, expected: { admin: 'up', pvid: prod[0] ?? 0, vlans: [{ vlan: prod[0] ?? 0, untagged: true }] }, set: () => judge(b.switch).setAccessVlan(b, prod[0] ?? 0, sig()) },
    {
      name: `trunk [${prod.slice(0, 3)}] native ${prod[1]}`,
      nic: c,
      expected: { admin: 'up', pvid: prod[1] ?? 0, vlans: prod.slice(0, 3).map((vlan) => ({ vlan, untagged: vlan === prod[1] })) },
      set: () => judge(c.switch).setTrunk(c, prod.slice(0, 3), prod[1], sig()),
    },
    {
      name: `trunk [${prod.slice(3, 5)}], no native, PVID 1 left behind`,
      nic: d,
      expected: { admin: 'up', pvid: 1, vlans: prod.slice(3, 5).map((vlan) => ({ vlan, untagged: false })) },
      set: () => judge(d.switch).setTrunk(d, prod.slice(3, 5), undefined, sig()),
    },
    { name: 'as the lab made it (access VLAN 1)', nic: e, expected: { admin: 'up', pvid: 1, vlans: [{ vlan: 1, untagged: true }] }, set: () => Promise.resolve() },
    {
      name: `shut, access VLAN ${prod[2]}`,
      nic: f,
      expected: { admin: 'down', pvid: prod[2] ?? 0, vlans: [{ vlan: prod[2] ?? 0, untagged: true }] },
      set: async () => {
        await judge(f.switch).setAccessVlan(f, prod[2] ?? 0, sig());
        await judge(f.switch).shutPort(f, sig());
      },
    },
  ];
  for (const s of setups) await s.set();
  const switches = [...new Set(nics.map((n) => n.switch))];
  const before = new Map(switches.map((sw) => [sw, { state: switchState(sw), vlans: vlanIds(sw) }]));
  const hostOf = (nic: typeof a): string => (r1.nics.includes(nic) ? r1.id : r2.nics.includes(nic) ? r2.id : r3.id);
  const port = (nic: typeof a) => ({ kind: 'net' as const, host: hostOf(nic), switch: nic.switch, port: nic.port });

  // Borrow: read every port, all at once.
  const sets = (): number => ['set-pvid', 'set-egress', 'set-untagged', 'set-admin'].reduce((n, action) => n + lab.recorder.count('switch', action), 0);
  const setsBefore = sets();
  const reads = await Promise.all(setups.map((s) => succeeded({ ...port(s.nic), action: 'read' })));
  assert.equal(sets(), setsBefore, 'a read writes nothing');
  const read = reads.map((r) => PortState.parse(r.observed));
  for (const [i, s] of setups.entries()) assert.deepEqual(read[i], s.expected, `${s.name}: observed ${JSON.stringify(reads[i]?.observed)}`);
  assert.deepEqual(reads[0]?.observed, setups[0]?.expected, 'observed is the PortState itself, nothing more');

  // The drill: both NICs of each host up and trunked onto the same two drill VLANs (the lab's switches hold the twins, empty).
  const [native] = drill;
  for (const s of setups) await succeeded({ ...port(s.nic), action: 'trunk', vlans: drill, ...(native !== undefined && { nativeVlan: native }) });
  for (const s of setups) await succeeded({ ...port(s.nic), action: 'no-shut' });
  for (const sw of switches) assert.notEqual(switchState(sw), before.get(sw)?.state, `the drill changed ${sw}`);

  // Give back: every port at once, so restores of two ports of one switch rewrite the same drill VLANs' lists.
  const restores = await Promise.all(setups.map((s, i) => succeeded({ ...port(s.nic), action: 'restore', state: read[i] ?? assert.fail() })));
  const by = new Set(restores.map((r) => r.executor));
  assert.deepEqual([...by].sort(), ['e-a', 'e-b'], 'both executors restored ports');
  for (const [i, s] of setups.entries()) {
    assert.deepEqual(restores[i]?.observed, read[i], `${s.name}: a restore observes what the read did`);
    const seen = await judge(s.nic.switch).read(s.nic, sig());
    assert.deepEqual(
      { admin: seen.admin, pvid: seen.pvid, vlans: seen.vlans.map((vlan) => ({ vlan, untagged: seen.untagged.includes(vlan) })) },
      s.expected,
      `${s.name}: over SNMP`,
    );
  }
  for (const sw of switches) {
    const was = before.get(sw);
    assert.ok(was);
    assert.equal(switchState(sw, was.vlans), was.state, `${sw}: every port and VLAN row as before (the drill VLANs' rows left empty)`);
  }
});

test('device restore - a port untagged on a VLAN it does not carry cannot be read for a restore: a permanent failure naming switch, port and VLANs', async () => {
  const [, , host] = spares();
  const nic = host?.nics[1];
  assert.ok(host && nic);
  const vlan = lab.inventory.vlans[7]?.id ?? 108;
  // No restore could write this back: the schema, like a switch, has a port untagged only on VLANs it carries.
  lab.world.port(nic.switch, nic.port).untagged.add(vlan);
  try {
    const result = await run({ kind: 'net', action: 'read', host: host.id, switch: nic.switch, port: nic.port });
    assert.equal(result.outcome, 'failed');
    assert.equal(result.error?.retryable, false);
    assert.equal(result.attempts, 1);
    assert.match(result.error?.message ?? '', new RegExp(`switch ${nic.switch} port ${nic.port} \\(host ${host.id}\\) is in the untagged lists of VLAN\\(s\\) \\[${vlan}\\] but not in their egress lists`));
  } finally {
    lab.world.port(nic.switch, nic.port).untagged.delete(vlan);
  }
});

test('device restore - boot: a MAC with no entry gets none back, one with an entry gets it back byte for byte, attachments in their order', async () => {
  const [host, other] = spares();
  const [server] = lab.inventory.servers;
  const image = lab.inventory.images.find((i) => i.id === server?.image);
  assert.ok(host?.nics[0] && other?.nics[0] && server && image);
  const served = async (mac: string): Promise<{ script: string; entry: unknown }> => {
    const script = await fetch(`${boot.url}/boot/${mac}.ipxe`);
    const entry = await fetch(`${boot.url}/v1/hosts/${mac}`);
    return { script: `${script.status} ${await script.text()}`, entry: entry.status === 200 ? await entry.json() : entry.status };
  };
  const drillEntry = { action: 'configure' as const, image: image.id, server: server.id, attach: { vlans: [2101], luns: ['lun-drill-clone'] } };

  // No entry before: read null, the drill configures one, the restore deletes it.
  const bare = { kind: 'boot' as const, host: host.id, mac: host.nics[0].mac };
  const none = await served(bare.mac);
  const readNone = await succeeded({ ...bare, action: 'read' });
  assert.deepEqual(readNone.observed, { entry: null });
  await succeeded({ ...bare, ...drillEntry });
  const deleted = await succeeded({ ...bare, action: 'restore', entry: BootEntryObserved.parse(readNone.observed).entry });
  assert.deepEqual(deleted.observed, { entry: null });
  assert.deepEqual(await served(bare.mac), none);

  // An entry before, with its VLANs in an order of its own: read as served, replaced by the drill's, put back as it was.
  const booted = { kind: 'boot' as const, host: other.id, mac: other.nics[0].mac };
  const vlans = [...server.vlans].reverse();
  await succeeded({ ...booted, action: 'configure', image: image.id, server: server.id, attach: { vlans: [4000, ...vlans], luns: [] } });
  const was = await served(booted.mac);
  const readEntry = await succeeded({ ...booted, action: 'read' });
  const entry = BootEntryObserved.parse(readEntry.observed).entry;
  assert.deepEqual(entry, { server: server.id, image: image.id, imageUrl: image.url, attach: { vlans: [4000, ...vlans], luns: [] } });
  await succeeded({ ...booted, ...drillEntry });
  const restored = await succeeded({ ...booted, action: 'restore', entry });
  assert.deepEqual(restored.observed, readEntry.observed);
  assert.deepEqual(await served(booted.mac), was);
});

test('device restore - a restore names each VLAN once and says how it is sent; the contract refuses anything else before it reaches a bus', () => {
  const twice = PortState.safeParse({ admin: 'up', pvid: 10, vlans: [{ vlan: 10, untagged: true }, { vlan: 10, untagged: false }] });
  assert.equal(twice.success, false);
  assert.match(twice.error?.issues[0]?.message ?? '', /VLAN 10 is listed twice/);
  assert.equal(PortState.safeParse({ admin: 'up', pvid: 10, vlans: [10] }).success, false, 'a bare VLAN id does not say whether it is untagged');
  assert.equal(PortState.safeParse({ admin: 'up', pvid: 0, vlans: [] }).success, false, 'PVID 0 is no VLAN');
  assert.equal(BootEntryObserved.safeParse({ entry: { server: 'web-01', image: 'img', imageUrl: 'http://x/has space' } }).success, false);
});

test('device restore - storage: masks reads the LUNs masked to an initiator, before a drill grant, during and after its revoke', async () => {
  const host = spares().find((h) => h.hba);
  const lun = lab.inventory.luns[0];
  assert.ok(host?.hba && lun);
  const order = { kind: 'storage' as const, array: lun.array, initiator: host.hba.initiator, host: host.id };
  const masks = async (): Promise<string[]> => StorageMasks.parse((await succeeded({ ...order, action: 'masks' })).observed).luns;
  const before = await masks();
  assert.ok(!before.includes(lun.id));
  await succeeded({ ...order, action: 'grant', lun: lun.id });
  assert.deepEqual(await masks(), [...before, lun.id].sort());
  await succeeded({ ...order, action: 'revoke', lun: lun.id });
  assert.deepEqual(await masks(), before);
  assert.deepEqual(lab.world.lunsVisibleTo(host.hba.initiator), before);
});
