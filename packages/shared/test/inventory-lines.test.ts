import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { CORE_SCHEMA, load } from 'js-yaml';
import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, stringify } from 'yaml';
import { parseInventory } from '../src/inventory/index.ts';
import { type FieldPath, lineLocator } from '../src/inventory/line-locator.ts';
import { edit, fixturePath, lineOf, located, parseError } from './inventory-fixture.ts';
import { generatedInventory, inventoryJson, inventoryYaml } from './inventory-generated.ts';

const hostCount = 5_000;
const badMac = '52:54:00:00:00:zz';

let fixture = '';
/** The generated inventory as YAML and as JSON, each with one bad MAC near the end. */
let large = { yaml: '', json: '', badMacPath: '', validYaml: '' };

before(async () => {
  fixture = await readFile(fixturePath, 'utf8');
  const inventory = generatedInventory(hostCount);
  const validYaml = inventoryYaml(inventory);
  const nic = inventory.hosts[hostCount - 10]?.nics[1];
  assert.ok(nic !== undefined);
  nic.mac = badMac;
  large = { yaml: inventoryYaml(inventory), json: inventoryJson(inventory), badMacPath: `hosts[${hostCount - 10}].nics[1].mac`, validYaml };
});

test(`inventory lines - a bad MAC near the end of a ${hostCount}-host inventory is reported at its line`, () => {
  // How long that takes is the benchmark's to show (npm run bench -w @firebreak/shared), not a test's.
  assert.equal(parseInventory(large.validYaml, { format: 'yaml' }).hosts.length, hostCount);
  assert.deepEqual(located(parseError(large.yaml)), [{ path: large.badMacPath, line: lineOf(large.yaml, `mac: ${badMac}`) }]);
});

test(`inventory lines - a bad MAC near the end of a ${hostCount}-host JSON inventory is reported at its line`, () => {
  const err = parseError(large.json, 'json');
  assert.deepEqual(located(err), [{ path: large.badMacPath, line: lineOf(large.json, `"mac": "${badMac}"`) }]);
});

test(`inventory lines - in a ${hostCount}-host inventory a missing field points at its entry, and a cross-reference at its key`, () => {
  const entry = `  - id: r125-h32\n`;
  const role = large.validYaml.indexOf('    role: ', large.validYaml.indexOf(entry));
  const withoutRole = large.validYaml.slice(0, role) + large.validYaml.slice(large.validYaml.indexOf('\n', role) + 1);
  assert.deepEqual(located(parseError(withoutRole)), [{ path: `hosts[${hostCount - 9}].role`, line: lineOf(withoutRole, entry) }]);

  const lastHost = /host: (\S+)\n$/.exec(large.validYaml)?.[1] ?? '';
  const unknownHost = edit(large.validYaml, `host: ${lastHost}\n`, 'host: nowhere\n');
  const err = parseError(unknownHost);
  const assignments = (load(large.validYaml, { schema: CORE_SCHEMA }) as { assignments: unknown[] }).assignments.length;
  assert.deepEqual(located(err), [{ path: `assignments[${assignments - 1}].host`, line: lineOf(unknownHost, 'host: nowhere') }]);
});

test(`inventory lines - a second document after a ${hostCount}-host inventory is reported at its ---`, () => {
  const text = `${large.validYaml}---\nversion: 1\n`;
  assert.deepEqual(located(parseError(text)), [{ path: '(syntax)', line: lineOf(text, '---') }]);
});

test('inventory lines - an empty - entry is reported at its line, and the entries after it keep theirs', () => {
  let text = edit(fixture, '  - id: r1-h2\n', '  -\n  - id: r1-h2\n');
  text = edit(text, 'mac: 52:54:00:00:02:01', 'mac: 52:54:00:00:02');
  const err = parseError(text);
  assert.deepEqual(located(err), [
    { path: 'hosts[1]', line: lineOf(fixture, '  - id: r1-h2') },
    { path: 'hosts[4].nics[0].mac', line: lineOf(fixture, 'mac: 52:54:00:00:02:01') + 1 },
  ]);
});

/**
 * What the locator answered before it was rewritten: the line where `yaml`'s
 * document tree has each path, following aliases. Too slow for a large file,
 * it is the reference for small ones.
 */
function treeLineOf(text: string): (path: FieldPath) => number | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const startOf = (node: unknown) => (isNode(node) ? node.range?.[0] : undefined);
  return (path) => {
    let node: unknown = doc.contents;
    let offset = startOf(node);
    for (const key of path) {
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(key));
        if (pair === undefined) break;
        offset = startOf(pair.key) ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof key === 'number') {
        node = node.items[key];
        offset = startOf(node) ?? offset;
      } else {
        break;
      }
    }
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
}

/** Every path into `value`, and one past the end of each collection: a missing key, an index out of range. */
function pathsOf(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  const paths = [path];
  if (Array.isArray(value)) {
    value.forEach((item, index) => paths.push(...pathsOf(item, [...path, index])));
    paths.push([...path, value.length]);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...path, key]));
    paths.push([...path, 'absent']);
  }
  return paths;
}

/** YAML an operator might write that the lab's generator never does. */
const unusual = `# A comment before the root
---
list:
  -
  - a
  -   # an empty entry with a comment
  - ~
  - - x
    -
    - y
  - [p, [q,
      r]]
  -
    [s, t]
  - { k: 1,
      l: [2, 3] }
  - &entry { k: 2 }
  - *entry
  -
same indent:
- a
-
- b
flow: {
  b: 1,
  "c d" : [ 1,
    { e: 3 } ],
  f
}
tagged: !!map
  g: 1
explicit:
  ? h
  : 4
text: |
  - not an entry
  k: not a key
base: &base
  m: 1
  n:
    o: &inner { p: 2 }
    q: &list [1,
      2]
seqs: &seqs [[1], [2,
  3]]
uses:
  whole: *base
  inner: *inner
  list: *list
  entries:
    - *base
    - *list
    - *seqs
  next line:
    *base
  nested: &nested
    again: *base
  twice: *nested
`;

test('inventory lines - every path is placed where a full document tree places it, in YAML of any style and in JSON', () => {
  const data = load(fixture, { schema: CORE_SCHEMA });
  const texts: [string, string, unknown][] = [
    ['the fixture', fixture, data],
    ['the fixture with CRLF line ends', fixture.replace(/\n/g, '\r\n'), data],
    ['the fixture in block style', stringify(data), data],
    ['the fixture as indented JSON', JSON.stringify(data, null, 2), data],
    ['the fixture as JSON on one line', JSON.stringify(data), data],
    ['unusual YAML', unusual, load(unusual, { schema: CORE_SCHEMA })],
  ];
  for (const [name, text, value] of texts) {
    const paths = pathsOf(value);
    const expected = treeLineOf(text);
    const all = lineLocator(text, value, paths);
    for (const path of paths) {
      const want = expected(path);
      assert.equal(lineLocator(text, value, [path])(path), want, `${name}: ${JSON.stringify(path)} asked alone`);
      assert.equal(all(path), want, `${name}: ${JSON.stringify(path)} asked with every other path`);
    }
  }
});
