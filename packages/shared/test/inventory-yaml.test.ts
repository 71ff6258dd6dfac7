import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseInventory } from '../src/inventory/index.ts';
import { maxAliasedNodes, maxAliases } from '../src/inventory/read-yaml.ts';
import { edit, fixturePath, lineOf, located, parseError } from './inventory-fixture.ts';

let fixture = '';
before(async () => {
  fixture = await readFile(fixturePath, 'utf8');
});

const parse = (text: string) => parseInventory(text, { format: 'yaml' });

test('inventory yaml - scalars read as YAML 1.2 core: True and 0o/0x numbers, but yes/off stay strings', () => {
  let text = edit(fixture, '    hypervisorCapable: true\n', '    hypervisorCapable: True\n');
  text = edit(text, '    cpus: 48\n', '    cpus: 0o60\n');
  text = edit(text, 'switch: tor-r1, port: 13 }', 'switch: tor-r1, port: 0xd }');
  const host = parse(text).hosts[2];
  assert.equal(host?.hypervisorCapable, true);
  assert.equal(host?.cpus, 48);
  assert.equal(host?.nics[1]?.port, 13);

  text = edit(fixture, '    bareMetalOnly: true\n', '    bareMetalOnly: yes\n');
  text = edit(text, 'tls: { verify: false }', 'tls: { verify: off }');
  const err = parseError(text);
  assert.deepEqual(
    err.problems.map((p) => `${p.path}: ${p.message}`),
    ['hosts[4].bmc.tls.verify: expected boolean, received string', 'servers[0].bareMetalOnly: expected boolean, received string'],
  );
});

test('inventory yaml - null and ~ are null, not the text "null"', () => {
  const err = parseError(edit(edit(fixture, 'pdu: pdu-r1,', 'pdu: ~,'), 'pdu: pdu-r2,', 'pdu: null,'));
  assert.deepEqual(
    err.problems.map((p) => `${p.path}: ${p.message}`),
    ['racks[0].pdu: expected string, received null', 'racks[1].pdu: expected string, received null'],
  );
});

test('inventory yaml - an anchored value may be shared by a few aliases', () => {
  let text = edit(fixture, '      auth: session\n', '      auth: session\n      tls: &insecure { verify: false }\n');
  text = edit(text, 'tls: { verify: false }', 'tls: *insecure');
  text = edit(text, '      address: https://127.0.0.1:8101\n', '      address: https://127.0.0.1:8101\n      tls: *insecure\n');
  const inv = parse(text);
  assert.deepEqual(
    inv.hosts.map((host) => host.bmc.tls.verify),
    [true, true, false, false, false],
  );
});

test(`inventory yaml - more than ${maxAliases} aliases are refused as an alias bomb, at the line that passes the limit`, () => {
  const aliases = Array.from({ length: maxAliases + 1 }, () => '    - *web').join('\n');
  const text = `${edit(fixture, 'vlans: [100]', 'vlans: &web [100]')}extra:\n${aliases}\n`;
  const err = parseError(text);
  const line = text.split('\n').length - 1;
  assert.deepEqual(located(err), [{ path: '(syntax)', line }]);
  assert.match(err.message, new RegExp(`\\(syntax\\): more than ${maxAliases} aliases, which looks like an alias bomb \\(line ${line}\\)$`));
});

test('inventory yaml - anchors nested in anchors are refused before the schema walks what they stand for', () => {
  // Nine aliases of ten: 10^9 nodes, were each alias copied.
  const laughs = ['lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let k = 1; k <= 9; k++) laughs.push(`lol${k}: &lol${k} [${Array(10).fill(`*lol${k - 1}`).join(', ')}]`);
  const started = performance.now();
  const err = parseError(`${fixture}${laughs.join('\n')}\n`);
  assert.ok(performance.now() - started < 1_000, 'refused without expanding the aliases');
  assert.deepEqual(located(err), [{ path: '(syntax)' }]);
  assert.match(err.message, new RegExp(`aliases stand for more than ${maxAliasedNodes} nodes in all, which looks like an alias bomb`));
});

test('inventory yaml - an alias inside the value it names is refused, not walked forever', () => {
  const err = parseError(edit(fixture, 'workload: { name: print-server, priority: 8 }', 'workload: &w { name: print-server, priority: 8, again: *w }'));
  assert.deepEqual(located(err), [{ path: '(syntax)' }]);
  assert.match(err.message, /\(syntax\): an alias refers to a value that contains it$/);
});

test('inventory yaml - a second document in the file is a syntax error at its line', () => {
  const text = `${fixture}---\nversion: 1\n`;
  const err = parseError(text);
  assert.deepEqual(located(err), [{ path: '(syntax)', line: lineOf(text, '---') }]);
  assert.match(err.message, /single document/);
});
