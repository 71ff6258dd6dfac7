import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { crossCheck, parseInventory } from '../src/inventory/index.ts';
import { Inventory } from '../src/schemas/inventory.schema.ts';
import { sampleInventory } from '../src/testing/samples.ts';
import { edit, fixturePath, lineOf, located, parseError } from './inventory-fixture.ts';

let fixture = '';
before(async () => {
  fixture = await readFile(fixturePath, 'utf8');
});

/** The fixture's one line naming `needle`, plus `offset` lines. */
const at = (needle: string, offset = 0): number => lineOf(fixture, needle) + offset;

function assertMessage(message: string, expected: string): void {
  assert.ok(message.includes(expected), `expected ${JSON.stringify(expected)} in:\n${message}`);
}

/** A third VM server for r1-h3, on VLAN 100 and without LUNs. */
function withWeb2(text: string, memoryGiB: number): string {
  const server = `  - id: web2\n    image: rhel9-x86\n    vlans: [100]\n    cpus: 4\n    memoryGiB: ${memoryGiB}\n    arch: x86_64\n    priority: 3\n`;
  return `${edit(text, '    priority: 2\n', `    priority: 2\n${server}`)}  - { server: web2, mode: vm, hypervisor: r1-h3 }\n`;
}

test('inventory checks - the samples and the fixture pass every check', () => {
  assert.deepEqual(crossCheck(Inventory.parse(sampleInventory())), []);
  assert.equal(parseInventory(fixture, { format: 'yaml' }).assignments.length, 2);
});

test('inventory checks - a misspelled field is refused at its line, naming the field it likely means', () => {
  const err = parseError(edit(fixture, '    priority: 2\n', '    priority: 2\n    bareMetalOnyl: false\n'));
  const line = at('priority: 2', 1);
  assert.deepEqual(located(err), [{ path: 'servers[1].bareMetalOnyl', line }]);
  assertMessage(err.message, `servers[1].bareMetalOnyl: unknown field (did you mean "bareMetalOnly"?) (line ${line})`);
});

test('inventory checks - a misspelled field in JSON is refused rather than left to its default', () => {
  const json = JSON.stringify(sampleInventory(), null, 2);
  const err = parseError(edit(json, '"bareMetalOnly": true', '"bareMetalOnyl": true'), 'json');
  const line = lineOf(json, '"bareMetalOnly": true');
  assert.deepEqual(located(err), [{ path: 'servers[0].bareMetalOnyl', line }]);
  assertMessage(err.message, `servers[0].bareMetalOnyl: unknown field (did you mean "bareMetalOnly"?) (line ${line})`);
});

test('inventory checks - unknown fields are refused at every depth, one problem each at its own line', () => {
  let text = edit(fixture, 'version: 1\n', 'version: 1\nnotes: hello\n');
  text = edit(text, '{ id: r1, site: site1, pdu: pdu-r1, tor: tor-r1 }', '{ id: r1, site: site1, pdu: pdu-r1, tor: tor-r1, row: 3, room: b }');
  text = edit(text, 'switch: tor-r1, port: 1 }', 'switch: tor-r1, port: 1, vlan: 5 }');
  text = edit(text, 'tls: { verify: false }', 'tls: { verify: false, verfy: true }');
  text = edit(text, '{ server: db1, mode: bare-metal, host: r2-h1 }', '{ server: db1, mode: bare-metal, host: r2-h1, hypervisor: r1-h3 }');
  const err = parseError(text);
  // Every line after the inserted `notes:` moves down one.
  assert.deepEqual(located(err), [
    { path: 'racks[0].row', line: at('id: r1, site') + 1 },
    { path: 'racks[0].room', line: at('id: r1, site') + 1 },
    { path: 'hosts[0].nics[0].vlan', line: at('switch: tor-r1, port: 1 }') + 1 },
    { path: 'hosts[4].bmc.tls.verfy', line: at('tls: { verify: false }') + 1 },
    { path: 'assignments[0].hypervisor', line: at('{ server: db1') + 1 },
    { path: 'notes', line: 4 },
  ]);
  assertMessage(err.message, 'hosts[4].bmc.tls.verfy: unknown field (did you mean "verify"?)');
  assertMessage(err.message, 'racks[0].room: unknown field (expected one of id, site, pdu, tor)');
  assertMessage(err.message, 'assignments[0].hypervisor: unknown field (expected one of server, mode, host)');
});

test('inventory checks - a server assigned to a host or hypervisor of another arch', () => {
  let text = edit(fixture, '  - id: r2-h1\n    site: site1\n    rack: r2\n    arch: x86_64', '  - id: r2-h1\n    site: site1\n    rack: r2\n    arch: aarch64');
  text = edit(text, '  - id: r1-h3\n    site: site1\n    rack: r1\n    arch: x86_64', '  - id: r1-h3\n    site: site1\n    rack: r1\n    arch: aarch64');
  const err = parseError(text);
  const line = at('{ server: db1');
  assert.deepEqual(located(err), [
    { path: 'assignments[0].host', line },
    { path: 'assignments[1].hypervisor', line: line + 1 },
  ]);
  assertMessage(err.message, `assignments[0].host: server "db1" is x86_64 but cannot run on host "r2-h1", which is aarch64 (line ${line})`);
  assertMessage(err.message, `assignments[1].hypervisor: server "web1" is x86_64 but cannot run as a VM on hypervisor "r1-h3", which is aarch64 (line ${line + 1})`);
});

test('inventory checks - a bareMetalOnly server assigned as a VM', () => {
  const err = parseError(edit(fixture, '    priority: 2\n', '    priority: 2\n    bareMetalOnly: true\n'));
  // One line was inserted above the assignments.
  const line = at('{ server: web1', 1);
  assert.deepEqual(located(err), [{ path: 'assignments[1].mode', line }]);
  assertMessage(err.message, `assignments[1].mode: server "web1" is bareMetalOnly and cannot run as a VM (line ${line})`);
});

test('inventory checks - a bare-metal server on a host with fewer cpus and less memory than it needs', () => {
  const err = parseError(edit(fixture, '    cpus: 16\n    memoryGiB: 128\n', '    cpus: 32\n    memoryGiB: 256\n'));
  const line = at('{ server: db1');
  assert.deepEqual(located(err), [
    { path: 'assignments[0].host', line },
    { path: 'assignments[0].host', line },
  ]);
  assertMessage(err.message, `assignments[0].host: server "db1" needs 32 cpus but host "r2-h1" has 24 (line ${line})`);
  assertMessage(err.message, `assignments[0].host: server "db1" needs 256 GiB of memory but host "r2-h1" has 192 GiB (line ${line})`);
});

test('inventory checks - VMs whose memory adds up to more than their hypervisor has', () => {
  const text = edit(fixture, '    memoryGiB: 8\n', '    memoryGiB: 256\n');
  // 256 + 128 fills r1-h3's 384 GiB exactly: allowed.
  assert.equal(parseInventory(withWeb2(text, 128), { format: 'yaml' }).assignments.length, 3);

  const over = withWeb2(text, 160);
  const err = parseError(over);
  const line = lineOf(over, '{ server: web2');
  assert.deepEqual(located(err), [{ path: 'assignments[2].hypervisor', line }]);
  assertMessage(
    err.message,
    `assignments[2].hypervisor: server "web2" brings the VMs on hypervisor "r1-h3" to 416 GiB of memory, more than its 384 GiB (memory is not overcommitted) (line ${line})`,
  );
});

test('inventory checks - a VM on a host that cannot run a hypervisor', () => {
  const err = parseError(edit(fixture, 'hypervisor: r1-h3 }', 'hypervisor: r1-h1 }'));
  const line = at('{ server: web1');
  assert.deepEqual(located(err), [{ path: 'assignments[1].hypervisor', line }]);
  assertMessage(err.message, `assignments[1].hypervisor: host "r1-h1" is neither a hypervisor nor hypervisorCapable (line ${line})`);
});

test('inventory checks - a host that reaches no switch on the fabric of its server\'s VLAN', () => {
  const err = parseError(edit(fixture, '  - id: tor-r2\n    fabric: lan1', '  - id: tor-r2\n    fabric: lan2'));
  const line = at('{ server: db1');
  assert.deepEqual(located(err), [{ path: 'assignments[0].host', line }]);
  assertMessage(err.message, `assignments[0].host: host "r2-h1" has no NIC on fabric "lan1" of VLAN 200 that server "db1" needs (line ${line})`);
});

test('inventory checks - a host whose HBA is missing or on another fabric than its server\'s LUN', () => {
  const hba = '    hba: { initiator: "50:01:43:80:00:02:00:01", fabric: san1 }\n';
  const line = at('{ server: db1');

  const elsewhere = parseError(edit(fixture, hba, hba.replace('san1', 'san2')));
  assert.deepEqual(located(elsewhere), [{ path: 'assignments[0].host', line }]);
  assertMessage(elsewhere.message, `assignments[0].host: host "r2-h1" has its HBA on fabric "san2", but LUN "lun-db1" of server "db1" is on fabric "san1" (line ${line})`);

  const none = parseError(edit(fixture, hba, ''));
  assert.deepEqual(located(none), [{ path: 'assignments[0].host', line: line - 1 }]);
  assertMessage(none.message, 'assignments[0].host: host "r2-h1" has no HBA, but LUN "lun-db1" of server "db1" is on fabric "san1"');
});

test('inventory checks - a rack or host naming a top-of-rack switch that does not exist', () => {
  let text = edit(fixture, '{ id: r2, site: site1, pdu: pdu-r2, tor: tor-r2 }', '{ id: r2, site: site1, pdu: pdu-r2, tor: tor-r9 }');
  text = edit(text, '    rack: r1\n    arch: aarch64\n', '    rack: r1\n    tor: tor-r7\n    arch: aarch64\n');
  const err = parseError(text);
  assert.deepEqual(located(err), [
    { path: 'racks[1].tor', line: at('id: r2, site') },
    { path: 'hosts[1].tor', line: at('id: r1-h2', 3) },
  ]);
  assertMessage(err.message, `racks[1].tor: unknown switch "tor-r9" (line ${at('id: r2, site')})`);
  assertMessage(err.message, `hosts[1].tor: unknown switch "tor-r7" (line ${at('id: r1-h2', 3)})`);
});

test('inventory checks - a drill VLAN that is a production VLAN or another VLAN\'s drill VLAN', () => {
  const vlan = '{ id: 200, name: db, fabric: lan1, drillVlan: 3200 }';
  const line = at(vlan);

  const production = parseError(edit(fixture, vlan, vlan.replace('3200', '100')));
  assert.deepEqual(located(production), [{ path: 'vlans[1].drillVlan', line }]);
  assertMessage(production.message, `vlans[1].drillVlan: drill VLAN 100 of VLAN 200 is production VLAN 100 ("web") (line ${line})`);

  const shared = parseError(edit(fixture, vlan, vlan.replace('3200', '3100')));
  assert.deepEqual(located(shared), [{ path: 'vlans[1].drillVlan', line }]);
  assertMessage(
    shared.message,
    `vlans[1].drillVlan: drill VLAN 3100 of VLAN 200 is also another VLAN's drill VLAN (first at vlans[0].drillVlan) (line ${line})`,
  );
});

test('inventory checks - two hosts on one BMC system', () => {
  const h2Address = '      address: https://127.0.0.1:8002\n';
  const line = at('address: https://127.0.0.1:8002');

  // Neither names a system, so both would drive the BMC's only one.
  const unnamed = parseError(edit(fixture, h2Address, '      address: https://127.0.0.1:8001\n'));
  assert.deepEqual(located(unnamed), [{ path: 'hosts[1].bmc.address', line }]);
  assertMessage(
    unnamed.message,
    `hosts[1].bmc.address: BMC https://127.0.0.1:8001 with no systemId is also host "r1-h1"'s (first at hosts[0].bmc); hosts sharing a BMC need distinct systemIds (line ${line})`,
  );

  const named = (systemId: string): string =>
    edit(
      edit(fixture, '      address: https://127.0.0.1:8001\n', '      address: https://127.0.0.1:8001\n      systemId: "1"\n'),
      h2Address,
      `      address: https://127.0.0.1:8001\n      systemId: "${systemId}"\n`,
    );
  const same = parseError(named('1'));
  // r1-h1 gained a systemId line above r1-h2's.
  assert.deepEqual(located(same), [{ path: 'hosts[1].bmc.systemId', line: line + 2 }]);
  assertMessage(same.message, `hosts[1].bmc.systemId: BMC https://127.0.0.1:8001 system "1" is also host "r1-h1"'s (first at hosts[0].bmc)`);

  // One chassis BMC with a system per host, as the lab's racks have.
  assert.equal(parseInventory(named('2'), { format: 'yaml' }).hosts.length, 5);
});
