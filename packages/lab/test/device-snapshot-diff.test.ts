import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffDeviceSnapshots, serializeDeviceSnapshot, type DeviceSnapshot, type HostSnapshot } from '../src/index.ts';

const host = (over: Partial<HostSnapshot> = {}): HostSnapshot => ({
  power: 'off',
  pendingReset: null,
  phase: 'off',
  bootOverride: { target: 'None', enabled: 'Disabled' },
  server: null,
  image: null,
  drill: false,
  workload: null,
  bootError: null,
  health: 'OK',
  faults: { isolated: false, bmcReachable: true, bmcExtraLatencyMs: 0, bmcFailNext: 0 },
  ...over,
});

const XML = '<domain>\n  <name>db1</name>\n  <memory unit="KiB">1048576</memory>\n</domain>';

function sample(): DeviceSnapshot {
  return {
    hosts: { 'r1-h01': host({ power: 'on', phase: 'running', server: 'db1', image: 'rhel9' }), 'r1-h04': host() },
    switches: {
      'r1-tor': {
        ports: {
          '1': { host: 'r1-h01', admin: 'up', oper: 'up', carrier: 'up', pvid: 101 },
          '7': { host: 'r1-h04', admin: 'up', oper: 'up', carrier: 'up', pvid: 1 },
          '10': { host: null, admin: 'up', oper: 'up', carrier: 'up', pvid: 1 },
        },
        vlans: {
          '1': { name: 'VLAN0001', egress: [7, 10], untagged: [7, 10] },
          '101': { name: 'site1-db', egress: [1], untagged: [1] },
        },
        faults: { extraLatencyMs: 0, jitterMs: 0 },
      },
    },
    arrays: {
      san1: {
        luns: { 'lun-db1': { sizeGiB: 100, cloneOf: null } },
        masks: { '50:01:43:80:12:34:56:01': ['lun-db1'] },
      },
    },
    strayMasks: {},
    hypervisors: { 'r2-h08': { db1: { state: 'running', phase: 'running', problems: [], xml: XML } } },
  };
}

/** A deep copy to change: structuredClone keeps it a plain snapshot. */
const changed = (edit: (s: DeviceSnapshot) => void): DeviceSnapshot => {
  const s = structuredClone(sample());
  edit(s);
  return s;
};

test('device snapshot diff - equal snapshots give no line', () => {
  assert.deepEqual(diffDeviceSnapshots(sample(), sample()), []);
});

test('device snapshot diff - one line per difference, naming the device and the setting', () => {
  const after = changed((s) => {
    const h4 = s.hosts['r1-h04'];
    const tor = s.switches['r1-tor'];
    const san = s.arrays['san1'];
    assert.ok(h4 && tor && san && tor.ports['7'] && tor.vlans['1']);
    h4.power = 'on';
    h4.bootOverride.target = 'Pxe';
    h4.bootError = 'cannot see LUN x; not on VLAN 2101';
    tor.ports['7'].pvid = 2101;
    tor.vlans['1'].egress = [10];
    tor.vlans['2101'] = { name: 'VLAN2101', egress: [7], untagged: [7] };
    san.luns['lun-db1-d-x'] = { sizeGiB: 100, cloneOf: 'lun-db1' };
    san.masks['21:00:00:24:ff:00:00:03'] = ['lun-db1-d-x'];
    s.strayMasks['iqn.2025-01.lab:h9'] = ['ghost'];
    delete s.hypervisors['r2-h08'];
  });
  assert.deepEqual(diffDeviceSnapshots(sample(), after), [
    'array san1 LUN lun-db1-d-x: + clone of lun-db1, 100 GiB',
    'array san1 mask 21:00:00:24:ff:00:00:03: + lun-db1-d-x',
    'host r1-h04 boot error: none → "cannot see LUN x; not on VLAN 2101"',
    'host r1-h04 boot override target: None → Pxe',
    'host r1-h04 power: off → on',
    'hypervisor r2-h08 domain db1: - defined, running (guest running)',
    'mask iqn.2025-01.lab:h9 of LUNs no array serves: + ghost',
    'switch r1-tor port 7 (r1-h04) PVID: 1 → 2101',
    'switch r1-tor VLAN 1 egress: - port 7',
    'switch r1-tor VLAN 2101: + VLAN2101 (egress 7; untagged 7)',
  ]);
  // And the way back says the opposite.
  assert.deepEqual(diffDeviceSnapshots(after, sample()), [
    'array san1 LUN lun-db1-d-x: - clone of lun-db1, 100 GiB',
    'array san1 mask 21:00:00:24:ff:00:00:03: - lun-db1-d-x',
    'host r1-h04 boot error: "cannot see LUN x; not on VLAN 2101" → none',
    'host r1-h04 boot override target: Pxe → None',
    'host r1-h04 power: on → off',
    'hypervisor r2-h08 domain db1: + defined, running (guest running)',
    'mask iqn.2025-01.lab:h9 of LUNs no array serves: - ghost',
    'switch r1-tor port 7 (r1-h04) PVID: 2101 → 1',
    'switch r1-tor VLAN 1 egress: + port 7',
    'switch r1-tor VLAN 2101: - VLAN2101 (egress 7; untagged 7)',
  ]);
});

test('device snapshot diff - a changed VM definition shows its first differing line, not the whole XML', () => {
  const after = changed((s) => {
    const d = s.hypervisors['r2-h08']?.['db1'];
    assert.ok(d);
    d.xml = d.xml.replace('1048576', '2097152');
  });
  assert.deepEqual(diffDeviceSnapshots(sample(), after), [
    'hypervisor r2-h08 domain db1 XML: differs from line 3: "<memory unit=\\"KiB\\">1048576</memory>" → "<memory unit=\\"KiB\\">2097152</memory>"',
  ]);
});

test('device snapshot diff - ports sort by number, and a port with no host is named without one', () => {
  const after = changed((s) => {
    const ports = s.switches['r1-tor']?.ports;
    assert.ok(ports?.['10'] && ports['7']);
    ports['10'].admin = 'down';
    ports['7'].admin = 'down';
  });
  assert.deepEqual(diffDeviceSnapshots(sample(), after), ['switch r1-tor port 7 (r1-h04) admin: up → down', 'switch r1-tor port 10 admin: up → down']);
});

test('device snapshot diff - no line exactly when the bytes are equal, even for an order-only change', () => {
  const cases: ((s: DeviceSnapshot) => void)[] = [
    () => undefined,
    (s) => void (s.switches['r1-tor']?.vlans['1']?.egress.reverse()),
    (s) => void s.arrays['san1']?.masks['50:01:43:80:12:34:56:01']?.push('lun-db1'),
    (s) => void (s.hypervisors['r2-h08']?.['db1']?.problems.push('hypervisor r2-h08 cannot see LUN x')),
    (s) => void ((s.hosts['r1-h01'] as HostSnapshot).faults.bmcFailNext = 2),
    (s) => void delete s.hosts['r1-h04'],
    (s) => void (s.arrays['san1'] = { luns: {}, masks: {} }),
  ];
  for (const edit of cases) {
    const after = changed(edit);
    const lines = diffDeviceSnapshots(sample(), after);
    const sameBytes = serializeDeviceSnapshot(sample()) === serializeDeviceSnapshot(after);
    assert.equal(lines.length === 0, sameBytes, `${edit.toString()}: ${lines.join(' | ')}`);
  }
  const reordered = changed((s) => void (s.switches['r1-tor']?.vlans['1']?.egress.reverse()));
  assert.deepEqual(diffDeviceSnapshots(sample(), reordered), ['switch r1-tor VLAN 1 egress: [7, 10] → [10, 7]']);
});

test('device snapshot diff - serialising does not depend on the order keys were set in', () => {
  const s = sample();
  const backwards = JSON.parse(JSON.stringify(s), (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v,
  ) as DeviceSnapshot;
  assert.notEqual(JSON.stringify(backwards), JSON.stringify(s));
  assert.equal(serializeDeviceSnapshot(backwards), serializeDeviceSnapshot(s));
});

test('device snapshot diff - injected faults and a pending reset read as such', () => {
  const after = changed((s) => {
    const h1 = s.hosts['r1-h01'];
    const tor = s.switches['r1-tor'];
    assert.ok(h1 && tor);
    h1.faults.bmcReachable = false;
    h1.pendingReset = 'ForceOff';
    tor.faults.extraLatencyMs = 300;
  });
  assert.deepEqual(diffDeviceSnapshots(sample(), after), [
    'host r1-h01 fault BMC reachable: true → false',
    'host r1-h01 pending reset: none → ForceOff',
    'switch r1-tor fault extra latency ms: 0 → 300',
  ]);
});
