import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Inventory } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { Faults } from '../src/faults.ts';
import { LabRecorder } from '../src/recorder.ts';
import { snmp, type Notification, type Receiver, type Session, type SnmpError, type Varbind } from '../src/snmp/net-snmp.ts';
import { startSwitchSimulator, type SwitchSimulator } from '../src/snmp/switch-simulator.ts';
import { World } from '../src/world.ts';
import { freeUdpPort } from '@firebreak/shared/testing';

const COMMUNITY = { sw1: 'lab-sw1-rw', sw2: 'lab-sw2-rw' } as const;
const env = {
  LAB_SNMP_SW1: JSON.stringify({ community: COMMUNITY.sw1 }),
  LAB_SNMP_SW2: JSON.stringify({ community: COMMUNITY.sw2 }),
};
const MAC = { h1: '52:54:00:00:00:01', h2: '52:54:00:00:00:02', h3: '52:54:00:00:00:03', h4: '52:54:00:00:00:04' } as const;

const oid = {
  ifAdminStatus: (port: number) => `1.3.6.1.2.1.2.2.1.7.${port}`,
  ifOperStatus: (port: number) => `1.3.6.1.2.1.2.2.1.8.${port}`,
  ifIndex: (port: number) => `1.3.6.1.2.1.2.2.1.1.${port}`,
  pvid: (port: number) => `1.3.6.1.2.1.17.7.1.4.5.1.1.${port}`,
  egressColumn: '1.3.6.1.2.1.17.7.1.4.3.1.2',
  egress: (vlan: number) => `1.3.6.1.2.1.17.7.1.4.3.1.2.${vlan}`,
  untagged: (vlan: number) => `1.3.6.1.2.1.17.7.1.4.3.1.4.${vlan}`,
  rowStatus: (vlan: number) => `1.3.6.1.2.1.17.7.1.4.3.1.5.${vlan}`,
  linkDown: '1.3.6.1.6.3.1.1.5.3',
  linkUp: '1.3.6.1.6.3.1.1.5.4',
  snmpTrapOid: '1.3.6.1.6.3.1.1.4.1.0',
};
const { Integer, OctetString, Gauge } = snmp.ObjectType;

/** Two switches in one fabric; h1 (VLAN 10) and h2 (VLAN 20) on sw1, h3 (VLAN 10) and h4 (VLAN 20) on sw2. */
function labInventory(ports: { sw1: number; sw2: number }): Inventory {
  const host = (id: keyof typeof MAC, sw: 'sw1' | 'sw2', port: number) => ({
    id,
    site: 's1',
    rack: 'r1',
    arch: 'x86_64',
    cpus: 8,
    memoryGiB: 32,
    nics: [{ mac: MAC[id], switch: sw, port }],
    bmc: { address: '127.0.0.1:8443', credentialsRef: 'env:LAB_BMC' },
    role: 'production',
  });
  const server = (id: string, vlan: number) => ({ id, image: 'rhel9', vlans: [vlan], cpus: 4, memoryGiB: 16, arch: 'x86_64', priority: 1 });
  return Inventory.parse({
    version: 1,
    racks: [{ id: 'r1', site: 's1' }],
    switches: [
      { id: 'sw1', fabric: 'f1', address: `127.0.0.1:${ports.sw1}`, credentialsRef: 'env:LAB_SNMP_SW1' },
      { id: 'sw2', fabric: 'f1', address: `127.0.0.1:${ports.sw2}`, credentialsRef: 'env:LAB_SNMP_SW2' },
    ],
    vlans: [
      { id: 10, name: 'prod', fabric: 'f1' },
      { id: 20, name: 'backup', fabric: 'f1' },
    ],
    hosts: [host('h1', 'sw1', 1), host('h2', 'sw1', 2), host('h3', 'sw2', 1), host('h4', 'sw2', 2)],
    servers: [server('web', 10), server('db', 20), server('app', 10), server('bak', 20)],
    assignments: [
      { server: 'web', mode: 'bare-metal', host: 'h1' },
      { server: 'db', mode: 'bare-metal', host: 'h2' },
      { server: 'app', mode: 'bare-metal', host: 'h3' },
      { server: 'bak', mode: 'bare-metal', host: 'h4' },
    ],
  });
}

/** A v2c manager; short timeouts because the simulator is local and a wrong community is answered by silence. */
function manager(address: string, community: string): Session {
  const [host = '', port] = address.split(':');
  const session = snmp.createSession(host, community, { port: Number(port), version: snmp.Version2c, retries: 0, timeout: 500 });
  session.on('error', () => undefined);
  return session;
}

const get = (s: Session, oids: string[]) =>
  new Promise<Varbind[]>((resolve, reject) => s.get(oids, (error, varbinds) => (error ? reject(error) : resolve(varbinds ?? []))));
const set = (s: Session, varbinds: Varbind[]) =>
  new Promise<Varbind[]>((resolve, reject) => s.set(varbinds, (error, result) => (error ? reject(error) : resolve(result ?? []))));
const walk = (s: Session, base: string) =>
  new Promise<Varbind[]>((resolve, reject) => {
    const rows: Varbind[] = [];
    s.subtree(base, 20, (varbinds) => void rows.push(...varbinds), (error) => (error ? reject(error) : resolve(rows)));
  });
const value = async (s: Session, id: string): Promise<unknown> => (await get(s, [id]))[0]?.value;
const failure = (status: number) => (error: SnmpError) => error.status === status;

describe('snmp switch simulator', () => {
  let world: World;
  let lab: SwitchSimulator;
  let receiver: Receiver | undefined;
  const sessions: Session[] = [];
  const traps: Notification[] = [];
  let trapPort: number;
  let sw1: Session;
  let sw2: Session;

  before(async () => {
    trapPort = await freeUdpPort();
    receiver = snmp.createReceiver({ port: trapPort, address: '127.0.0.1', includeAuthentication: true }, (error, notification) => {
      if (!error && notification) traps.push(notification);
    });
    receiver.getAuthorizer().addCommunity(COMMUNITY.sw1);
    receiver.getAuthorizer().addCommunity(COMMUNITY.sw2);
    world = new World(labInventory({ sw1: await freeUdpPort(), sw2: await freeUdpPort() }), new LabRecorder());
    lab = await startSwitchSimulator(world, { env, trapReceivers: [`127.0.0.1:${trapPort}`] });
    const address = (id: string) => lab.agents.find((a) => a.switchId === id)?.address ?? '';
    sw1 = manager(address('sw1'), COMMUNITY.sw1);
    sw2 = manager(address('sw2'), COMMUNITY.sw2);
    sessions.push(sw1, sw2);
  });

  after(async () => {
    for (const s of sessions) s.close();
    await lab?.stop();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  });

  test('snmp switch simulator - starts one agent per inventory switch at its address', () => {
    assert.deepEqual(
      lab.agents.map((a) => a.switchId),
      ['sw1', 'sw2'],
    );
    assert.deepEqual(
      lab.agents.map((a) => a.address),
      world.inventory.switches.map((s) => s.address),
    );
  });

  test('snmp switch simulator - startup fails naming the switch when its address is taken or its credentials have no community', async () => {
    await assert.rejects(startSwitchSimulator(world, { env }), /switch sw1 cannot serve SNMP on udp 127\.0\.0\.1:\d+: bind EADDRINUSE/);
    const elsewhere = new World(labInventory({ sw1: await freeUdpPort(), sw2: await freeUdpPort() }), new LabRecorder());
    // sw1 starts, sw2 cannot: sw1's agent is closed again (an open socket would keep this test process alive).
    await assert.rejects(startSwitchSimulator(elsewhere, { env: { ...env, LAB_SNMP_SW2: '{"username":"admin"}' } }), /switch sw2: no SNMP community/);
  });

  test('snmp switch simulator - PVID and egress SETs put a host on another VLAN, and reachability follows; ifAdminStatus down cuts it', async () => {
    assert.equal(world.reachable(MAC.h1, MAC.h2), false, 'h1 (VLAN 10) and h2 (VLAN 20) start apart');
    assert.equal(await value(sw1, oid.pvid(2)), 20);
    assert.deepEqual(await value(sw1, oid.egress(10)), Buffer.from([0x80]), 'VLAN 10 egress: port 1 only');

    const response = await set(sw1, [
      { oid: oid.pvid(2), type: Gauge, value: 10 },
      { oid: oid.egress(10), type: OctetString, value: Buffer.from([0xc0]) },
    ]);
    assert.deepEqual(response[1]?.value, Buffer.from([0xc0]), 'the SET response echoes the PortList');
    assert.equal(await value(sw1, oid.pvid(2)), 10);
    assert.deepEqual(await value(sw1, oid.egress(10)), Buffer.from([0xc0]));
    assert.equal(world.port('sw1', 2).pvid, 10);
    assert.equal(world.reachable(MAC.h1, MAC.h2), true, 'h2 now carries VLAN 10');
    assert.equal(world.recorder.count('switch', 'set-pvid', 'h2'), 1);
    assert.deepEqual(world.recorder.events({ source: 'switch', action: 'set-egress' }).at(-1)?.detail, { switch: 'sw1', vlan: 10, ports: [1, 2] });

    assert.equal(await value(sw1, oid.ifOperStatus(1)), 1);
    await set(sw1, [{ oid: oid.ifAdminStatus(1), type: Integer, value: 2 }]);
    assert.equal(await value(sw1, oid.ifAdminStatus(1)), 2);
    assert.equal(await value(sw1, oid.ifOperStatus(1)), 2, 'ifOperStatus follows the admin shutdown');
    assert.equal(world.reachable(MAC.h1, MAC.h2), false, 'a shut port talks to nobody');
    assert.equal(world.recorder.count('switch', 'set-admin', 'h1'), 1);

    await set(sw1, [{ oid: oid.ifAdminStatus(1), type: Integer, value: 1 }]);
    assert.equal(await value(sw1, oid.ifOperStatus(1)), 1);
    assert.equal(world.reachable(MAC.h1, MAC.h2), true);
  });

  test('snmp switch simulator - a walk of the egress bitmaps shows each VLAN and its member ports, as the world has them', async () => {
    const rows = (varbinds: Varbind[]) => Object.fromEntries(varbinds.map((vb) => [vb.oid.split('.').at(-1), (vb.value as Buffer).toString('hex')]));
    assert.deepEqual(rows(await walk(sw2, oid.egressColumn)), { 1: '00', 10: '80', 20: '40' }, 'sw2: h3 (port 1) on VLAN 10, h4 (port 2) on VLAN 20');

    // A change made outside SNMP (another simulator, a fault) shows on the next read.
    world.port('sw2', 2).egress.add(30);
    assert.deepEqual(rows(await walk(sw2, oid.egressColumn)), { 1: '00', 10: '80', 20: '40', 30: '40' });
    world.port('sw2', 2).egress.delete(30);
    assert.deepEqual(rows(await walk(sw2, oid.egressColumn)), { 1: '00', 10: '80', 20: '40' });
    assert.ok(world.recorder.count('switch', 'get') > 0);
  });

  test('snmp switch simulator - SET of egress on a new VLAN creates it; createAndGo creates an empty one', async () => {
    await set(sw2, [
      { oid: oid.egress(30), type: OctetString, value: Buffer.from([0x40]) },
      { oid: oid.untagged(30), type: OctetString, value: Buffer.from([0x40]) },
    ]);
    assert.equal(await value(sw2, oid.rowStatus(30)), snmp.RowStatus.active);
    assert.deepEqual(await value(sw2, oid.egress(30)), Buffer.from([0x40]));
    assert.ok(world.port('sw2', 2).egress.has(30) && world.port('sw2', 2).untagged.has(30));

    await set(sw2, [{ oid: oid.rowStatus(40), type: Integer, value: snmp.RowStatus.createAndGo }]);
    assert.equal(await value(sw2, oid.rowStatus(40)), snmp.RowStatus.active);
    assert.deepEqual(await value(sw2, oid.egress(40)), Buffer.from([0x00]), 'a created VLAN stays in the database with no ports');
    await assert.rejects(set(sw2, [{ oid: oid.rowStatus(40), type: Integer, value: snmp.RowStatus.createAndGo }]), failure(snmp.ErrorStatus.InconsistentValue));
    assert.equal(world.recorder.count('switch', 'create-vlan'), 1);

    // createAndGo with the member ports in the same request, as a manager creating a VLAN in one go would send it.
    await set(sw2, [
      { oid: oid.rowStatus(50), type: Integer, value: snmp.RowStatus.createAndGo },
      { oid: oid.egress(50), type: OctetString, value: Buffer.from([0x80]) },
    ]);
    assert.ok(world.port('sw2', 1).egress.has(50));
  });

  test('snmp switch simulator - refuses values a real switch refuses, and changes nothing', async () => {
    await assert.rejects(set(sw1, [{ oid: oid.pvid(1), type: Gauge, value: 5000 }]), failure(snmp.ErrorStatus.WrongValue));
    await assert.rejects(set(sw1, [{ oid: oid.pvid(1), type: Gauge, value: 99 }]), failure(snmp.ErrorStatus.InconsistentValue), 'no VLAN 99');
    await assert.rejects(
      set(sw1, [{ oid: oid.egress(10), type: OctetString, value: Buffer.from([0x81]) }]),
      failure(snmp.ErrorStatus.WrongValue),
      'sw1 has no port 8',
    );
    await assert.rejects(set(sw1, [{ oid: oid.ifAdminStatus(1), type: Integer, value: 3 }]));
    await assert.rejects(set(sw1, [{ oid: oid.ifOperStatus(1), type: Integer, value: 2 }]), failure(snmp.ErrorStatus.NotWritable));
    assert.equal(world.port('sw1', 1).pvid, 10);
    assert.ok(world.port('sw1', 1).egress.has(10));
    assert.equal(world.port('sw1', 1).admin, 'up');
  });

  test('snmp switch simulator - a wrong community gets no answer', async () => {
    const address = lab.agents[0]?.address ?? '';
    const strangers = [manager(address, 'public'), manager(address, COMMUNITY.sw2)];
    sessions.push(...strangers);
    const refusedBefore = world.recorder.count('switch', 'refused');
    const timedOut = (error: Error) => error instanceof snmp.RequestTimedOutError;
    await Promise.all(
      strangers.flatMap((stranger) => [
        assert.rejects(get(stranger, [oid.pvid(1)]), timedOut),
        assert.rejects(set(stranger, [{ oid: oid.ifAdminStatus(1), type: Integer, value: 2 }]), timedOut),
      ]),
    );
    assert.equal(world.port('sw1', 1).admin, 'up');
    assert.equal(world.recorder.count('switch', 'refused'), refusedBefore + 4);
  });

  test('snmp switch simulator - linkDown and linkUp traps reach the receiver from the switch, naming the port', async () => {
    traps.length = 0;
    const sw2Port = Number(lab.agents[1]?.address.split(':')[1]);
    const trapFor = (kind: string, port: number) =>
      traps.find(
        (t) => t.pdu.varbinds.some((vb) => vb.oid === oid.snmpTrapOid && vb.value === kind) && t.pdu.varbinds.some((vb) => vb.oid === oid.ifIndex(port)),
      );

    assert.equal(world.reachable(MAC.h2, MAC.h4), true, 'both carry VLAN 20');
    world.setPortCarrier('sw2', 2, 'down');
    await waitFor('linkDown trap for sw2 port 2', () => trapFor(oid.linkDown, 2) !== undefined, 2_000);
    const down = trapFor(oid.linkDown, 2);
    assert.equal(down?.pdu.type, snmp.PduType.TrapV2);
    assert.equal(down?.pdu.community, COMMUNITY.sw2);
    assert.equal(down?.rinfo.port, sw2Port, 'sent from the switch agent’s own address');
    assert.deepEqual(
      down?.pdu.varbinds.slice(2).map((vb) => [vb.oid, vb.value]),
      [
        [oid.ifIndex(2), 2],
        [oid.ifAdminStatus(2), 1],
        [oid.ifOperStatus(2), 2],
      ],
    );
    assert.equal(await value(sw2, oid.ifOperStatus(2)), 2);
    assert.equal(world.reachable(MAC.h2, MAC.h4), false);

    world.setPortCarrier('sw2', 2, 'up');
    await waitFor('linkUp trap for sw2 port 2', () => trapFor(oid.linkUp, 2) !== undefined, 2_000);
    assert.equal(world.reachable(MAC.h2, MAC.h4), true);
    await waitFor('the trap log', () => world.recorder.count('switch', 'trap-link-up', 'h4') === 1, 2_000);
    assert.deepEqual(world.recorder.events({ source: 'switch', action: 'trap-link-down' }).at(-1)?.detail, {
      switch: 'sw2',
      port: 2,
      receiver: `127.0.0.1:${trapPort}`,
    });

    // An admin shutdown over SNMP is a link change too.
    const fromSw1 = () => traps.filter((t) => t.pdu.community === COMMUNITY.sw1);
    await set(sw1, [{ oid: oid.ifAdminStatus(2), type: Integer, value: 2 }]);
    await waitFor('a trap from sw1', () => fromSw1().length === 1, 2_000);
    assert.deepEqual(
      fromSw1()[0]?.pdu.varbinds.slice(1).map((vb) => vb.value),
      [oid.linkDown, 2, 2, 2],
    );

    lab.setTrapReceivers([]);
    await set(sw1, [{ oid: oid.ifAdminStatus(2), type: Integer, value: 1 }]);
    assert.equal(world.port('sw1', 2).oper, 'up');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fromSw1().length, 1, 'no receivers, no traps');
  });

  test('snmp switch simulator - a slow switch serves every request its latency after it arrives: reads and SETs both', async () => {
    const faults = new Faults(world);
    faults.setSwitch('sw2', { mode: 'slow', latencyMs: 150 });
    try {
      let started = Date.now();
      assert.equal(await value(sw2, oid.pvid(1)), 10);
      assert.ok(Date.now() - started >= 140, `a GET answered after ${Date.now() - started} ms`);
      started = Date.now();
      const setting = set(sw2, [{ oid: oid.pvid(1), type: Gauge, value: 20 }]);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(world.port('sw2', 1).pvid, 10, 'not applied before the latency has passed');
      await setting;
      assert.ok(Date.now() - started >= 140, `a SET answered after ${Date.now() - started} ms`);
      assert.equal(world.port('sw2', 1).pvid, 20);
      assert.deepEqual(world.recorder.events({ source: 'fault', action: 'switch-slow' }).at(-1)?.detail, { switch: 'sw2', mode: 'slow', latencyMs: 150 });
    } finally {
      faults.setSwitch('sw2', { mode: 'ok' });
      await set(sw2, [{ oid: oid.pvid(1), type: Gauge, value: 10 }]);
    }
    assert.equal(world.switchBehaviour('sw2').extraLatencyMs, 0);
  });
});
