/**
 * The trap receiver and link-state tracker against the lab's SNMP switch
 * agents: the lab's world changes a port's carrier, the switch agent sends a
 * linkDown/linkUp trap from its own socket, and the detector names the host.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { startLab, type Lab } from '@firebreak/lab';
import type { Inventory } from '@firebreak/shared';
import { loadNetSnmp } from '@firebreak/shared/net-snmp';
import { startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import { LinkState, type HostLinksEvent } from '../src/snmp/link-state.ts';
import { startTrapReceiver, switchCommunities, trapOids, type LinkEvent, type TrapReceiver } from '../src/snmp/trap-receiver.ts';

const snmp = loadNetSnmp(import.meta.url);

let nats: TestServer;
let lab: Lab;
let receiver: TrapReceiver;
let communities: string[];
const events: LinkEvent[] = [];
const links = { state: undefined as unknown as LinkState, allDown: [] as HostLinksEvent[], restored: [] as HostLinksEvent[] };
const stops: (() => Promise<void>)[] = [];

before(async () => {
  nats = await startNats();
  lab = await startLab({ natsUrl: nats.url, size: 'tiny', powerDelayMs: 100 });
  communities = await switchCommunities(lab.inventory);
  links.state = new LinkState(lab.inventory);
  links.state.on('all-down', (e) => links.allDown.push(e));
  links.state.on('restored', (e) => links.restored.push(e));
  receiver = await startTrapReceiver({
    port: 0,
    inventory: lab.inventory,
    communities,
    onLink: (event) => {
      events.push(event);
      if (event.host !== null) links.state.update(event.host, event.switch, event.port, event.state, event.at);
    },
  });
  stops.push(() => receiver.stop());
  lab.switches.setTrapReceivers([`127.0.0.1:${receiver.port}`]);
});

after(async () => {
  for (const stop of stops.reverse()) await stop();
  await lab?.stop();
  await nats?.stop();
});

function sendTrap(port: number, community: string, version: number, typeOrOid: string | number, ifIndex: number): Promise<void> {
  const session = snmp.createSession('127.0.0.1', community, { version, trapPort: port });
  const varbinds = [{ oid: `${trapOids.ifIndex}.${ifIndex}`, type: snmp.ObjectType.Integer, value: ifIndex }];
  return new Promise((resolve, reject) =>
    session.trap(typeOrOid, varbinds, (error) => {
      session.close();
      if (error) reject(error);
      else resolve();
    }),
  );
}

function sendGarbage(port: number, payloads: Buffer[]): Promise<void> {
  const socket = createSocket('udp4');
  return new Promise((resolve, reject) => {
    let left = payloads.length;
    for (const payload of payloads) {
      socket.send(payload, port, '127.0.0.1', (error) => {
        if (error) reject(error);
        if (--left === 0) socket.close(() => resolve());
      });
    }
  });
}

test('detector snmp-trap-receiver - every switch community is resolved from the inventory credentials', () => {
  assert.equal(communities.length, lab.inventory.switches.length);
  assert.ok(receiver.port > 0);
});

test('detector snmp-trap-receiver - a burned rack: a linkDown per NIC, each named with its host; every host all-down once', async () => {
  const r2 = lab.inventory.hosts.filter((h) => h.rack === 'r2');
  const started = Date.now();
  lab.faults.burnRack('r2');
  const expected = r2.flatMap((h) => h.nics.map((nic) => ({ host: h.id, switch: nic.switch, port: nic.port, state: 'down' })));
  await waitFor('a linkDown for every NIC of r2', () => events.length >= expected.length, 3_000);
  const latest = Math.max(...events.map((e) => e.at)) - started;
  const key = (e: { host: string | null; port: number }): string => `${e.host} ${e.port}`;
  assert.deepEqual(
    events.map(({ at: _at, ...rest }) => rest).sort((a, b) => key(a).localeCompare(key(b))),
    expected.sort((a, b) => key(a).localeCompare(key(b))),
  );
  assert.deepEqual(links.allDown.map((e) => e.host).sort(), r2.map((h) => h.id).sort());
  for (const h of r2) assert.equal(links.state.allLinksDown(h.id), true);
  assert.equal(links.state.allLinksDown('r1-h01'), false);
  assert.deepEqual(receiver.stats(), { received: 16, linkDown: 16, linkUp: 0, unmapped: 0, malformed: 0, refused: 0 });
  console.log(`# burned rack: ${events.length} linkDown traps mapped to ${links.allDown.length} all-down hosts within ${latest} ms`);
});

test('detector snmp-link-state - one NIC down is not the host; both down is; one back restores it', async () => {
  events.length = 0;
  const [first, second] = lab.inventory.hosts.find((h) => h.id === 'r1-h01')!.nics;
  lab.world.setPortCarrier(first!.switch, first!.port, 'down');
  await waitFor('the first linkDown', () => events.length === 1);
  assert.deepEqual({ ...events[0], at: 0 }, { host: 'r1-h01', switch: 'r1-tor', port: first!.port, state: 'down', at: 0 });
  assert.equal(links.state.allLinksDown('r1-h01'), false);
  assert.deepEqual(links.state.downLinks('r1-h01'), [`r1-tor:${first!.port}`]);

  lab.world.setPortCarrier(second!.switch, second!.port, 'down');
  await waitFor('r1-h01 all-down', () => links.allDown.some((e) => e.host === 'r1-h01'));
  assert.deepEqual(
    links.allDown.filter((e) => e.host === 'r1-h01').map(({ at: _at, ...rest }) => rest),
    [{ host: 'r1-h01', switch: 'r1-tor', port: second!.port }],
  );

  lab.world.setPortCarrier(first!.switch, first!.port, 'up');
  await waitFor('r1-h01 restored', () => links.restored.some((e) => e.host === 'r1-h01'));
  assert.equal(links.state.allLinksDown('r1-h01'), false);
  lab.world.setPortCarrier(second!.switch, second!.port, 'up');
  await waitFor('the second linkUp', () => events.length === 4);
  assert.deepEqual(links.state.downLinks('r1-h01'), []);
  assert.equal(links.restored.filter((e) => e.host === 'r1-h01').length, 1, 'restored once');
  assert.equal(receiver.stats().linkUp, 2);
});

test('detector snmp-trap-receiver - garbage, wrong communities and unknown senders are counted and dropped; traps still flow', async () => {
  const before = receiver.stats();
  events.length = 0;
  await sendGarbage(receiver.port, [
    Buffer.from('not snmp at all'),
    Buffer.alloc(0),
    Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02, 0x01]), // a BER sequence that claims more than it has
    Buffer.alloc(1500, 0xff),
  ]);
  await sendTrap(receiver.port, 'public', snmp.Version2c, trapOids.linkDown, 1);
  // All lab switches share 127.0.0.1, so a trap from an unknown source port names no switch.
  await sendTrap(receiver.port, communities[0]!, snmp.Version2c, trapOids.linkDown, 1);
  await waitFor('every bad packet counted', () => {
    const s = receiver.stats();
    return s.malformed - before.malformed === 4 && s.refused - before.refused === 1 && s.unmapped - before.unmapped === 1;
  });
  assert.equal(events.length, 0, 'nothing reached onLink');

  const port = lab.inventory.hosts.find((h) => h.id === 'r3-h02')!.nics[0]!;
  lab.world.setPortCarrier(port.switch, port.port, 'down');
  await waitFor('a real trap after the garbage', () => events.length === 1);
  assert.equal(events[0]?.host, 'r3-h02');
  lab.world.setPortCarrier(port.switch, port.port, 'up');
  await waitFor('its linkUp', () => events.length === 2);
});

test('detector snmp-trap-receiver - a switch sending from an ephemeral port is known by its IP; v1 traps and unknown ports too', async () => {
  // One switch at 127.0.0.1: a real switch's traps leave from any port, so its IP must name it.
  const [sw] = lab.inventory.switches;
  const inventory: Inventory = { ...lab.inventory, switches: [{ ...sw!, address: '127.0.0.1:161' }] };
  const seen: LinkEvent[] = [];
  const single = await startTrapReceiver({ port: 0, inventory, communities, onLink: (e) => seen.push(e) });
  stops.push(() => single.stop());
  await sendTrap(single.port, communities[0]!, snmp.Version1, snmp.TrapType.LinkDown, 3);
  await sendTrap(single.port, communities[0]!, snmp.Version2c, trapOids.linkUp, 3);
  await sendTrap(single.port, communities[0]!, snmp.Version2c, trapOids.linkDown, 999);
  await sendTrap(single.port, communities[0]!, snmp.Version2c, '1.3.6.1.6.3.1.1.5.1', 1); // coldStart: not about a link
  await waitFor('four notifications', () => single.stats().received === 4);
  assert.deepEqual(
    seen.map(({ at: _at, ...rest }) => rest),
    [
      { host: 'r1-h02', switch: sw!.id, port: 3, state: 'down' },
      { host: 'r1-h02', switch: sw!.id, port: 3, state: 'up' },
      { host: null, switch: sw!.id, port: 999, state: 'down' },
    ],
  );
  assert.deepEqual(single.stats(), { received: 4, linkDown: 2, linkUp: 1, unmapped: 1, malformed: 0, refused: 0 });
});

test('detector snmp-trap-receiver - a taken port fails start-up with the address; communities default to the switches\'; stop is idempotent', async () => {
  await assert.rejects(
    startTrapReceiver({ port: receiver.port, inventory: lab.inventory, communities, onLink: () => undefined }),
    new RegExp(`cannot listen on udp 127.0.0.1:${receiver.port} \\(EADDRINUSE\\)`),
  );
  // Without communities it accepts every inventory switch's.
  const seen: LinkEvent[] = [];
  const extra = await startTrapReceiver({ port: 0, inventory: lab.inventory, onLink: (e) => seen.push(e) });
  lab.switches.setTrapReceivers([`127.0.0.1:${extra.port}`]);
  const nic = lab.inventory.hosts.find((h) => h.id === 'r3-h05')!.nics[0]!;
  lab.world.setPortCarrier(nic.switch, nic.port, 'down');
  await waitFor('a trap at the second receiver', () => seen.length === 1);
  assert.equal(seen[0]?.host, 'r3-h05');
  lab.switches.setTrapReceivers([`127.0.0.1:${receiver.port}`]);
  await extra.stop();
  await extra.stop();
});
