import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test, type TestContext } from 'node:test';
import { Inventory, resolveCredentials } from '@firebreak/shared';
import { LabRecorder, World, startSwitchSimulator } from '@firebreak/lab';
import { ConcurrentWriteError, DriverError } from '../src/driver-error.ts';
import type { PortSettings } from '../src/driver.ts';
import { columns, indexIn } from '../src/net/oids.ts';
import { SnmpClient } from '../src/net/snmp-client.ts';
import { SnmpNetDriver } from '../src/net/snmp.driver.ts';
import { freeUdpPort } from '@firebreak/shared/testing';

const COMMUNITY = 'lab-sw1-Driver-Rw';
const env = { LAB_SNMP_SW1: JSON.stringify({ community: COMMUNITY }) };
const MAC = { h1: '52:54:00:00:01:01', h2: '52:54:00:00:01:02', h3: '52:54:00:00:01:03', h4: '52:54:00:00:01:04' } as const;
const SETS = ['set-pvid', 'set-egress', 'set-untagged', 'set-admin', 'create-vlan'] as const;

/** One switch: h1 and h3 on VLAN 10, h2 on VLAN 20, h4 unassigned (VLAN 1), on ports 1-4. */
function labInventory(port: number): Inventory {
  const host = (id: keyof typeof MAC, n: number) => ({
    id,
    site: 's1',
    rack: 'r1',
    arch: 'x86_64',
    cpus: 8,
    memoryGiB: 32,
    nics: [{ mac: MAC[id], switch: 'sw1', port: n }],
    bmc: { address: '127.0.0.1:8443', credentialsRef: 'env:LAB_BMC' },
    role: 'production',
  });
  const server = (id: string, vlan: number) => ({ id, image: 'rhel9', vlans: [vlan], cpus: 4, memoryGiB: 16, arch: 'x86_64', priority: 1 });
  return Inventory.parse({
    version: 1,
    racks: [{ id: 'r1', site: 's1' }],
    switches: [{ id: 'sw1', fabric: 'f1', address: `127.0.0.1:${port}`, credentialsRef: 'env:LAB_SNMP_SW1' }],
    vlans: [
      { id: 10, name: 'prod', fabric: 'f1' },
      { id: 20, name: 'backup', fabric: 'f1' },
    ],
    hosts: [host('h1', 1), host('h2', 2), host('h3', 3), host('h4', 4)],
    servers: [server('web', 10), server('db', 20), server('app', 10)],
    assignments: [
      { server: 'web', mode: 'bare-metal', host: 'h1' },
      { server: 'db', mode: 'bare-metal', host: 'h2' },
      { server: 'app', mode: 'bare-metal', host: 'h3' },
    ],
  });
}

/** A fresh lab switch and a driver for it, both stopped when the test ends. */
async function lab(t: TestContext, driverEnv: NodeJS.ProcessEnv = env) {
  const world = new World(labInventory(await freeUdpPort()), new LabRecorder());
  const sim = await startSwitchSimulator(world, { env });
  const [sw] = world.inventory.switches;
  assert.ok(sw);
  const driver = await SnmpNetDriver.fromInventory(sw, { env: driverEnv, timeoutMs: 300, retries: 0, pollIntervalMs: 20 });
  t.after(async () => {
    await driver.close();
    await sim.stop();
  });
  const sets = () => SETS.reduce((sum, action) => sum + world.recorder.count('switch', action), 0);
  const community = (await resolveCredentials(sw.credentialsRef, env)).community;
  assert.ok(community);
  // A second manager on the switch, for raw reads the driver under test has no part in.
  const raw = new SnmpClient({ switchId: sw.id, address: sw.address, community, credentialsRef: sw.credentialsRef, timeoutMs: 1_000 });
  t.after(() => raw.close());
  return { world, driver, sets, raw };
}

type Dumped = Map<string, string>;

/** Every port's ifAdminStatus and PVID and every VLAN row's PortLists, as the switch serves them over SNMP, by column and index: values as hex octets. */
async function dumpSwitch(raw: SnmpClient): Promise<Dumped> {
  const dump: Dumped = new Map();
  for (const column of ['ifAdminStatus', 'dot1qPvid', 'dot1qVlanStaticEgressPorts', 'dot1qVlanStaticUntaggedPorts'] as const) {
    for (const vb of await raw.walk(columns[column], signal())) {
      dump.set(`${column}.${indexIn(vb.oid, column)}`, Buffer.isBuffer(vb.value) ? vb.value.toString('hex') : String(vb.value));
    }
  }
  return dump;
}

/** How `after` differs from `before`; rows `after` has beyond `before` count only when they hold a port (an empty VLAN row a drill created is not a port's state). */
function dumpDiff(before: Dumped, after: Dumped): string[] {
  const diff: string[] = [];
  for (const [key, value] of before) if (after.get(key) !== value) diff.push(`${key}: ${value} before, ${after.get(key) ?? 'absent'} after`);
  for (const [key, value] of after) if (!before.has(key) && /[^0]/.test(value)) diff.push(`${key}: new, ${value}`);
  return diff;
}

const signal = (): AbortSignal => AbortSignal.timeout(5_000);
const port = (n: number) => ({ switch: 'sw1', port: n });

describe('net-snmp driver against the lab switch', () => {
  test('net-snmp driver - read reports admin, oper, PVID and the VLANs a port carries', async (t) => {
    const { driver, world } = await lab(t);
    assert.deepEqual(await driver.read(port(1), signal()), { admin: 'up', oper: 'up', pvid: 10, vlans: [10], untagged: [10] });
    assert.deepEqual(await driver.read(port(4), signal()), { admin: 'up', oper: 'up', pvid: 1, vlans: [1], untagged: [1] });
    world.setPortCarrier('sw1', 2, 'down');
    assert.deepEqual(await driver.read(port(2), signal()), { admin: 'up', oper: 'down', pvid: 20, vlans: [20], untagged: [20] });
  });

  test('net-snmp driver - an access VLAN moves a host to the other VLAN, and a repeat sends no SET', async (t) => {
    const { driver, world, sets } = await lab(t);
    assert.equal(world.reachable(MAC.h1, MAC.h2), false, 'h1 (VLAN 10) and h2 (VLAN 20) start apart');

    const result = await driver.setAccessVlan(port(2), 10, signal());
    assert.equal(result.done, true, result.message);
    assert.equal(world.reachable(MAC.h1, MAC.h2), true);
    assert.deepEqual(await driver.read(port(2), signal()), { admin: 'up', oper: 'up', pvid: 10, vlans: [10], untagged: [10] });
    assert.deepEqual([...world.port('sw1', 2).egress], [10], 'left VLAN 20 entirely');
    assert.deepEqual([...world.port('sw1', 1).egress], [10], 'the other ports of VLAN 10 kept it (read-modify-write of the PortList)');
    assert.equal(world.recorder.count('switch', 'set-pvid', 'h2'), 1);

    const before = sets();
    const again = await driver.setAccessVlan(port(2), 10, signal());
    assert.deepEqual(again, {
      done: true,
      message: 'access VLAN 10 on switch sw1 port 2: already so',
      // What the read that found it so saw, for the executor to report without reading again.
      observed: { admin: 'up', oper: 'up', pvid: 10, vlans: [10], untagged: [10] },
    });
    assert.equal(sets(), before, 'no SET for a state that already holds');

    assert.equal((await driver.setAccessVlan(port(2), 20, signal())).done, true);
    assert.equal(world.reachable(MAC.h1, MAC.h2), false, 'and back');
    assert.equal(world.recorder.count('switch', 'set-pvid', 'h2'), 2);
  });

  test('net-snmp driver - an access VLAN the switch does not know yet is created in the same SET', async (t) => {
    const { driver, world } = await lab(t);
    assert.equal((await driver.setAccessVlan(port(1), 77, signal())).done, true);
    assert.equal((await driver.setAccessVlan(port(4), 77, signal())).done, true);
    assert.equal(world.recorder.count('switch', 'create-vlan'), 1, 'created once, joined by the second port');
    assert.equal(world.reachable(MAC.h1, MAC.h4), true);
    assert.equal(world.reachable(MAC.h1, MAC.h3), false, 'h1 left VLAN 10');
    assert.deepEqual(await driver.read(port(1), signal()), { admin: 'up', oper: 'up', pvid: 77, vlans: [77], untagged: [77] });
  });

  test('net-snmp driver - a trunk carries several VLANs tagged and only the native one untagged', async (t) => {
    const { driver, world, sets } = await lab(t);
    assert.equal(world.reachable(MAC.h3, MAC.h2), false);

    assert.equal((await driver.setTrunk(port(3), [10, 20, 30], 10, signal())).done, true);
    assert.deepEqual(await driver.read(port(3), signal()), { admin: 'up', oper: 'up', pvid: 10, vlans: [10, 20, 30], untagged: [10] });
    assert.equal(world.reachable(MAC.h3, MAC.h1), true, 'VLAN 10');
    assert.equal(world.reachable(MAC.h3, MAC.h2), true, 'VLAN 20');
    assert.deepEqual([...world.port('sw1', 2).egress], [20], 'h2 keeps VLAN 20 alone');

    const before = sets();
    assert.equal((await driver.setTrunk(port(3), [30, 20, 10], 10, signal())).done, true);
    assert.equal(sets(), before, 'the same trunk in another order sends nothing');

    // Native dropped and VLAN 10 removed: untagged nothing, PVID left alone.
    assert.equal((await driver.setTrunk(port(3), [20, 30], undefined, signal())).done, true);
    assert.deepEqual(await driver.read(port(3), signal()), { admin: 'up', oper: 'up', pvid: 10, vlans: [20, 30], untagged: [] });
    assert.equal(world.reachable(MAC.h3, MAC.h1), false);
    assert.equal(world.reachable(MAC.h3, MAC.h2), true);
  });

  test('net-snmp driver - shut takes the link down and cuts the host off; no shut brings it back; repeats send nothing', async (t) => {
    const { driver, world } = await lab(t);
    assert.equal(world.reachable(MAC.h1, MAC.h3), true);

    const shut = await driver.shutPort(port(1), signal());
    assert.equal(shut.done, true, shut.message);
    assert.equal(world.reachable(MAC.h1, MAC.h3), false);
    assert.deepEqual(await driver.read(port(1), signal()), { admin: 'down', oper: 'down', pvid: 10, vlans: [10], untagged: [10] });
    assert.equal((await driver.shutPort(port(1), signal())).message, 'shut on switch sw1 port 1: already so');
    assert.equal(world.recorder.count('switch', 'set-admin', 'h1'), 1);

    assert.equal((await driver.noShutPort(port(1), signal())).done, true);
    assert.equal(world.reachable(MAC.h1, MAC.h3), true);
    assert.equal((await driver.read(port(1), signal())).oper, 'up');
    assert.equal((await driver.openPort(port(1), signal())).done, true);
    assert.equal(world.recorder.count('switch', 'set-admin', 'h1'), 2);
  });

  test('net-snmp driver - no shut on a port without carrier is done (admin up) and reports the link still down', async (t) => {
    const { driver, world } = await lab(t);
    world.setPortCarrier('sw1', 2, 'down');
    await driver.shutPort(port(2), signal());
    const result = await driver.openPort(port(2), signal());
    assert.equal(result.done, true);
    assert.deepEqual(await driver.read(port(2), signal()).then((s) => [s.admin, s.oper]), ['up', 'down']);
  });

  test('net-snmp driver - concurrent changes to ports of one VLAN do not overwrite each other’s PortList', async (t) => {
    const { driver, world } = await lab(t);
    const results = await Promise.all([1, 2, 3, 4].map((n) => driver.setAccessVlan(port(n), 40, signal())));
    assert.ok(results.every((r) => r.done), results.map((r) => r.message).join('; '));
    for (const n of [1, 2, 3, 4]) assert.deepEqual([...world.port('sw1', n).egress], [40], `port ${n}`);
    assert.equal(world.reachable(MAC.h1, MAC.h4), true);
  });

  test('net-snmp driver - a PortList someone else writes between our SET and its read-back ends the step at once with what they changed', async (t) => {
    const cases = [
      {
        name: 'their own version of the list: they read before our SET, added their port and wrote it after',
        overwrite: (world: World) => {
          world.port('sw1', 4).egress.delete(10);
          world.port('sw1', 4).untagged.delete(10);
          world.port('sw1', 2).egress.add(10);
        },
        reason: /VLAN 10's egress list lost port\(s\) \[4\] and gained port\(s\) \[2\] since our SET/,
      },
      {
        name: 'the list as it was before our SET, while the PVID of the same SET is ours',
        overwrite: (world: World) => {
          world.port('sw1', 4).egress.delete(10);
          world.port('sw1', 4).untagged.delete(10);
        },
        reason: /VLAN 10's egress list is back as before our SET \(lost port\(s\) \[4\]\)/,
      },
    ];
    for (const c of cases) {
      const { driver, world } = await lab(t);
      const record = world.recorder.record.bind(world.recorder);
      // Lands in the world right after our SET's PVID, before any read-back.
      world.recorder.record = (source, action, options) => {
        record(source, action, options);
        if (source === 'switch' && action === 'set-pvid' && options?.detail?.['port'] === 4) c.overwrite(world);
      };
      const started = Date.now();
      const err = await driver.setAccessVlan(port(4), 10, signal()).then(
        (r) => assert.fail(`${c.name}: reported ${JSON.stringify(r)}`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ConcurrentWriteError, `${c.name}: ${String(err)}`);
      assert.equal(err.retryable, true);
      assert.match(err.message, /access VLAN 10 on switch sw1 port 4: another manager wrote the switch between our SET and its read-back/, c.name);
      assert.match(err.message, c.reason, c.name);
      assert.ok(Date.now() - started < 1_000, `${c.name}: ended after ${Date.now() - started} ms, not after the settle wait`);
    }
  });

  test('net-snmp driver - restore gives a port back byte for byte after a drill trunked it onto new VLANs: shut, access, trunk, and a PVID it does not carry', async (t) => {
    const cases: { name: string; port: number; before: (driver: SnmpNetDriver) => Promise<unknown> }[] = [
      { name: 'shut on its access VLAN 10', port: 1, before: (driver) => driver.shutPort(port(1), signal()) },
      { name: 'access VLAN 20', port: 2, before: () => Promise.resolve() },
      { name: 'trunk [10, 20, 30] native 20', port: 3, before: (driver) => driver.setTrunk(port(3), [10, 20, 30], 20, signal()) },
      {
        name: 'trunk [20, 30] with PVID 10 it does not carry',
        port: 3,
        before: async (driver) => {
          await driver.setTrunk(port(3), [10, 20, 30], 10, signal());
          await driver.setTrunk(port(3), [20, 30], undefined, signal());
        },
      },
    ];
    for (const c of cases) {
      const { driver, world, sets, raw } = await lab(t);
      await c.before(driver);
      const read = await driver.read(port(c.port), signal());
      const settings: PortSettings = { admin: read.admin, pvid: read.pvid, vlans: read.vlans, untagged: read.untagged };
      const dumped = await dumpSwitch(raw);
      // What a drill does to a borrowed host's port: up, and on drill VLANs the switch did not have.
      assert.equal((await driver.setTrunk(port(c.port), [2010, 2020], 2010, signal())).done, true, c.name);
      assert.equal((await driver.openPort(port(c.port), signal())).done, true, c.name);
      assert.notDeepEqual(await driver.read(port(c.port), signal()), read, `${c.name}: the drill changed the port`);
      assert.ok(dumpDiff(dumped, await dumpSwitch(raw)).some((d) => d.startsWith('dot1qVlanStaticEgressPorts.2010: new')), `${c.name}: the dump sees the drill's VLANs`);

      const restored = await driver.restorePort(port(c.port), settings, signal());
      assert.equal(restored.done, true, `${c.name}: ${restored.message}`);
      assert.match(restored.message, new RegExp(`restore admin ${read.admin}, PVID ${read.pvid}, VLANs \\[${read.vlans.join(', ')}\\] untagged \\[${read.untagged.join(', ')}\\] on switch sw1 port ${c.port}: set`), c.name);
      assert.deepEqual(restored.observed, read, c.name);
      assert.deepEqual(await driver.read(port(c.port), signal()), read, c.name);
      assert.deepEqual(dumpDiff(dumped, await dumpSwitch(raw)), [], `${c.name}: the switch over SNMP, every port and VLAN row`);
      assert.deepEqual(world.port('sw1', c.port).egress, new Set(read.vlans), c.name);

      const before = sets();
      const again = await driver.restorePort(port(c.port), settings, signal());
      assert.match(again.message, /: already so$/, c.name);
      assert.equal(sets(), before, `${c.name}: a repeated restore sends no SET`);
    }
  });

  test('net-snmp driver - restore onto a PVID whose VLAN the switch lacks creates the VLAN in the same SET', async (t) => {
    const { driver, world } = await lab(t);
    const restored = await driver.restorePort(port(4), { admin: 'up', pvid: 77, vlans: [20], untagged: [] }, signal());
    assert.equal(restored.done, true, restored.message);
    assert.equal(world.recorder.count('switch', 'create-vlan'), 1);
    assert.deepEqual(await driver.read(port(4), signal()), { admin: 'up', oper: 'up', pvid: 77, vlans: [20], untagged: [] });
  });

  test('net-snmp driver - a restore untagged on a VLAN it would not carry is a permanent error naming port and VLANs, and sends nothing', async (t) => {
    const { driver, sets } = await lab(t);
    await assert.rejects(driver.restorePort(port(1), { admin: 'up', pvid: 10, vlans: [10], untagged: [10, 30] }, signal()), (err: unknown) => {
      assert.ok(err instanceof DriverError, String(err));
      assert.equal(err.retryable, false);
      assert.match(err.message, /restore admin up, PVID 10, VLANs \[10\] untagged \[10, 30\] on switch sw1 port 1: untagged on VLAN\(s\) \[30\] the port would not carry/);
      return true;
    });
    assert.equal(sets(), 0);
  });

  test('net-snmp driver - a port the switch does not have, another switch’s port and a bad VLAN are permanent errors', async (t) => {
    const { driver, sets } = await lab(t);
    const permanent = (pattern: RegExp) => (err: unknown) => {
      assert.ok(err instanceof DriverError, String(err));
      assert.equal(err.retryable, false);
      assert.match(err.message, pattern);
      return true;
    };
    await assert.rejects(driver.setAccessVlan(port(9), 10, signal()), permanent(/switch sw1 .*no such object 1\.3\.6\.1\.2\.1\.2\.2\.1\.7\.9/));
    await assert.rejects(driver.read({ switch: 'sw2', port: 1 }, signal()), permanent(/switch sw2 port 1 asked of the driver for switch sw1/));
    await assert.rejects(driver.setAccessVlan(port(1), 4095, signal()), permanent(/VLAN 4095 is outside 1-4094/));
    await assert.rejects(driver.setTrunk(port(1), [], undefined, signal()), permanent(/names no VLANs/));
    assert.equal(sets(), 0);
  });

  test('net-snmp driver - a wrong community is a retryable timeout naming the credentials reference, never the community', async (t) => {
    const wrong = 'Not-The-Community-42';
    const { driver, world } = await lab(t, { LAB_SNMP_SW1: JSON.stringify({ community: wrong }) });
    const started = Date.now();
    const err = await driver.shutPort(port(1), signal()).then(
      () => assert.fail('a refused community must not succeed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DriverError);
    assert.equal(err.retryable, true);
    assert.equal(err.code, 'TIMEOUT');
    assert.match(err.message, /snmp get on switch sw1 at udp 127\.0\.0\.1:\d+: no answer within 300 ms .*refuses the community of env:LAB_SNMP_SW1/);
    assert.ok(Date.now() - started < 2_000, 'bounded by the request timeout');
    const everything = `${inspect(err, { depth: 5 })} ${JSON.stringify(err)} ${String((err.cause as Error | undefined)?.stack)}`;
    for (const secret of [wrong, COMMUNITY]) assert.ok(!everything.includes(secret), `no community in ${everything}`);
    assert.equal(world.port('sw1', 1).admin, 'up');
    assert.ok(world.recorder.count('switch', 'refused') >= 1, 'the switch saw the request and refused it');
  });

  test('net-snmp driver - validate needs a community but sends nothing; an aborted signal stops a call', async (t) => {
    const { driver, world } = await lab(t);
    await driver.validate();
    const [sw] = world.inventory.switches;
    assert.ok(sw);
    const noCommunity = await SnmpNetDriver.fromInventory(sw, { env: { LAB_SNMP_SW1: 'admin:secret-pass' } });
    await assert.rejects(noCommunity.validate(), /credentials env:LAB_SNMP_SW1 of switch sw1 have no SNMP community/);
    assert.equal(world.recorder.count('switch', 'get'), 0);

    await assert.rejects(driver.read(port(1), AbortSignal.abort()), (err: unknown) => err instanceof DriverError && /aborted by the caller/.test(err.message));
  });
});
