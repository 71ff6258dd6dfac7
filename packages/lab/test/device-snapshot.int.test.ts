/**
 * The lab's device snapshot against a whole lab: every kind of change the
 * lab's devices take, made over their own protocols (Redfish, SNMP, SAN REST,
 * the hypervisor API, through the production drivers where one does it),
 * shows as its own diff line, and undoing it gives back the same bytes.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { LabHypervisorVmDriver, RedfishPowerDriver, SanRestStorageDriver } from '@firebreak/drivers';
import type { Host } from '@firebreak/shared';
import { startNats, waitFor, type TestServer } from '@firebreak/shared/testing';
import { diffDeviceSnapshots, serializeDeviceSnapshot, startLab, type DeviceSnapshot, type Lab } from '../src/index.ts';
import { snmp, type Session, type SnmpError, type Varbind } from '../src/snmp/net-snmp.ts';
import { decodePortList, encodePortList } from '../src/snmp/port-list.ts';

const signal = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

const oid = {
  ifAdminStatus: (port: number) => `1.3.6.1.2.1.2.2.1.7.${port}`,
  pvid: (port: number) => `1.3.6.1.2.1.17.7.1.4.5.1.1.${port}`,
  egress: (vlan: number) => `1.3.6.1.2.1.17.7.1.4.3.1.2.${vlan}`,
  untagged: (vlan: number) => `1.3.6.1.2.1.17.7.1.4.3.1.4.${vlan}`,
  rowStatus: (vlan: number) => `1.3.6.1.2.1.17.7.1.4.3.1.5.${vlan}`,
};
const { Integer, OctetString, Gauge } = snmp.ObjectType;
/** RowStatus destroy(6) (SNMPv2-TC); the typed view of net-snmp names only the values the drivers send. */
const ROW_DESTROY = 6;

describe('device snapshot', () => {
  let nats: TestServer;
  let lab: Lab;
  let credentials: Record<string, { community?: string; username?: string; password?: string }>;
  const sessions: Session[] = [];
  /** A powered-off spare: changing it disturbs no running server. */
  let spare: Host;
  let nic: { switch: string; port: number };
  let sw: Session;

  before(async () => {
    nats = await startNats();
    lab = await startLab({ natsUrl: nats.url, size: 'tiny', powerDelayMs: 50, bootDelayMs: 50, heartbeatPeriodMs: 200 });
    credentials = JSON.parse(await readFile(lab.credentialsPath, 'utf8')) as typeof credentials;
    const found = lab.inventory.hosts.find((h) => h.role === 'spare' && h.hba !== undefined);
    assert.ok(found?.nics[0], 'the tiny lab has a spare with a NIC and an HBA');
    spare = found;
    nic = found.nics[0];
    sw = manager(nic.switch);
  });

  after(async () => {
    for (const s of sessions) s.close();
    await lab?.stop();
    await nats?.stop();
  });

  // --- helpers: the devices' own protocols ---

  function manager(switchId: string): Session {
    const agent = lab.switches.agents.find((a) => a.switchId === switchId);
    const community = credentials[`switch-${switchId}`]?.community;
    assert.ok(agent && community);
    const [host = '', port] = agent.address.split(':');
    const session = snmp.createSession(host, community, { port: Number(port), version: snmp.Version2c, retries: 1, timeout: 1_000 });
    session.on('error', () => undefined);
    sessions.push(session);
    return session;
  }
  const snmpSet = (s: Session, varbinds: Varbind[]) =>
    new Promise<Varbind[]>((resolve, reject) => s.set(varbinds, (error, result) => (error ? reject(error) : resolve(result ?? []))));
  const snmpGet = (s: Session, id: string) =>
    new Promise<unknown>((resolve, reject) => s.get([id], (error, varbinds) => (error ? reject(error) : resolve(varbinds?.[0]?.value))));
  /** A VLAN's PortList with one port's bit set or cleared, read from the switch first as a manager does. */
  const withPort = async (column: 'egress' | 'untagged', vlan: number, port: number, member: boolean): Promise<Buffer> => {
    const list = (await snmpGet(sw, oid[column](vlan))) as Buffer;
    const ports = new Set(decodePortList(list));
    if (member) ports.add(port);
    else ports.delete(port);
    return encodePortList(ports, list.length);
  };

  /** PATCH of the spare's ComputerSystem over HTTPS, with its rack's basic credentials and the lab's CA. */
  async function redfishPatch(host: Host, body: unknown): Promise<number> {
    const endpoint = lab.bmc.endpoints.find((e) => e.address === host.bmc.address);
    const login = credentials[`bmc-${host.rack}`];
    assert.ok(endpoint && login);
    const url = new URL(`/redfish/v1/Systems/${host.bmc.systemId ?? host.id}`, endpoint.url);
    const payload = JSON.stringify(body);
    const ca = await readFile(lab.caBundlePath);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'PATCH',
          ca,
          headers: {
            authorization: `Basic ${Buffer.from(`${login.username}:${login.password}`).toString('base64')}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  // --- helpers: judging ---

  /** Waits until the lab differs from `baseline` by exactly `expected` (devices land changes late), then checks it. */
  async function settlesTo(baseline: DeviceSnapshot, expected: string[], what: string): Promise<void> {
    let lines: string[] = [];
    await waitFor(what, () => {
      lines = diffDeviceSnapshots(baseline, lab.deviceSnapshot());
      return JSON.stringify(lines) === JSON.stringify(expected);
    }).catch(() => undefined);
    assert.deepEqual(lines, expected, what);
  }

  /** Undone means the same bytes, not merely no diff line. */
  async function backTo(baseline: DeviceSnapshot, what: string): Promise<void> {
    await settlesTo(baseline, [], what);
    assert.equal(serializeDeviceSnapshot(lab.deviceSnapshot()), serializeDeviceSnapshot(baseline), what);
  }

  const hostLine = (field: string, change: string) => `host ${spare.id} ${field}: ${change}`;
  const portLine = (field: string, change: string) => `switch ${nic.switch} port ${nic.port} (${spare.id}) ${field}: ${change}`;

  // --- the tests ---

  test('device snapshot - an untouched lab serialises to the same bytes every time, as plain JSON', async () => {
    const first = serializeDeviceSnapshot(lab.deviceSnapshot());
    assert.equal(serializeDeviceSnapshot(lab.deviceSnapshot()), first);
    // Heartbeats, timers and SNMP reads change nothing a snapshot holds.
    await snmpGet(sw, oid.pvid(nic.port));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(serializeDeviceSnapshot(lab.deviceSnapshot()), first);
    assert.equal(serializeDeviceSnapshot(JSON.parse(first) as DeviceSnapshot), first);
    assert.deepEqual(diffDeviceSnapshots(lab.deviceSnapshot(), lab.deviceSnapshot()), []);
  });

  test('device snapshot - covers every host, switch port, VLAN of each switch, LUN and mask the lab holds', () => {
    const s = lab.deviceSnapshot();
    assert.deepEqual(Object.keys(s.hosts), lab.inventory.hosts.map((h) => h.id).sort());
    const nics = lab.inventory.hosts.flatMap((h) => h.nics.map((n) => `${n.switch}:${n.port}`)).sort();
    assert.deepEqual(Object.entries(s.switches).flatMap(([id, x]) => Object.keys(x.ports).map((p) => `${id}:${p}`)).sort(), nics);
    assert.deepEqual(Object.keys(s.arrays), lab.inventory.storageArrays.map((a) => a.id).sort());
    assert.deepEqual(Object.values(s.arrays).flatMap((a) => Object.keys(a.luns)).sort(), lab.inventory.luns.map((l) => l.id).sort());
    // Production as the inventory assigns it: each server's LUNs masked to its host's initiator, and nothing else.
    const expectedMasks = new Map<string, string[]>();
    for (const a of lab.inventory.assignments) {
      const host = lab.inventory.hosts.find((h) => h.id === (a.mode === 'bare-metal' ? a.host : a.hypervisor));
      const luns = lab.inventory.servers.find((x) => x.id === a.server)?.luns ?? [];
      if (host?.hba && luns.length > 0) expectedMasks.set(host.hba.initiator.toLowerCase(), [...(expectedMasks.get(host.hba.initiator.toLowerCase()) ?? []), ...luns].sort());
    }
    const masks = Object.values(s.arrays).flatMap((a) => Object.entries(a.masks));
    assert.deepEqual(new Map(masks), expectedMasks);
    assert.deepEqual(s.strayMasks, {});
    // Each switch's VLAN table is what its agent serves: VLAN 1 and its fabric's inventory VLANs at least.
    for (const [id, x] of Object.entries(s.switches)) {
      const fabric = lab.inventory.switches.find((w) => w.id === id)?.fabric;
      for (const v of [1, ...lab.inventory.vlans.filter((v) => v.fabric === fabric).map((v) => v.id)]) assert.ok(x.vlans[v], `${id} has VLAN ${v}`);
      const port = Object.values(x.ports)[0];
      assert.ok(port && x.vlans[port.pvid], `${id}: a port's PVID names a VLAN the switch has`);
    }
  });

  test('device snapshot - power on and off over Redfish', async () => {
    const baseline = lab.deviceSnapshot();
    const driver = await RedfishPowerDriver.fromInventory(spare.bmc, { pollIntervalMs: 20 });
    try {
      await driver.ensurePower('on', signal());
      await settlesTo(baseline, [hostLine('phase', 'off → running'), hostLine('power', 'off → on')], 'the spare powered on and booted from its (empty) disk');
      await driver.ensurePower('off', signal());
      await backTo(baseline, 'the spare powered off again');
    } finally {
      await driver.close();
    }
  });

  test('device snapshot - a reset the BMC accepted shows until it lands', async () => {
    const baseline = lab.deviceSnapshot();
    const driver = await RedfishPowerDriver.fromInventory(spare.bmc, { pollIntervalMs: 20, powerWaitMs: 0 });
    try {
      // Accepted, not landed: the driver returns without waiting, and the power delay is 50 ms.
      await driver.ensurePower('on', signal());
      const mid = diffDeviceSnapshots(baseline, lab.deviceSnapshot());
      assert.ok(mid.includes(hostLine('pending reset', 'none → On')) || mid.includes(hostLine('power', 'off → on')), mid.join('\n'));
      await driver.ensurePower('off', signal());
      await backTo(baseline, 'powered off again');
    } finally {
      await driver.close();
    }
  });

  test('device snapshot - the BMC boot override, set over Redfish and cleared again', async () => {
    const baseline = lab.deviceSnapshot();
    const driver = await RedfishPowerDriver.fromInventory(spare.bmc, { pollIntervalMs: 20 });
    try {
      await driver.setNextBootPxe(signal());
    } finally {
      await driver.close();
    }
    await settlesTo(baseline, [hostLine('boot override enabled', 'Disabled → Once'), hostLine('boot override target', 'None → Pxe')], 'next boot PXE');
    assert.equal(await redfishPatch(spare, { Boot: { BootSourceOverrideTarget: 'None' } }), 200);
    await backTo(baseline, 'override cleared');
  });

  test('device snapshot - port admin status over SNMP (oper follows)', async () => {
    const baseline = lab.deviceSnapshot();
    await snmpSet(sw, [{ oid: oid.ifAdminStatus(nic.port), type: Integer, value: 2 }]);
    await settlesTo(baseline, [portLine('admin', 'up → down'), portLine('oper', 'up → down')], 'port shut');
    await snmpSet(sw, [{ oid: oid.ifAdminStatus(nic.port), type: Integer, value: 1 }]);
    await backTo(baseline, 'port open again');
  });

  test('device snapshot - a port whose cable or far end goes down (carrier), through the world as faults do', async () => {
    const baseline = lab.deviceSnapshot();
    lab.world.setPortCarrier(nic.switch, nic.port, 'down');
    await settlesTo(baseline, [portLine('carrier', 'up → down'), portLine('oper', 'up → down')], 'carrier lost');
    lab.world.setPortCarrier(nic.switch, nic.port, 'up');
    await backTo(baseline, 'carrier back');
  });

  test('device snapshot - PVID over SNMP', async () => {
    const baseline = lab.deviceSnapshot();
    const was = baseline.switches[nic.switch]?.ports[nic.port]?.pvid;
    const vlan = lab.inventory.vlans[0]?.id;
    assert.ok(was !== undefined && vlan !== undefined && vlan !== was);
    await snmpSet(sw, [{ oid: oid.pvid(nic.port), type: Gauge, value: vlan }]);
    await settlesTo(baseline, [portLine('PVID', `${was} → ${vlan}`)], 'PVID set');
    await snmpSet(sw, [{ oid: oid.pvid(nic.port), type: Gauge, value: was }]);
    await backTo(baseline, 'PVID back');
  });

  test('device snapshot - VLAN egress and untagged membership over SNMP', async () => {
    const baseline = lab.deviceSnapshot();
    const vlan = lab.inventory.vlans.find((v) => !baseline.switches[nic.switch]?.vlans[v.id]?.egress.includes(nic.port))?.id;
    assert.ok(vlan !== undefined, 'a VLAN the spare port does not carry');
    await snmpSet(sw, [{ oid: oid.egress(vlan), type: OctetString, value: await withPort('egress', vlan, nic.port, true) }]);
    await settlesTo(baseline, [`switch ${nic.switch} VLAN ${vlan} egress: + port ${nic.port}`], 'port joined the VLAN tagged');
    await snmpSet(sw, [{ oid: oid.untagged(vlan), type: OctetString, value: await withPort('untagged', vlan, nic.port, true) }]);
    await settlesTo(
      baseline,
      [`switch ${nic.switch} VLAN ${vlan} egress: + port ${nic.port}`, `switch ${nic.switch} VLAN ${vlan} untagged: + port ${nic.port}`],
      'and untagged',
    );
    await snmpSet(sw, [{ oid: oid.untagged(vlan), type: OctetString, value: await withPort('untagged', vlan, nic.port, false) }]);
    await snmpSet(sw, [{ oid: oid.egress(vlan), type: OctetString, value: await withPort('egress', vlan, nic.port, false) }]);
    await backTo(baseline, 'port left the VLAN');
    // The other way round: a port leaving a VLAN it carried.
    const carried = Number(Object.entries(baseline.switches[nic.switch]?.vlans ?? {}).find(([, v]) => v.egress.includes(nic.port))?.[0]);
    assert.ok(carried > 0);
    await snmpSet(sw, [{ oid: oid.egress(carried), type: OctetString, value: await withPort('egress', carried, nic.port, false) }]);
    const lines = diffDeviceSnapshots(baseline, lab.deviceSnapshot());
    assert.ok(lines.includes(`switch ${nic.switch} VLAN ${carried} egress: - port ${nic.port}`), lines.join('\n'));
    for (const column of ['egress', 'untagged'] as const) {
      if (!baseline.switches[nic.switch]?.vlans[carried]?.[column].includes(nic.port)) continue;
      await snmpSet(sw, [{ oid: oid[column](carried), type: OctetString, value: await withPort(column, carried, nic.port, true) }]);
    }
    await backTo(baseline, 'port back on its VLAN');
  });

  test('device snapshot - a VLAN created over SNMP stays in the switch database: the lab, like the SNMP driver, destroys none', async () => {
    const baseline = lab.deviceSnapshot();
    const vlan = 3999;
    assert.equal(baseline.switches[nic.switch]?.vlans[vlan], undefined);
    await snmpSet(sw, [{ oid: oid.rowStatus(vlan), type: Integer, value: snmp.RowStatus.createAndGo }]);
    const created = [`switch ${nic.switch} VLAN ${vlan}: + VLAN${vlan} (egress none; untagged none)`];
    await settlesTo(baseline, created, 'VLAN created');
    await assert.rejects(snmpSet(sw, [{ oid: oid.rowStatus(vlan), type: Integer, value: ROW_DESTROY }]), (error: SnmpError) => error.status === snmp.ErrorStatus.InconsistentValue);
    assert.deepEqual(diffDeviceSnapshots(baseline, lab.deviceSnapshot()), created, 'still there: a drill that creates a VLAN leaves it behind');
  });

  test('device snapshot - LUN grant and revoke through the SAN REST driver', async () => {
    const baseline = lab.deviceSnapshot();
    const initiator = spare.hba?.initiator.toLowerCase() ?? '';
    const lun = lab.inventory.luns[0];
    assert.ok(lun);
    const array = lab.inventory.storageArrays.find((a) => a.id === lun.array);
    assert.ok(array);
    const san = await SanRestStorageDriver.fromInventory(array, { pollIntervalMs: 20 });
    await san.grant(lun.id, initiator, signal());
    await settlesTo(baseline, [`array ${array.id} mask ${initiator}: + ${lun.id}`], 'LUN granted');
    await san.revoke(lun.id, initiator, signal());
    await backTo(baseline, 'LUN revoked');
  });

  test('device snapshot - a clone made, granted and deleted through the SAN REST driver', async () => {
    const baseline = lab.deviceSnapshot();
    const initiator = spare.hba?.initiator.toLowerCase() ?? '';
    const lun = lab.inventory.luns[1];
    assert.ok(lun);
    const array = lab.inventory.storageArrays.find((a) => a.id === lun.array);
    assert.ok(array);
    const san = await SanRestStorageDriver.fromInventory(array, { pollIntervalMs: 20 });
    const clone = `${lun.id}-d-snapshot-test`;
    await san.clone(lun.id, clone, signal());
    const made = `array ${array.id} LUN ${clone}: + clone of ${lun.id}, ${lun.sizeGiB} GiB`;
    await settlesTo(baseline, [made], 'clone made');
    await san.grant(clone, initiator, signal());
    await settlesTo(baseline, [made, `array ${array.id} mask ${initiator}: + ${clone}`], 'clone granted');
    // Deleting a clone revokes it everywhere too.
    await san.deleteClone(clone, signal());
    await backTo(baseline, 'clone deleted');
  });

  test('device snapshot - a VM defined, started, stopped and undefined through the lab hypervisor driver', async () => {
    const hv = lab.inventory.hosts.find((h) => h.role === 'hypervisor' && lab.hypervisors.hypervisors.running(h.id));
    assert.ok(hv, 'the tiny lab has a standing hypervisor');
    const vlan = [1, ...lab.inventory.vlans.map((v) => v.id)].find((v) => lab.world.hostOnVlan(hv.id, v));
    assert.ok(vlan !== undefined, 'a VLAN the hypervisor carries, so the guest boots');
    const name = 'snapshot-vm';
    const baseline = lab.deviceSnapshot();
    const vm = LabHypervisorVmDriver.fromInventory(hv, { pollIntervalMs: 20 });
    await vm.define({ name, cpus: 1, memoryGiB: 1, image: 'rhel9-x86_64', mac: '52:54:00:aa:bb:01', vlans: [vlan], luns: [] }, signal());
    await settlesTo(baseline, [`hypervisor ${hv.id} domain ${name}: + defined, stopped (guest off)`], 'VM defined');
    const defined = lab.deviceSnapshot();
    await vm.start(name, signal());
    await settlesTo(baseline, [`hypervisor ${hv.id} domain ${name}: + defined, running (guest running)`], 'VM started and booted');
    await settlesTo(defined, [`hypervisor ${hv.id} domain ${name} phase: off → running`, `hypervisor ${hv.id} domain ${name} state: stopped → running`], 'against the defined VM');
    await vm.stop(name, signal());
    await backTo(defined, 'VM stopped: back to merely defined');
    await vm.undefine(name, signal());
    await backTo(baseline, 'VM undefined');
  });
});
