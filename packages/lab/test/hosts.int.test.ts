import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { connectBus, Inventory, renderBootScript, topics, type Bus, type CoreSubscription, type Heartbeat } from '@firebreak/shared';
import { startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import { startHostSimulator, type HostSimulator } from '../src/hosts/host-simulator.ts';
import { LabRecorder } from '../src/recorder.ts';
import { World } from '../src/world.ts';

const PERIOD_MS = 100;
const ids = ['p1', 'p2', 's1', 's2', 's3', 's4', 's5', 's6'] as const;
type HostId = (typeof ids)[number];
const port = (id: HostId): number => ids.indexOf(id) + 1;
const mac = (id: HostId): string => `52:54:00:00:01:0${port(id)}`;
const initiator = (id: HostId): string => `iqn.2024-01.lab.firebreak:${id}`;

function inventory(): Inventory {
  return Inventory.parse({
    version: 1,
    racks: [{ id: 'r1', site: 'dc1' }],
    switches: [{ id: 'sw1', fabric: 'net-a', address: '127.0.0.1:1', credentialsRef: 'env:SW' }],
    vlans: [
      { id: 10, name: 'app', fabric: 'net-a' },
      { id: 20, name: 'db', fabric: 'net-a', drillVlan: 2020 },
      { id: 2020, name: 'db-drill', fabric: 'net-a' },
    ],
    storageArrays: [{ id: 'arr1', fabric: 'san-a', driver: 'lab', address: 'http://127.0.0.1:1' }],
    luns: [{ id: 'lun-db1', array: 'arr1', sizeGiB: 100 }],
    images: [{ id: 'rhel9', arch: 'x86_64', url: 'http://127.0.0.1:1/rhel9.ipxe' }],
    hosts: ids.map((id) => ({
      id,
      site: 'dc1',
      rack: 'r1',
      arch: 'x86_64',
      cpus: 8,
      memoryGiB: 32,
      nics: [{ mac: mac(id), switch: 'sw1', port: port(id) }],
      hba: { initiator: initiator(id), fabric: 'san-a' },
      bmc: { address: '127.0.0.1:1', credentialsRef: 'env:BMC' },
      role: id.startsWith('p') ? 'production' : 'spare',
    })),
    servers: [{ id: 'db1', image: 'rhel9', vlans: [20], luns: ['lun-db1'], cpus: 4, memoryGiB: 16, arch: 'x86_64', priority: 0 }],
    assignments: [{ server: 'db1', mode: 'bare-metal', host: 'p1' }],
  });
}

describe('host simulator', () => {
  let nats: TestServer;
  let bus: Bus;
  let bootServer: Server;
  let world: World;
  let hosts: HostSimulator;
  /** iPXE scripts the boot service has, by MAC; anything else is a 404. */
  const scripts = new Map<string, string>();
  const heartbeats = new Map<string, Heartbeat[]>();
  const beatsWhenRunning = new Map<string, number>();
  const subscriptions: CoreSubscription[] = [];

  const listen = async (id: HostId): Promise<Heartbeat[]> => {
    const received: Heartbeat[] = [];
    heartbeats.set(id, received);
    subscriptions.push(await bus.subscribeCore(topics.heartbeat('dc1', 'r1', id), (hb) => void received.push(hb)));
    return received;
  };

  /** What the executor will do before powering a spare on: next boot PXE, once. */
  const pxeOnce = (id: HostId): void => {
    const rt = world.host(id);
    rt.bootTarget = 'Pxe';
    rt.bootEnabled = 'Once';
  };
  const serveScript = (id: HostId): void => {
    scripts.set(mac(id), renderBootScript({ mac: mac(id), server: 'db1', image: 'rhel9', imageUrl: 'http://127.0.0.1:1/rhel9.ipxe' }));
  };
  /** A drill instance of db1: its VLAN's twin and a clone of its LUN instead of its own. */
  const CLONE = 'lun-db1-d-0123456789ab';
  const serveDrillScript = (id: HostId): void => {
    scripts.set(mac(id), renderBootScript({ mac: mac(id), server: 'db1', image: 'rhel9', imageUrl: 'http://127.0.0.1:1/rhel9.ipxe', attach: { vlans: [2020], luns: [CLONE] } }));
  };
  const settled = (id: HostId) => waitFor(`${id} to finish booting`, () => ['running', 'boot-failed'].includes(world.host(id).phase), 5_000);

  before(async () => {
    nats = await startNats();
    bus = await connectBus({ url: nats.url, name: 'lab-hosts-test' });
    bootServer = createServer((req, res) => {
      const match = /^\/boot\/([0-9a-f:]+)\.ipxe$/.exec(req.url ?? '');
      const script = match?.[1] === undefined ? undefined : scripts.get(match[1]);
      res.writeHead(script === undefined ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(script ?? 'no boot script\n');
    });
    await new Promise<void>((resolve) => bootServer.listen(0, '127.0.0.1', resolve));
    world = new World(inventory(), new LabRecorder());
    hosts = startHostSimulator(world, {
      bus,
      bootServiceUrl: `http://127.0.0.1:${(bootServer.address() as AddressInfo).port}`,
      periodMs: PERIOD_MS,
      bootDelayMs: 20,
    });
    // Heartbeats sent by the time each host's phase turned to running (the simulator's listener runs first).
    world.on('phase', (id: string, phase: string) => {
      if (phase === 'running') beatsWhenRunning.set(id, world.recorder.count('host', 'heartbeat', id));
    });
  });
  after(async () => {
    hosts?.stop();
    for (const sub of subscriptions) await sub.stop();
    await bus?.close();
    await new Promise<void>((resolve) => (bootServer ? bootServer.close(() => resolve()) : resolve()));
    await nats?.stop();
  });

  test('host simulator - a running host heartbeats on its subject as the server it runs', async () => {
    const received = await listen('p1');
    await waitFor('three heartbeats from p1', () => received.length >= 3, 2_000);
    const [first, , third] = received;
    assert.deepEqual({ ...first, seq: 0, sentAt: 0 }, { host: 'p1', site: 'dc1', rack: 'r1', server: 'db1', drill: false, seq: 0, sentAt: 0 });
    assert.ok((third?.seq ?? 0) > (first?.seq ?? 0), 'seq increases');
    assert.ok(world.recorder.count('host', 'heartbeat', 'p1') >= 3);
  });

  test('host simulator - a PXE host boots as its server when storage, VLANs and boot script agree', async () => {
    const received = await listen('s1');
    world.grant('lun-db1', initiator('s1'));
    world.port('sw1', port('s1')).egress.add(20);
    serveScript('s1');
    pxeOnce('s1');

    world.setPower('s1', 'on');
    assert.equal(world.host('s1').phase, 'booting');
    await settled('s1');

    const rt = world.host('s1');
    assert.equal(rt.phase, 'running', `bootError: ${rt.bootError}`);
    assert.equal(rt.server, 'db1');
    assert.equal(rt.bootError, null);
    assert.deepEqual([rt.bootTarget, rt.bootEnabled], ['None', 'Disabled'], 'a one-time override is used up');
    assert.deepEqual(world.recorder.events({ source: 'host', action: 'booted', host: 's1' })[0]?.detail, { server: 'db1', image: 'rhel9' });
    await waitFor('a heartbeat from s1', () => received.length > 0, 2_000);
    assert.equal(received[0]?.server, 'db1');
  });

  const failures: { name: string; host: HostId; grant: boolean; vlan: boolean; script: boolean; error: string }[] = [
    { name: 'its LUN is not granted', host: 's2', grant: false, vlan: true, script: true, error: 'cannot see LUN lun-db1' },
    { name: 'its port is not on the VLAN', host: 's3', grant: true, vlan: false, script: true, error: 'not on VLAN 20' },
    { name: 'the boot service has no script for it', host: 's4', grant: true, vlan: true, script: false, error: `no boot script for ${mac('s4')}: HTTP 404` },
  ];
  for (const c of failures) {
    test(`host simulator - a PXE boot fails when ${c.name}`, async () => {
      const received = await listen(c.host);
      if (c.grant) world.grant('lun-db1', initiator(c.host));
      if (c.vlan) world.port('sw1', port(c.host)).egress.add(20);
      if (c.script) serveScript(c.host);
      pxeOnce(c.host);

      world.setPower(c.host, 'on');
      await settled(c.host);

      const rt = world.host(c.host);
      assert.equal(rt.phase, 'boot-failed');
      assert.equal(rt.bootError, c.error);
      assert.equal(rt.server, null, 'the host did not take the identity');
      assert.deepEqual(world.recorder.events({ source: 'host', action: 'boot-failed', host: c.host })[0]?.detail, { error: c.error });
      await sleep(PERIOD_MS * 2);
      assert.equal(received.length, 0, 'a host that failed to boot sends no heartbeat');
    });
  }

  test("host simulator - a PXE host whose script attaches a drill VLAN and a clone LUN boots on those, without the server's own", async () => {
    const received = await listen('s5');
    world.addLun(CLONE, 'arr1');
    world.grant(CLONE, initiator('s5'));
    world.port('sw1', port('s5')).egress.add(2020);
    serveDrillScript('s5');
    pxeOnce('s5');

    world.setPower('s5', 'on');
    await settled('s5');

    const rt = world.host('s5');
    assert.equal(rt.phase, 'running', `bootError: ${rt.bootError}`);
    assert.equal(rt.server, 'db1');
    assert.ok(!world.canSee('s5', 'lun-db1') && !world.anyNicOnVlan('s5', 20), 'the drill host never had the production LUN or VLAN');
    assert.equal(beatsWhenRunning.get('s5'), 1, 'it heartbeats the moment it runs, not a period later');
    await waitFor('a heartbeat from s5', () => received.length > 0, 2_000);
    assert.equal(received[0]?.server, 'db1');
    assert.equal(received[0]?.drill, true, 'a drill rehearsal says so in its heartbeats');
  });

  test("host simulator - a PXE host whose script attaches a drill VLAN and a clone LUN fails naming them when it has only the server's own", async () => {
    const received = await listen('s6');
    world.addLun(CLONE, 'arr1');
    world.grant('lun-db1', initiator('s6'));
    world.port('sw1', port('s6')).egress.add(20);
    serveDrillScript('s6');
    pxeOnce('s6');

    world.setPower('s6', 'on');
    await settled('s6');

    const rt = world.host('s6');
    assert.equal(rt.phase, 'boot-failed');
    assert.equal(rt.bootError, `cannot see LUN ${CLONE}; not on VLAN 2020`);
    assert.equal(rt.server, null, 'the host did not take the identity');
    await sleep(PERIOD_MS * 2);
    assert.equal(received.length, 0, 'a host that failed to boot sends no heartbeat');
  });

  test('host simulator - power off stops heartbeats at once; power on boots from disk as before', async () => {
    const received = heartbeats.get('p1') ?? (await listen('p1'));
    await waitFor('p1 heartbeating', () => received.length > 0, 2_000);
    world.setPower('p1', 'off');
    const sent = world.recorder.count('host', 'heartbeat', 'p1');
    await sleep(PERIOD_MS / 2); // let one already on the wire arrive
    const arrived = received.length;
    await sleep(PERIOD_MS * 3);
    assert.equal(world.recorder.count('host', 'heartbeat', 'p1'), sent, 'nothing sent after power off');
    assert.equal(received.length, arrived, 'nothing arrived after power off');

    world.setPower('p1', 'on');
    await settled('p1');
    assert.equal(world.host('p1').phase, 'running');
    await waitFor('p1 heartbeating again', () => received.length > arrived, 2_000);
    assert.equal(received.at(-1)?.server, 'db1', 'a disk boot keeps the identity');
    assert.equal(world.recorder.events({ source: 'host', action: 'booted', host: 'p1' })[0]?.detail?.from, 'disk');
  });

  test('host simulator - an isolated host stops heartbeating while its power stays on', async () => {
    const received = await listen('p2');
    await waitFor('p2 heartbeating', () => received.length > 0, 2_000);
    world.host('p2').isolated = true;
    await sleep(PERIOD_MS / 2);
    const arrived = received.length;
    await sleep(PERIOD_MS * 3);
    assert.equal(received.length, arrived);
    assert.deepEqual([world.host('p2').power, world.host('p2').phase], ['on', 'running']);

    world.host('p2').isolated = false;
    await waitFor('p2 heartbeating after rejoining', () => received.length > arrived, 2_000);
    assert.ok(hosts.stats().sent > 0);
  });
});
