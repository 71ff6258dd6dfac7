import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirebreakError } from '../src/errors.ts';
import { inventoryIndex, InventoryError, loadInventoryFile, switchPortKey } from '../src/inventory/index.ts';
import { sampleInventory } from '../src/testing/samples.ts';
import { edit, fixturePath, lineOf, located, parseError } from './inventory-fixture.ts';

let fixture = '';
let dir = '';

before(async () => {
  fixture = await readFile(fixturePath, 'utf8');
  dir = await mkdtemp(join(tmpdir(), 'firebreak-inventory-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function loadError(path: string): Promise<InventoryError> {
  const err = await loadInventoryFile(path).then(
    () => assert.fail('expected the inventory to be rejected'),
    (thrown: unknown) => thrown,
  );
  assert.ok(err instanceof InventoryError, `expected an InventoryError, got ${String(err)}`);
  return err;
}

function sampleJson(): string {
  return JSON.stringify(sampleInventory(), null, 2);
}

test('inventory - a valid YAML file loads with defaults applied', async () => {
  const inv = await loadInventoryFile(fixturePath);
  assert.deepEqual(
    inv.hosts.map((h) => h.id),
    ['r1-h1', 'r1-h2', 'r1-h3', 'r2-h1', 'r2-h2'],
  );
  const h1 = inv.hosts[0];
  assert.deepEqual(h1?.bmc, {
    driver: 'redfish',
    address: 'https://127.0.0.1:8001',
    auth: 'auto',
    credentialsRef: 'file:/etc/firebreak/bmc.json#r1-h1',
    tls: { verify: true },
  });
  assert.equal(h1?.hypervisorCapable, false);
  // Unquoted MACs stay strings: YAML 1.2 has no base-60 numbers.
  assert.equal(h1?.nics[0]?.mac, '52:54:00:00:01:01');
  assert.deepEqual(inv.assignments[1], { server: 'web1', mode: 'vm', hypervisor: 'r1-h3' });
});

test('inventory - a valid JSON file loads to the same inventory it was written from', async () => {
  const path = join(dir, 'site1.json');
  await writeFile(path, sampleJson());
  assert.deepEqual(await loadInventoryFile(path), sampleInventory());
});

test('inventory - a .yml file is read as YAML', async () => {
  const path = join(dir, 'site1.yml');
  await writeFile(path, fixture);
  assert.equal((await loadInventoryFile(path)).hosts.length, 5);
});

test('inventory - a bad MAC is named by path and line', () => {
  const text = edit(fixture, 'mac: 52:54:00:00:01:02', 'mac: 52:54:00:00:01:zz');
  const err = parseError(text);
  const line = lineOf(fixture, 'mac: 52:54:00:00:01:02');
  assert.deepEqual(located(err), [{ path: 'hosts[1].nics[0].mac', line }]);
  assert.ok(
    err.message.includes(
      `hosts[1].nics[0].mac: not a MAC address (expected six hex pairs like 52:54:00:12:34:56) (line ${line})`,
    ),
    err.message,
  );
  assert.match(err.message, /^cannot load inventory site1\.yaml:\n/);
  assert.equal(err.code, 'INVALID_INVENTORY');
  assert.equal(err.retryable, false);
  assert.ok(err instanceof FirebreakError);
});

test('inventory - a missing field is required, at the line of the entry that lacks it', () => {
  const text = edit(fixture, '    memoryGiB: 128\n    role: production\n', '    memoryGiB: 128\n');
  const err = parseError(text);
  const line = lineOf(fixture, 'id: r1-h2');
  assert.deepEqual(located(err), [{ path: 'hosts[1].role', line }]);
  assert.ok(err.message.includes(`hosts[1].role: required (expected `), err.message);
});

test('inventory - a missing nested field points at its parent key', () => {
  const text = edit(fixture, '      credentialsRef: file:/etc/firebreak/bmc.json#r2-h1\n', '');
  const err = parseError(text);
  const line = lineOf(fixture, 'address: https://127.0.0.1:8101') - 1;
  assert.deepEqual(located(err), [{ path: 'hosts[3].bmc.credentialsRef', line }]);
  assert.ok(err.message.includes(`hosts[3].bmc.credentialsRef: required (expected string) (line ${line})`), err.message);
});

test('inventory - a value of the wrong type is named with what was expected', () => {
  const text = edit(fixture, 'cpus: 64', 'cpus: lots');
  const err = parseError(text);
  const line = lineOf(fixture, 'cpus: 64');
  assert.deepEqual(located(err), [{ path: 'hosts[1].cpus', line }]);
  assert.ok(err.message.includes(`hosts[1].cpus: expected number, received string (line ${line})`), err.message);
});

test('inventory - a host in an unknown rack', () => {
  const text = edit(fixture, '  - id: r2-h2\n    site: site1\n    rack: r2', '  - id: r2-h2\n    site: site1\n    rack: r9');
  const err = parseError(text);
  const line = lineOf(fixture, 'id: r2-h2') + 2;
  assert.deepEqual(located(err), [{ path: 'hosts[4].rack', line }]);
  assert.ok(err.message.includes(`hosts[4].rack: unknown rack "r9" (line ${line})`), err.message);
});

test('inventory - a host whose site is not its rack\'s site', () => {
  const text = edit(fixture, '  - id: r2-h2\n    site: site1', '  - id: r2-h2\n    site: site2');
  const err = parseError(text);
  assert.deepEqual(located(err), [{ path: 'hosts[4].site', line: lineOf(fixture, 'id: r2-h2') + 1 }]);
  assert.match(err.message, /hosts\[4\]\.site: site "site2" differs from site "site1" of rack "r2"/);
});

test('inventory - a duplicate host id names both entries', () => {
  const text = edit(fixture, 'id: r2-h2', 'id: r1-h1');
  const err = parseError(text);
  const line = lineOf(fixture, 'id: r2-h2');
  assert.deepEqual(located(err), [{ path: 'hosts[4].id', line }]);
  assert.ok(err.message.includes(`hosts[4].id: duplicate host id "r1-h1" (first at hosts[0].id) (line ${line})`), err.message);
});

test('inventory - a duplicate MAC across hosts, compared case-insensitively', () => {
  const text = edit(fixture, 'mac: 52:54:00:00:02:02', 'mac: 52:54:00:00:01:0A');
  const withFirst = edit(text, 'mac: 52:54:00:00:01:13', 'mac: 52:54:00:00:01:0a');
  const err = parseError(withFirst);
  const line = lineOf(fixture, 'mac: 52:54:00:00:02:02');
  assert.deepEqual(located(err), [{ path: 'hosts[4].nics[0].mac', line }]);
  assert.ok(
    err.message.includes(`hosts[4].nics[0].mac: duplicate MAC 52:54:00:00:01:0a (first at hosts[2].nics[1].mac) (line ${line})`),
    err.message,
  );
});

test('inventory - a switch port cabled to two NICs', () => {
  const text = edit(fixture, 'switch: tor-r1, port: 13', 'switch: tor-r1, port: 2');
  const err = parseError(text);
  assert.deepEqual(located(err), [{ path: 'hosts[2].nics[1].port', line: lineOf(fixture, 'port: 13') }]);
  assert.match(err.message, /hosts\[2\]\.nics\[1\]\.port: switch port tor-r1:2 is cabled twice \(first at hosts\[1\]\.nics\[0\]\.port\)/);
});

test('inventory - a server naming an unknown image, VLAN and LUN gets one problem each', () => {
  let text = edit(fixture, '    image: rhel9-x86\n    vlans: [200]\n    luns: [lun-db1]', '    image: rhel10\n    vlans: [200, 999]\n    luns: [lun-gone]');
  text = edit(text, 'switch: tor-r2, port: 2', 'switch: tor-r3, port: 2');
  const err = parseError(text);
  const imageLine = lineOf(fixture, 'id: db1') + 1;
  assert.deepEqual(located(err), [
    { path: 'hosts[4].nics[0].switch', line: lineOf(fixture, 'switch: tor-r2, port: 2') },
    { path: 'servers[0].image', line: imageLine },
    { path: 'servers[0].vlans[1]', line: imageLine + 1 },
    { path: 'servers[0].luns[0]', line: imageLine + 2 },
  ]);
  assert.match(err.message, /hosts\[4\]\.nics\[0\]\.switch: unknown switch "tor-r3"/);
  assert.match(err.message, /servers\[0\]\.image: unknown image "rhel10"/);
  assert.match(err.message, /servers\[0\]\.vlans\[1\]: unknown VLAN 999/);
  assert.match(err.message, /servers\[0\]\.luns\[0\]: unknown LUN "lun-gone"/);
});

test('inventory - a server whose image is built for another arch', () => {
  const text = edit(fixture, '    image: rhel9-x86\n    vlans: [100]', '    image: rhel9-arm\n    vlans: [100]');
  const err = parseError(text);
  assert.deepEqual(located(err), [{ path: 'servers[1].image', line: lineOf(fixture, 'id: web1') + 1 }]);
  assert.match(err.message, /servers\[1\]\.image: image "rhel9-arm" is aarch64 but the server is x86_64/);
});

test('inventory - a LUN on an unknown array is an error, an HBA on a fabric without arrays is not', () => {
  let text = edit(fixture, '{ id: lun-web1, array: array1', '{ id: lun-web1, array: array9');
  text = edit(text, '"iqn.2025-01.com.example:r1-h3", fabric: san1', '"iqn.2025-01.com.example:r1-h3", fabric: san2');
  const err = parseError(text);
  assert.deepEqual(located(err), [{ path: 'luns[1].array', line: lineOf(fixture, 'id: lun-web1') }]);
  assert.match(err.message, /luns\[1\]\.array: unknown storage array "array9"/);
});

test('inventory - assignments naming an unknown server, host or hypervisor', () => {
  let text = edit(fixture, '{ server: db1, mode: bare-metal, host: r2-h1 }', '{ server: db9, mode: bare-metal, host: r2-h9 }');
  text = edit(text, 'hypervisor: r1-h3 }', 'hypervisor: r7-h1 }');
  const err = parseError(text);
  const line = lineOf(fixture, '{ server: db1');
  assert.deepEqual(located(err), [
    { path: 'assignments[0].server', line },
    { path: 'assignments[0].host', line },
    { path: 'assignments[1].hypervisor', line: line + 1 },
  ]);
  assert.match(err.message, /assignments\[0\]\.server: unknown server "db9"/);
  assert.match(err.message, /assignments\[0\]\.host: unknown host "r2-h9"/);
  assert.match(err.message, /assignments\[1\]\.hypervisor: unknown hypervisor host "r7-h1"/);
});

test('inventory - a YAML syntax error is reported with its line', () => {
  const text = edit(fixture, '    memoryGiB: 192\n', '    memoryGiB: 192\n   role production: [\n');
  const err = parseError(text);
  const line = lineOf(fixture, 'memoryGiB: 192') + 1;
  // Only the first mistake is reported: what follows a slip cannot be read reliably.
  assert.deepEqual(located(err), [{ path: '(syntax)', line }]);
  assert.match(err.message, new RegExp(`:\\n {2}\\(syntax\\): [^\\n]+ \\(line ${line}\\)$`));
});

test('inventory - a duplicate YAML key is a syntax error, not a silent overwrite', () => {
  const text = edit(fixture, '    cpus: 48\n', '    cpus: 48\n    cpus: 4\n');
  const err = parseError(text);
  assert.deepEqual(located(err), [{ path: '(syntax)', line: lineOf(fixture, 'cpus: 48') + 1 }]);
  assert.match(err.message, /duplicate/i);
});

test('inventory - a JSON syntax error names its position and line', () => {
  const json = sampleJson();
  const text = edit(json, '"cpus": 64,', '"cpus": 64');
  const err = parseError(text, 'json');
  assert.deepEqual(located(err), [{ path: '(syntax)', line: lineOf(json, '"cpus": 64') + 1 }]);
  assert.match(err.message, /\(syntax\): Expected ',' or '}' after property value in JSON at position \d+ \(line \d+\)/);
});

test('inventory - a JSON schema problem names its path and line', () => {
  const json = sampleJson();
  const text = edit(json, '"mac": "52:54:00:00:01:03"', '"mac": "52-54-00-00-01-03"');
  const err = parseError(text, 'json');
  assert.deepEqual(located(err), [{ path: 'hosts[2].nics[0].mac', line: lineOf(json, '"mac": "52:54:00:00:01:03"') }]);
});

test('inventory - an unsupported extension is refused by name', async () => {
  const path = join(dir, 'site1.toml');
  await writeFile(path, fixture);
  const err = await loadError(path);
  assert.deepEqual(located(err), [{ path: '(file)' }]);
  assert.match(err.message, /site1\.toml:\n {2}\(file\): unsupported extension "\.toml" \(expected \.yaml, \.yml or \.json\)/);
});

test('inventory - a missing file is reported with its path', async () => {
  const path = join(dir, 'nowhere.yaml');
  const err = await loadError(path);
  assert.match(err.message, new RegExp(`^cannot load inventory ${path}:\\n {2}\\(file\\): cannot be read: ENOENT`));
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
});

test('inventory - several schema problems are all reported, in file order', () => {
  let text = edit(fixture, 'mac: 52:54:00:00:01:01', 'mac: 52:54:00:00:01');
  text = edit(text, 'cpus: 64', 'cpus: -2');
  text = edit(text, 'priority: 8', 'priority: 12');
  text = edit(text, 'vlans: [100]', 'vlans: []');
  const err = parseError(text);
  assert.deepEqual(located(err), [
    { path: 'hosts[0].nics[0].mac', line: lineOf(fixture, 'mac: 52:54:00:00:01:01') },
    { path: 'hosts[1].cpus', line: lineOf(fixture, 'cpus: 64') },
    { path: 'hosts[4].workload.priority', line: lineOf(fixture, 'priority: 8') },
    { path: 'servers[1].vlans', line: lineOf(fixture, 'vlans: [100]') },
  ]);
  assert.equal(err.message.split('\n').length, 5, err.message);
});

test('inventory - several cross-reference problems are all reported', () => {
  let text = edit(fixture, 'id: r2-h2', 'id: r1-h1');
  text = edit(text, '    rack: r2\n    arch: x86_64\n    cpus: 24', '    rack: r3\n    arch: x86_64\n    cpus: 24');
  text = edit(text, 'vlans: [100]', 'vlans: [101]');
  const err = parseError(text);
  assert.deepEqual(
    err.problems.map((p) => p.path),
    ['hosts[4].id', 'hosts[3].rack', 'servers[1].vlans[0]'],
  );
});

test('inventory - a problem behind a YAML alias points at the anchored text', () => {
  let text = edit(
    fixture,
    '    bmc:\n      address: https://127.0.0.1:8001\n      credentialsRef: file:/etc/firebreak/bmc.json#r1-h1',
    '    bmc: &bmc\n      address: https://127.0.0.1:8001\n      credentialsRef: plaintext',
  );
  text = edit(
    text,
    '    bmc:\n      address: https://127.0.0.1:8002\n      credentialsRef: file:/etc/firebreak/bmc.json#r1-h2',
    '    bmc: *bmc\n\n',
  );
  const err = parseError(text);
  const line = lineOf(fixture, 'credentialsRef: file:/etc/firebreak/bmc.json#r1-h1');
  assert.deepEqual(located(err), [
    { path: 'hosts[0].bmc.credentialsRef', line },
    { path: 'hosts[1].bmc.credentialsRef', line },
  ]);
});

test('inventory - the index looks hosts up by id, rack, MAC and switch port', () => {
  const index = inventoryIndex(sampleInventory());
  assert.equal(index.hostsById.get('r2-h1')?.role, 'production');
  assert.equal(index.serversById.get('db1')?.priority, 0);
  assert.equal(index.racksById.get('r2')?.tor, 'tor-r2');
  assert.deepEqual(
    index.hostsByRack.get('r1')?.map((h) => h.id),
    ['r1-h2', 'r1-h3', 'r1-h4'],
  );
  assert.equal(index.hostByMac.get('52:54:00:00:02:01')?.id, 'r2-h1');
  assert.equal(index.switchPortToHost.get(switchPortKey('tor-r1', 3))?.id, 'r1-h3');
  assert.equal(index.switchPortToHost.get(switchPortKey('tor-r1', 1)), undefined);
});
