import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from 'nats';
import { RedfishPowerDriver } from '@firebreak/drivers';
import { Heartbeat, subjects } from '@firebreak/shared';
import { freePort, startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import { startLab, type Lab } from '../src/index.ts';
import { snmp, type Notification, type Receiver } from '../src/snmp/net-snmp.ts';

const IF_INDEX = '1.3.6.1.2.1.2.2.1.1';
const LINK_DOWN = '1.3.6.1.6.3.1.1.5.3';
const SNMP_TRAP_OID = '1.3.6.1.6.3.1.1.4.1.0';

let nats: TestServer;
let lab: Lab;
let nc: NatsConnection;
let receiver: Receiver;
const traps: Notification[] = [];
const lastBeat = new Map<string, number>();

async function control(body: unknown): Promise<Response> {
  return fetch(`${lab.controlUrl}/v1/faults`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

before(async () => {
  nats = await startNats();
  const trapPort = await freePort();
  receiver = snmp.createReceiver({ port: trapPort, address: '127.0.0.1', includeAuthentication: true }, (error, notification) => {
    if (!error && notification) traps.push(notification);
  });
  lab = await startLab({ natsUrl: nats.url, size: 'tiny', powerDelayMs: 50, heartbeatPeriodMs: 200, trapReceivers: [`127.0.0.1:${trapPort}`] });
  const credentials = JSON.parse(await readFile(lab.credentialsPath, 'utf8')) as Record<string, { community?: string }>;
  for (const c of Object.values(credentials)) if (c.community) receiver.getAuthorizer().addCommunity(c.community);
  nc = await connect({ servers: nats.url });
  nc.subscribe(subjects.heartbeatAll, {
    callback: (_err, msg) => {
      const hb = Heartbeat.parse(msg.json());
      lastBeat.set(hb.host, Date.now());
    },
  });
});

after(async () => {
  await nc?.close();
  await lab?.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  await nats?.stop();
});

test('lab - every running host heartbeats; powered-off spares do not', async () => {
  const running = [...lab.world.allHosts()].filter((h) => h.power === 'on').map((h) => h.host.id);
  const spares = lab.inventory.hosts.filter((h) => h.role === 'spare').map((h) => h.id);
  assert.ok(spares.length > 0 && running.length > 0);
  await waitFor('a heartbeat from every running host', () => running.every((id) => lastBeat.has(id)), 5_000);
  for (const id of spares) assert.equal(lastBeat.has(id), false, `spare ${id} must be silent`);
});

test('lab - burning a rack stops exactly its heartbeats and BMCs and sends its linkDown traps', async () => {
  const rack = 'r2';
  const inRack = lab.inventory.hosts.filter((h) => h.rack === rack);
  const outside = [...lab.world.allHosts()].filter((h) => h.host.rack !== rack && h.power === 'on').map((h) => h.host.id);
  const trapsBefore = traps.length;

  const res = await control({ fault: 'burn-rack', rack });
  assert.equal(res.status, 200);
  assert.deepEqual(((await res.json()) as { hosts: string[] }).hosts.sort(), inRack.map((h) => h.id).sort());
  const burnedAt = Date.now();

  // Three heartbeat periods later: the rack is silent, everyone else still talks.
  await new Promise((r) => setTimeout(r, 700));
  for (const h of inRack) assert.ok((lastBeat.get(h.id) ?? 0) <= burnedAt + 50, `${h.id} still heartbeats after the burn`);
  for (const id of outside) assert.ok((lastBeat.get(id) ?? 0) > burnedAt + 200, `${id} outside the rack stopped heartbeating`);

  // One linkDown per NIC of the rack, from the rack's switch ports, and none for other ports.
  const expected = inRack.flatMap((h) => h.nics.map((n) => `${n.switch}:${n.port}`)).sort();
  const switchByAddress = new Map(lab.inventory.switches.map((s) => [s.address, s.id]));
  await waitFor('linkDown traps for every NIC of the rack', () => traps.length - trapsBefore >= expected.length, 3_000);
  const got = traps
    .slice(trapsBefore)
    .filter((t) => t.pdu.varbinds.some((v) => v.oid === SNMP_TRAP_OID && String(v.value) === LINK_DOWN))
    .map((t) => {
      const ifIndex = t.pdu.varbinds.find((v) => v.oid.startsWith(IF_INDEX))?.value;
      return `${switchByAddress.get(`${t.rinfo.address}:${t.rinfo.port}`)}:${String(ifIndex)}`;
    })
    .sort();
  assert.deepEqual(got, expected);

  // The production Redfish driver, configured only from the written inventory: the rack's BMCs are dark, others answer.
  const probe = async (hostId: string): Promise<string> => {
    const host = lab.inventory.hosts.find((h) => h.id === hostId);
    assert.ok(host);
    const driver = await RedfishPowerDriver.fromInventory(host.bmc, { requestTimeoutMs: 500 });
    try {
      return (await driver.status(AbortSignal.timeout(2_000))).powerState;
    } catch (err) {
      return `error: ${(err as Error).message}`;
    } finally {
      await driver.close();
    }
  };
  for (const h of inRack.slice(0, 2)) assert.match(await probe(h.id), /^error: /, `${h.id}'s BMC must be unreachable`);
  for (const id of outside.slice(0, 2)) assert.equal(await probe(id), 'on');

  // The lab's ordered event log tells the same story.
  assert.equal(lab.recorder.count('fault', 'burn-rack'), 1);
});

test('lab - basic-auth-only BMCs (every third rack) still serve the driver in auto mode', async () => {
  const logins = (address: string): number =>
    lab.recorder.events({ source: 'bmc', action: 'login' }).filter((e) => e.detail?.endpoint === address).length;
  for (const rack of ['r1', 'r3']) {
    const host = lab.inventory.hosts.find((h) => h.rack === rack && lab.world.host(h.id).power === 'on');
    assert.ok(host);
    assert.equal(host.bmc.auth, 'auto');
    const driver = await RedfishPowerDriver.fromInventory(host.bmc, { requestTimeoutMs: 1_000 });
    try {
      assert.equal((await driver.status(AbortSignal.timeout(3_000))).powerState, 'on');
    } finally {
      await driver.close();
    }
    if (rack === 'r1') assert.ok(logins(host.bmc.address) > 0, 'a BMC with SessionService gets a session');
    else assert.equal(logins(host.bmc.address), 0, 'no session on a BMC without SessionService');
  }
});

test('lab - a bad fault request is refused with a reason and the lab keeps going', async () => {
  const bad = await control({ fault: 'burn-rack' });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /rack/);
  const unknown = await control({ fault: 'kill-host', host: 'nope' });
  assert.equal(unknown.status, 404);
  const counters = await fetch(`${lab.controlUrl}/v1/counters`);
  assert.equal(counters.status, 200);
});
