/**
 * The lab hypervisor driver against the lab's hypervisor simulation: the
 * shared conformance suite, then what only the lab shows — a VM heartbeats as
 * its server from its hypervisor host only when that host runs the
 * hypervisor, carries the VM's VLANs and sees its LUNs, and dies with it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { connectBus, errorCodes, Inventory, renderBootScript, topics, type Bus, type CoreSubscription, type Heartbeat, type Host } from '@firebreak/shared';
import { freePort, startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import {
  Faults,
  generateTopology,
  LabRecorder,
  startHostSimulator,
  startHypervisorSimulator,
  startLab,
  World,
  type HostSimulator,
  type HypervisorSimulator,
} from '@firebreak/lab';
import { LabHypervisorVmDriver } from '../src/vm/lab-hypervisor.driver.ts';
import type { VmSpec } from '../src/driver.ts';
import { isDriverError, vmDriverConformance } from './vm-conformance.ts';

const PERIOD_MS = 100;
const signal = (ms = 5_000): AbortSignal => AbortSignal.timeout(ms);
const VM_ACTIONS = ['define', 'start', 'stop', 'undefine'];
const db1: VmSpec = { name: 'db1', cpus: 4, memoryGiB: 16, image: 'rhel9', mac: '52:54:00:f0:00:01', vlans: [20], luns: ['lun-db1'] };
const app1: VmSpec = { name: 'app1', cpus: 2, memoryGiB: 8, image: 'rhel9', mac: '52:54:00:f0:00:02', vlans: [30], luns: ['lun-app1'] };

/**
 * hv1 is a standing hypervisor (rack r1); hv2 a powered-off, hypervisor-capable
 * spare alone in rack r2, converted in the tests by PXE-booting the hypervisor
 * image; p1 runs db1 on bare metal. Every host's switch port starts on VLAN 1.
 */
function inventory(hypervisorBase: string): Inventory {
  const host = (id: string, rack: string, port: number, role: string) => ({
    id,
    site: 'dc1',
    rack,
    arch: 'x86_64',
    cpus: 32,
    memoryGiB: 64,
    nics: [{ mac: `52:54:00:00:02:0${port}`, switch: 'sw1', port }],
    hba: { initiator: `iqn.2024-01.lab.firebreak:${id}`, fabric: 'san-a' },
    bmc: { address: '127.0.0.1:1', credentialsRef: 'env:BMC' },
    role,
    hypervisorCapable: role !== 'production',
    hypervisor: { driver: 'lab', uri: `${hypervisorBase}/hypervisors/${id}` },
  });
  return Inventory.parse({
    version: 1,
    racks: [
      { id: 'r1', site: 'dc1' },
      { id: 'r2', site: 'dc1' },
    ],
    switches: [{ id: 'sw1', fabric: 'net-a', address: '127.0.0.1:1', credentialsRef: 'env:SW' }],
    vlans: [
      { id: 20, name: 'db', fabric: 'net-a' },
      { id: 30, name: 'app', fabric: 'net-a' },
    ],
    storageArrays: [{ id: 'arr1', fabric: 'san-a', driver: 'lab-san', address: 'http://127.0.0.1:1' }],
    luns: [
      { id: 'lun-db1', array: 'arr1', sizeGiB: 100 },
      { id: 'lun-app1', array: 'arr1', sizeGiB: 50 },
    ],
    images: [
      { id: 'rhel9', arch: 'x86_64', url: 'http://127.0.0.1:1/rhel9.ipxe' },
      { id: 'kvm-x86_64', arch: 'x86_64', url: 'http://127.0.0.1:1/kvm.ipxe', hypervisor: true },
    ],
    hosts: [host('hv1', 'r1', 1, 'hypervisor'), host('p1', 'r1', 2, 'production'), host('hv2', 'r2', 3, 'spare')],
    servers: [
      { id: 'db1', image: 'rhel9', vlans: [20], luns: ['lun-db1'], cpus: 4, memoryGiB: 16, arch: 'x86_64', priority: 0 },
      { id: 'app1', image: 'rhel9', vlans: [30], luns: ['lun-app1'], cpus: 2, memoryGiB: 8, arch: 'x86_64', priority: 2 },
    ],
    assignments: [{ server: 'db1', mode: 'bare-metal', host: 'p1' }],
  });
}

interface LabFixture {
  world: World;
  faults: Faults;
  bus: Bus;
  hypervisors: HypervisorSimulator;
  hostSim: HostSimulator;
  /** iPXE scripts the fake boot service serves, by MAC. */
  scripts: Map<string, string>;
  heartbeats: Heartbeat[];
  host(id: string): Host;
  driver(id: string): LabHypervisorVmDriver;
  stop(): Promise<void>;
}

let nats: TestServer | undefined;
let shared: Promise<LabFixture> | undefined;
const fixture = (): Promise<LabFixture> => (shared ??= startFixture());

async function startFixture(): Promise<LabFixture> {
  nats = await startNats();
  const bus = await connectBus({ url: nats.url, name: 'vm-lab-test' });
  const scripts = new Map<string, string>();
  const boot: Server = createServer((req, res) => {
    const mac = /^\/boot\/([0-9a-f:]+)\.ipxe$/.exec(req.url ?? '')?.[1];
    const script = mac === undefined ? undefined : scripts.get(mac);
    res.writeHead(script === undefined ? 404 : 200, { 'content-type': 'text/plain' });
    res.end(script ?? 'no boot script\n');
  });
  await new Promise<void>((resolve) => boot.listen(0, '127.0.0.1', resolve));
  const port = await freePort();
  const world = new World(inventory(`http://127.0.0.1:${port}`), new LabRecorder());
  const faults = new Faults(world);
  const hostSim = startHostSimulator(world, {
    bus,
    bootServiceUrl: `http://127.0.0.1:${(boot.address() as AddressInfo).port}`,
    periodMs: PERIOD_MS,
    bootDelayMs: 20,
  });
  const hypervisors = await startHypervisorSimulator(world, { bus, port, periodMs: PERIOD_MS, bootDelayMs: 20 });
  const heartbeats: Heartbeat[] = [];
  const subscription: CoreSubscription = await bus.subscribeCore(topics.heartbeats, (hb) => void heartbeats.push(hb));
  const host = (id: string): Host => world.inventory.hosts.find((h) => h.id === id) ?? assert.fail(`no host ${id}`);
  return {
    world,
    faults,
    bus,
    hypervisors,
    hostSim,
    scripts,
    heartbeats,
    host,
    driver: (id) => LabHypervisorVmDriver.fromInventory(host(id), { pollIntervalMs: 10 }),
    stop: async () => {
      await subscription.stop();
      await hypervisors.stop();
      hostSim.stop();
      faults.stop();
      await new Promise<void>((resolve) => boot.close(() => resolve()));
      await bus.close();
    },
  };
}

after(async () => {
  if (shared !== undefined) await (await shared).stop();
  await nats?.stop();
});

vmDriverConformance('vm-lab', async () => {
  const f = await fixture();
  return {
    driver: f.driver('hv1'),
    changes: () => VM_ACTIONS.reduce((n, action) => n + f.world.recorder.count('vm', action, 'hv1'), 0),
    unreachable: async () =>
      LabHypervisorVmDriver.fromInventory({ ...f.host('hv1'), hypervisor: { driver: 'lab', uri: `http://127.0.0.1:${await freePort()}/hypervisors/hv1` } }),
    close: () => Promise.resolve(),
  };
});

describe('vm-lab', () => {
  let f: LabFixture;
  before(async () => {
    f = await fixture();
  });

  /** Heartbeats of `server` sent from `host` after `since`. */
  const beatsOf = (server: string, host: string, since = 0): Heartbeat[] =>
    f.heartbeats.filter((hb) => hb.server === server && hb.host === host && hb.sentAt > since);
  const vmEvents = (action: string, host: string) => f.world.recorder.events({ source: 'vm', action, host });
  const wire = (hostId: string, vlans: number[], luns: string[]): void => {
    const nic = f.host(hostId).nics[0] ?? assert.fail('no NIC');
    for (const vlan of vlans) f.world.port(nic.switch, nic.port).egress.add(vlan);
    for (const lun of luns) f.world.grant(lun, f.host(hostId).hba?.initiator ?? assert.fail('no HBA'));
  };
  /** What the executor does to convert a host: boot entry for its MAC, next boot PXE once, power on. */
  const convert = async (hostId: string): Promise<void> => {
    const mac = f.host(hostId).nics[0]?.mac ?? assert.fail('no NIC');
    f.scripts.set(mac, renderBootScript({ mac, server: hostId, image: 'kvm-x86_64', imageUrl: 'http://127.0.0.1:1/kvm.ipxe' }));
    const rt = f.world.host(hostId);
    rt.bootTarget = 'Pxe';
    rt.bootEnabled = 'Once';
    f.world.setPower(hostId, 'off');
    f.world.setPower(hostId, 'on');
    await waitFor(`${hostId} to run the hypervisor`, () => f.hypervisors.hypervisors.running(hostId), 5_000);
  };

  test('vm-lab - a host that runs no hypervisor answers as an unreachable one: a transient error naming what it does', async () => {
    await assert.rejects(
      f.driver('hv2').state('db1', signal()),
      isDriverError((err) => {
        assert.equal(err.code, errorCodes.transient);
        assert.equal(err.httpStatus, 503);
        assert.match(err.message, /vm db1 on hypervisor hv2 .*host hv2 runs no hypervisor \(powered off\)/);
      }),
    );
    await assert.rejects(f.driver('p1').state('db1', signal()), /host p1 runs no hypervisor \(running rhel9\)/);
  });

  test('vm-lab - a VM on a converted hypervisor heartbeats as its server from the hypervisor host once its trunk and LUNs are there', async () => {
    await convert('hv2');
    wire('hv2', [20], ['lun-db1']);
    const vm = f.driver('hv2');
    const since = Date.now();
    assert.equal((await vm.define(db1, signal())).done, true);
    assert.equal((await vm.start('db1', signal())).done, true);

    await waitFor('heartbeats from db1 on hv2', () => beatsOf('db1', 'hv2', since).length >= 3, 3_000);
    const [beat] = beatsOf('db1', 'hv2', since);
    assert.deepEqual({ ...beat, seq: 0, sentAt: 0 }, { host: 'hv2', site: 'dc1', rack: 'r2', server: 'db1', drill: false, seq: 0, sentAt: 0 });
    // The hypervisor host heartbeats too, as itself with no server.
    assert.ok(f.heartbeats.some((hb) => hb.host === 'hv2' && hb.server === null && hb.sentAt > since));
    assert.equal(vmEvents('booted', 'hv2').at(-1)?.detail?.domain, 'db1');
    assert.ok(f.world.recorder.count('vm', 'heartbeat', 'hv2') >= 3);
  });

  test('vm-lab - a drill VM says so in its heartbeats, and its definition keeps the drill mark', async () => {
    const vm = f.driver('hv2');
    const rehearsal = { ...db1, name: 'db1-drill', mac: '52:54:00:f0:00:09', drill: true };
    const since = Date.now();
    assert.equal((await vm.define(rehearsal, signal())).done, true);
    assert.equal((await vm.define(rehearsal, signal())).done, true, 'defining it again is a no-op, not a spec change');
    assert.equal((await vm.start('db1-drill', signal())).done, true);
    await waitFor('heartbeats from db1-drill on hv2', () => beatsOf('db1-drill', 'hv2', since).length > 0, 3_000);
    assert.ok(beatsOf('db1-drill', 'hv2', since).every((hb) => hb.drill === true));
    assert.equal((await vm.stop('db1-drill', signal())).done, true);
    assert.equal((await vm.undefine('db1-drill', signal())).done, true);
  });

  test('vm-lab - without the trunk VLAN and the LUN the VM runs silently and the event log says why', async () => {
    const vm = f.driver('hv1');
    const since = Date.now();
    assert.equal((await vm.define(app1, signal())).done, true);
    assert.equal((await vm.start('app1', signal())).done, true);
    assert.equal(await vm.state('app1', signal()), 'running');

    await waitFor('app1 to fail its boot', () => vmEvents('boot-failed', 'hv1').some((e) => e.detail?.domain === 'app1'), 2_000);
    const failed = vmEvents('boot-failed', 'hv1').filter((e) => e.detail?.domain === 'app1').at(-1);
    assert.deepEqual(failed?.detail?.problems, ["hypervisor hv1's switch ports do not carry VLAN 30", "hypervisor hv1's HBA cannot see LUN lun-app1"]);
    await sleep(5 * PERIOD_MS);
    assert.deepEqual(beatsOf('app1', 'hv1', since), [], 'no heartbeat from a VM cut off from its VLAN and disk');

    // Trunk the VLAN and grant the LUN, restart the VM: now it comes up.
    wire('hv1', [30], ['lun-app1']);
    assert.equal((await vm.stop('app1', signal())).done, true);
    assert.equal((await vm.start('app1', signal())).done, true);
    await waitFor('heartbeats from app1 on hv1', () => beatsOf('app1', 'hv1', since).length > 0, 2_000);
  });

  test('vm-lab - a VM that does not fit in the hypervisor memory left is refused with the numbers', async () => {
    const vm = f.driver('hv1');
    const huge = { ...db1, name: 'huge', mac: '52:54:00:f0:00:03', memoryGiB: 100 };
    assert.equal((await vm.define(huge, signal())).done, true);
    await assert.rejects(
      vm.start('huge', signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, false);
        assert.deepEqual(err.messageIds, ['insufficient-memory']);
        assert.match(err.message, /cannot start "huge": it needs 100 GiB, hv1 has \d+ GiB of 64 GiB free/);
      }),
    );
    assert.equal(await vm.state('huge', signal()), 'stopped');
    assert.equal((await vm.undefine('huge', signal())).done, true);
  });

  test('vm-lab - burning the hypervisor host kills its VMs; their definitions come back with it, stopped', async () => {
    assert.ok(f.hypervisors.hypervisors.running('hv2'), 'hv2 was converted by an earlier test');
    const vm = f.driver('hv2');
    assert.equal(await vm.state('db1', signal()), 'running');

    f.faults.burnRack('r2');
    const burnedAt = Date.now();
    assert.equal(vmEvents('died', 'hv2').at(-1)?.detail?.reason, 'its hypervisor host powered off');
    await assert.rejects(vm.state('db1', signal()), isDriverError((err) => assert.equal(err.code, errorCodes.transient)));
    await sleep(4 * PERIOD_MS);
    assert.deepEqual(beatsOf('db1', 'hv2', burnedAt + 50), [], 'db1 went silent with its hypervisor');
    assert.ok(beatsOf('app1', 'hv1', burnedAt + 2 * PERIOD_MS).length > 0, 'the VM on the other hypervisor keeps heartbeating');

    // The rack is rebuilt: the host boots the hypervisor from disk, libvirt still knows db1 but does not start it.
    f.faults.restoreHost('hv2');
    f.world.setPower('hv2', 'on');
    await waitFor('hv2 to run the hypervisor again', () => f.hypervisors.hypervisors.running('hv2'), 2_000);
    assert.equal(await vm.state('db1', signal()), 'stopped');
    assert.match((await vm.define(db1, signal())).message, /already defined as asked/);
  });

  test('vm-lab - a host booted into another image loses its domains', async () => {
    const mac = f.host('hv2').nics[0]?.mac ?? '';
    f.world.setPower('hv2', 'off');
    f.scripts.set(mac, renderBootScript({ mac, server: 'db1', image: 'rhel9', imageUrl: 'http://127.0.0.1:1/rhel9.ipxe' }));
    const rt = f.world.host('hv2');
    rt.bootTarget = 'Pxe';
    rt.bootEnabled = 'Once';
    f.world.setPower('hv2', 'on');
    await waitFor(`hv2 to run db1 on bare metal (${rt.phase} ${rt.bootError ?? ''})`, () => rt.phase === 'running', 2_000);
    assert.deepEqual(vmEvents('definitions-lost', 'hv2').at(-1)?.detail, { domains: ['db1'], image: 'rhel9' });
    await convert('hv2');
    assert.equal(await f.driver('hv2').state('db1', signal()), 'absent');
  });

  test('vm-lab - a domain XML the lab cannot read, or one for another name, is refused with the reason', async () => {
    const base = `${f.host('hv1').hypervisor?.uri ?? ''}/domains`;
    const bad = await fetch(`${base}/x1`, { method: 'PUT', body: "<domain type='kvm'><name>x1</name></domain>" });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /invalid-domain-xml.*no <memory>.*no <vcpu>.*no <interface> with a <mac address>/);
    const other = await fetch(`${base}/x2`, { method: 'PUT', body: (await (await fetch(`${base}/app1`)).json() as { xml: string }).xml });
    assert.equal(other.status, 400);
    assert.match(JSON.stringify(await other.json()), /name-mismatch.*defines \\"app1\\", not \\"x2\\"/);
  });
});

describe('vm-lab topology', () => {
  test('vm-lab topology - generated inventories point every hypervisor-capable host at the lab hypervisor API', () => {
    const inv = Inventory.parse(generateTopology({ size: 'rack', addresses: { hypervisorBase: 'http://127.0.0.1:5999/' } }));
    assert.ok(inv.hosts.some((h) => h.hypervisorCapable) && inv.hosts.some((h) => !h.hypervisorCapable));
    for (const h of inv.hosts) {
      if (h.hypervisorCapable) assert.deepEqual(h.hypervisor, { driver: 'lab', uri: `http://127.0.0.1:5999/hypervisors/${h.id}` }, h.id);
      else assert.equal(h.hypervisor, undefined, h.id);
    }
  });

  test('vm-lab topology - a started lab serves the hypervisors its inventory names, and its standing hypervisors run VMs', async () => {
    const server = await startNats();
    const lab = await startLab({ natsUrl: server.url, size: 'tiny', powerDelayMs: 10, heartbeatPeriodMs: 100, bootDelayMs: 10 });
    try {
      const standing = lab.inventory.hosts.find((h) => h.role === 'hypervisor') ?? assert.fail('tiny has a standing hypervisor');
      assert.equal(standing.hypervisor?.uri, `${lab.describe().hypervisorUrl}/hypervisors/${standing.id}`);
      const vm = LabHypervisorVmDriver.fromInventory(standing, { pollIntervalMs: 10 });
      await vm.validate();
      assert.equal(await vm.state('web-x', signal()), 'absent');
      assert.equal((await vm.define({ ...db1, name: 'web-x', memoryGiB: 1, luns: [] }, signal())).done, true);
      assert.equal((await vm.start('web-x', signal())).done, true);
      assert.equal(lab.recorder.count('vm', 'start', standing.id), 1);
    } finally {
      await lab.stop();
      await server.stop();
    }
  });
});
