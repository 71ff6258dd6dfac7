import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Inventory, crossCheck, parseInventory, type InventoryFormat, type InventoryInput } from '@firebreak/shared';
import {
  formatInventory,
  formatTopologySummary,
  generateTopology,
  summarizeTopology,
  writeInventoryFile,
  type TopologySize,
  type TopologySizeName,
} from '../src/topology/index.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fb-topology-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Schema and cross-checks without a file: for loops over many seeds. */
function validate(inv: InventoryInput): Inventory {
  const parsed = Inventory.parse(inv);
  assert.deepEqual(crossCheck(parsed), []);
  return parsed;
}

const isCapacity = (h: Inventory['hosts'][number]): boolean => h.role === 'spare' || h.role === 'repurposable';

/** The kinds a recovery needs, checked on any generated inventory. */
function assertEveryKind(inv: Inventory): void {
  const roles = new Set(inv.hosts.map((h) => h.role));
  for (const role of ['production', 'spare', 'repurposable'] as const) assert.ok(roles.has(role), `no ${role} host`);
  const production = inv.hosts.filter((h) => h.role === 'production');
  assert.equal(inv.servers.length, production.length, 'one server per production host');
  assert.deepEqual(new Set(inv.assignments.map((a) => (a.mode === 'bare-metal' ? a.host : ''))), new Set(production.map((h) => h.id)));
  assert.ok(inv.hosts.filter((h) => h.role === 'spare').every((h) => h.workload === undefined));
  const priorities = new Set(inv.hosts.filter((h) => h.role === 'repurposable').map((h) => h.workload?.priority));
  assert.ok(!priorities.has(undefined), 'every repurposable host runs a workload');
  assert.ok(priorities.size >= 2, 'repurposable work at two priorities or more');
  for (const p of priorities) assert.ok(p !== undefined && p >= 5 && p <= 9);
  assert.deepEqual(new Set(inv.hosts.map((h) => h.arch)), new Set(['x86_64', 'aarch64']));
  for (const arch of ['x86_64', 'aarch64'] as const) {
    assert.ok(production.some((h) => h.arch === arch), `no ${arch} production host`);
    assert.ok(inv.hosts.some((h) => isCapacity(h) && h.arch === arch && h.hypervisorCapable), `no hypervisor-capable ${arch} spare/repurposable`);
    // Losing any one rack leaves capacity of this architecture in another.
    const racksWithCapacity = new Set(inv.hosts.filter((h) => isCapacity(h) && h.arch === arch).map((h) => h.rack));
    assert.ok(racksWithCapacity.size >= 2, `${arch} spare/repurposable capacity in ${racksWithCapacity.size} rack(s)`);
  }
  const initiators = inv.hosts.map((h) => h.hba?.initiator ?? '');
  assert.ok(initiators.some((i) => i.startsWith('iqn.')), 'no iSCSI HBA');
  assert.ok(initiators.some((i) => /^[0-9a-f]{2}(:[0-9a-f]{2}){7}$/.test(i)), 'no FC HBA');
  assert.ok(inv.servers.some((s) => s.bareMetalOnly), 'no bare-metal-only server');
  assert.ok(inv.servers.some((s) => s.priority === 0), 'no tier-0 server');
  assert.ok(inv.servers.some((s) => s.antiAffinity !== undefined), 'no anti-affinity group');
}

test('topology - every preset passes the shared loader after a file round trip', async () => {
  const cases: [TopologySizeName, string, InventoryFormat][] = [
    ['tiny', 'tiny.yaml', 'yaml'],
    ['rack', 'rack.yml', 'yaml'],
    ['row', 'row.json', 'json'],
    ['10k', '10k.json', 'json'],
  ];
  const expectedHosts: Record<TopologySizeName, number> = { tiny: 24, rack: 160, row: 1_000, '10k': 10_000 };
  for (const [size, file, format] of cases) {
    const started = performance.now();
    const path = join(dir, file);
    await writeInventoryFile(generateTopology({ size }), path);
    const inv = parseInventory(await readFile(path, 'utf8'), { format, source: path });
    const ms = performance.now() - started;
    assert.equal(inv.hosts.length, expectedHosts[size], size);
    assertEveryKind(inv);
    if (size === '10k') {
      assert.equal(inv.racks.length, 250);
      assert.ok(ms < 8_000, `10k took ${Math.round(ms)} ms to generate, write and validate`);
    }
  }
});

test('topology - the same seed gives identical text, another seed different text', () => {
  for (const [size, format] of [
    ['tiny', 'yaml'],
    ['row', 'json'],
  ] as const) {
    const one = formatInventory(generateTopology({ size, seed: 7 }), format);
    assert.equal(formatInventory(generateTopology({ size, seed: 7 }), format), one, `${size} seed 7 twice`);
    assert.notEqual(formatInventory(generateTopology({ size, seed: 8 }), format), one, `${size} seeds 7 and 8`);
  }
  // The default seed is 1.
  assert.equal(formatInventory(generateTopology(), 'yaml'), formatInventory(generateTopology({ size: 'tiny', seed: 1 }), 'yaml'));
});

test('topology - tiny has every kind of host, server and hardware, whatever the seed', () => {
  for (let seed = 0; seed < 60; seed++) {
    const inv = validate(generateTopology({ seed }));
    assert.equal(inv.racks.length, 3);
    assert.equal(inv.hosts.length, 24);
    assertEveryKind(inv);
  }
});

test('topology - tiny racks each have a PDU and a ToR, NICs cabled to unique ports with unique MACs', () => {
  const inv = validate(generateTopology());
  const switches = new Map(inv.switches.map((s) => [s.id, s]));
  for (const rack of inv.racks) {
    assert.equal(rack.pdu, `${rack.id}-pdu`);
    assert.equal(rack.tor, `${rack.id}-tor`);
    assert.equal(switches.get(rack.tor)?.fabric, 'site1-net');
  }
  const macs = inv.hosts.flatMap((h) => h.nics.map((n) => n.mac));
  assert.equal(new Set(macs).size, 48);
  for (const mac of macs) assert.match(mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
  const ports = inv.hosts.flatMap((h) => h.nics.map((n) => `${n.switch}:${n.port}`));
  assert.equal(new Set(ports).size, 48);
  for (const host of inv.hosts) {
    assert.equal(host.nics.length, 2);
    assert.equal(host.pdu, `${host.rack}-pdu`);
    for (const nic of host.nics) {
      assert.equal(nic.switch, `${host.rack}-tor`);
      assert.ok(nic.port >= 1 && nic.port <= 16);
    }
  }
});

test('topology - servers fit their hosts and reference matching images, VLANs and LUNs', () => {
  const inv = validate(generateTopology({ size: 'rack', seed: 3 }));
  const hosts = new Map(inv.hosts.map((h) => [h.id, h]));
  const images = new Map(inv.images.map((i) => [i.id, i]));
  const vlans = new Map(inv.vlans.map((v) => [v.id, v]));
  const rto = [300, 900, 1800, 3600];
  for (const a of inv.assignments) {
    assert.equal(a.mode, 'bare-metal');
    if (a.mode !== 'bare-metal') continue;
    const host = hosts.get(a.host);
    const server = inv.servers.find((s) => s.id === a.server);
    assert.ok(host && server);
    assert.ok(server.cpus <= host.cpus && server.memoryGiB <= host.memoryGiB, `${server.id} does not fit ${host.id}`);
    assert.equal(server.arch, host.arch);
    assert.equal(images.get(server.image)?.hypervisor, false);
    assert.ok(server.vlans.length >= 1 && server.vlans.length <= 3);
    assert.equal(new Set(server.vlans).size, server.vlans.length);
    for (const v of server.vlans) assert.ok(v >= 101 && v <= 199 && vlans.get(v)?.drillVlan === v + 2000);
    assert.ok(server.luns.length >= 1 && server.luns.length <= 2);
    assert.equal(server.rtoSeconds, rto[server.priority]);
  }
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const ofArch = inv.images.filter((i) => i.arch === arch);
    assert.equal(ofArch.filter((i) => i.hypervisor).length, 1, `one ${arch} hypervisor image`);
    assert.ok(ofArch.filter((i) => !i.hypervisor).length >= 1);
  }
  for (const image of inv.images) assert.equal(image.url, `http://127.0.0.1:8080/images/${image.id}.ipxe`);
  assert.equal(inv.storageArrays.length, 2);
  for (const array of inv.storageArrays) assert.deepEqual([array.driver, array.fabric], ['lab-san', 'site1-san']);
  for (const host of inv.hosts) assert.equal(host.hba?.fabric, 'site1-san');
  // Tier 0 is the rarest tier.
  const tier0 = inv.servers.filter((s) => s.priority === 0).length;
  assert.ok(tier0 >= 1 && tier0 < inv.servers.length / 5, `${tier0} tier-0 servers of ${inv.servers.length}`);
});

test('topology - row spans all four priority tiers and has bare-metal-only servers', () => {
  const inv = validate(generateTopology({ size: 'row' }));
  assert.deepEqual(new Set(inv.servers.map((s) => s.priority)), new Set([0, 1, 2, 3]));
  assert.ok(inv.servers.some((s) => s.bareMetalOnly));
  assert.ok(inv.hosts.some((h) => h.role === 'hypervisor' && h.hypervisorCapable));
  // Roughly the intended mix: about 60% production, 15% spares, 20% repurposable.
  const share = (role: string): number => inv.hosts.filter((h) => h.role === role).length / inv.hosts.length;
  assert.ok(share('production') > 0.5 && share('production') < 0.7);
  assert.ok(share('spare') > 0.1 && share('spare') < 0.2);
  assert.ok(share('repurposable') > 0.15 && share('repurposable') < 0.25);
});

test('topology - one BMC endpoint per rack, each host a system on it named after the host', () => {
  const inv = validate(generateTopology());
  for (const [r, rack] of inv.racks.entries()) {
    const hosts = inv.hosts.filter((h) => h.rack === rack.id);
    assert.equal(hosts.length, 8);
    assert.deepEqual(
      hosts.map((h) => h.id),
      ['01', '02', '03', '04', '05', '06', '07', '08'].map((n) => `${rack.id}-h${n}`),
    );
    for (const host of hosts) {
      assert.deepEqual(host.bmc, {
        driver: 'redfish',
        address: `127.0.0.1:${20_001 + r}`,
        systemId: host.id,
        auth: 'auto',
        credentialsRef: 'env:FB_LAB_BMC_CREDENTIALS',
        tls: { verify: true },
      });
    }
  }
  assert.deepEqual(
    inv.switches.map((s) => [s.id, s.address, s.credentialsRef]),
    ['r1', 'r2', 'r3'].map((r, i) => [`${r}-tor`, `127.0.0.1:${30_001 + i}`, 'env:FB_LAB_SNMP_CREDENTIALS']),
  );
  assert.deepEqual(
    inv.storageArrays.map((a) => [a.id, a.address, a.credentialsRef]),
    [['site1-array1', 'http://127.0.0.1:40001', 'env:FB_LAB_SAN_CREDENTIALS']],
  );
});

test('topology - address and credential callbacks are honoured', () => {
  const inv = validate(
    generateTopology({
      size: 'rack',
      addresses: {
        bmc: (rack) => `127.0.0.1:${rack === 'r1' ? 6001 : 6002}`,
        switch: (sw) => `127.0.0.1:${sw === 'r1-tor' ? 7001 : 7002}`,
        san: (array) => `http://127.0.0.1:8000/${array}`,
        imageBase: 'http://127.0.0.1:9000/',
      },
      credentials: {
        bmc: (rack) => `file:/etc/lab/creds.json#bmc-${rack}`,
        switch: (sw) => `file:/etc/lab/creds.json#switch-${sw}`,
        san: (array) => `file:/etc/lab/creds.json#san-${array}`,
      },
    }),
  );
  for (const host of inv.hosts) {
    assert.equal(host.bmc.address, host.rack === 'r1' ? '127.0.0.1:6001' : '127.0.0.1:6002');
    assert.equal(host.bmc.credentialsRef, `file:/etc/lab/creds.json#bmc-${host.rack}`);
  }
  for (const sw of inv.switches) {
    assert.equal(sw.address, sw.id === 'r1-tor' ? '127.0.0.1:7001' : '127.0.0.1:7002');
    assert.equal(sw.credentialsRef, `file:/etc/lab/creds.json#switch-${sw.id}`);
  }
  for (const array of inv.storageArrays) {
    assert.equal(array.address, `http://127.0.0.1:8000/${array.id}`);
    assert.equal(array.credentialsRef, `file:/etc/lab/creds.json#san-${array.id}`);
  }
  for (const image of inv.images) assert.equal(image.url, `http://127.0.0.1:9000/images/${image.id}.ipxe`);

  // Overriding one callback keeps the defaults of the others.
  const partial = validate(generateTopology({ addresses: { switch: () => '127.0.0.1:161' }, credentials: { san: () => 'env:SAN' } }));
  assert.ok(partial.switches.every((s) => s.address === '127.0.0.1:161'));
  assert.equal(partial.hosts[0]?.bmc.address, '127.0.0.1:20001');
  assert.equal(partial.storageArrays[0]?.credentialsRef, 'env:SAN');
  assert.equal(partial.hosts[0]?.bmc.credentialsRef, 'env:FB_LAB_BMC_CREDENTIALS');
});

test('topology - several sites keep ids, VLANs and MACs unique and fabrics apart', () => {
  const inv = validate(generateTopology({ size: { sites: 3, racksPerSite: 2, hostsPerRack: 120 }, seed: 5 }));
  assert.equal(inv.hosts.length, 720);
  assert.deepEqual(
    inv.racks.map((r) => `${r.site}/${r.id}`),
    ['site1/r1', 'site1/r2', 'site2/r3', 'site2/r4', 'site3/r5', 'site3/r6'],
  );
  assert.equal(inv.hosts[0]?.id, 'r1-h001');
  assert.equal(inv.hosts.at(-1)?.id, 'r6-h120');
  for (const site of ['site1', 'site2', 'site3']) {
    const s = Number(site.slice(4));
    const vlans = inv.vlans.filter((v) => v.fabric === `${site}-net`);
    assert.ok(vlans.length >= 8 && vlans.every((v) => Math.floor(v.id / 100) === s && v.drillVlan === v.id + 2000));
    assert.ok(inv.storageArrays.filter((a) => a.fabric === `${site}-san`).length >= 1);
    // A server's VLANs and LUNs belong to the site of the host it runs on.
    const siteHosts = new Set(inv.hosts.filter((h) => h.site === site).map((h) => h.id));
    const arrays = new Set(inv.storageArrays.filter((a) => a.fabric === `${site}-san`).map((a) => a.id));
    const lunArray = new Map(inv.luns.map((l) => [l.id, l.array]));
    for (const a of inv.assignments) {
      if (a.mode !== 'bare-metal' || !siteHosts.has(a.host)) continue;
      const server = inv.servers.find((x) => x.id === a.server);
      assert.ok(server?.vlans.every((v) => Math.floor(v / 100) === s));
      assert.ok(server?.luns.every((l) => arrays.has(lunArray.get(l) ?? '')));
    }
    assert.ok(inv.hosts.some((h) => h.site === site && h.hba?.initiator.startsWith('iqn.')), `no iSCSI HBA in ${site}`);
  }
  assert.ok(parseInventory(formatInventory(inv, 'json'), { format: 'json' }));
});

test('topology - impossible sizes and seeds are refused', () => {
  assert.throws(() => generateTopology({ size: { sites: 0, racksPerSite: 1, hostsPerRack: 1 } }), /sites must be a positive integer/);
  assert.throws(() => generateTopology({ size: { sites: 1, racksPerSite: 1.5, hostsPerRack: 1 } }), /racksPerSite/);
  assert.throws(() => generateTopology({ size: { sites: 20, racksPerSite: 1, hostsPerRack: 1 } }), /at most 19 sites/);
  assert.throws(() => generateTopology({ size: 'huge' as TopologySize }), /unknown topology size "huge"/);
  assert.throws(() => generateTopology({ seed: 0.5 }), /seed must be a safe integer/);
  // Small racks still validate, even without room for every kind.
  validate(generateTopology({ size: { sites: 1, racksPerSite: 1, hostsPerRack: 1 } }));
  validate(generateTopology({ size: { sites: 2, racksPerSite: 16, hostsPerRack: 1 } }));
});

test('topology - writeInventoryFile refuses an extension it cannot tell a format from', async () => {
  await assert.rejects(writeInventoryFile(generateTopology(), join(dir, 'inventory.toml')), /expected \.yaml, \.yml or \.json/);
});

test('summarizeTopology - counts hosts by role and arch and servers by tier', () => {
  const inv = generateTopology({ size: 'row' });
  const summary = summarizeTopology(inv);
  assert.equal(summary.hosts, 1_000);
  assert.equal(summary.racks, 25);
  assert.equal(summary.sites, 1);
  assert.deepEqual(Object.keys(summary.hostsByRole), ['production', 'spare', 'repurposable', 'hypervisor']);
  assert.equal(Object.values(summary.hostsByRole).reduce((a, b) => a + b, 0), 1_000);
  assert.equal(summary.hostsByRole.production, summary.servers);
  assert.equal((summary.hostsByArch.x86_64 ?? 0) + (summary.hostsByArch.aarch64 ?? 0), 1_000);
  assert.deepEqual(Object.keys(summary.serversByTier), ['0', '1', '2', '3']);
  assert.equal(summary.initiators.wwpn + summary.initiators.iqn, 1_000);
  // A loaded inventory summarises the same as the generated one.
  assert.deepEqual(summarizeTopology(validate(inv)), summary);
  const lines = formatTopologySummary(summary);
  assert.match(lines.join('\n'), /hosts: 1000 \(production \d+, spare \d+, repurposable \d+, hypervisor \d+; aarch64 \d+, x86_64 \d+/);
  assert.match(lines.join('\n'), /servers: \d+ \(tier 0 \d+, tier 1 \d+, tier 2 \d+, tier 3 \d+; bare-metal only \d+\)/);
});
