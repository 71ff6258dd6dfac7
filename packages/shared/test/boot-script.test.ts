import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootCommand, parseBootScript, renderBootScript, sameBootAttach } from '../src/index.ts';
import { sampleCommand } from '../src/testing/index.ts';

const base = { mac: '52:54:00:00:01:03', server: 'db1', image: 'rhel9', imageUrl: 'http://127.0.0.1:1/images/rhel9.ipxe' };
const { mac: _mac, ...identity } = base;

test('boot-script - a script without attach has no fb-vlans or fb-luns and parses back without attach', () => {
  const text = renderBootScript(base);
  assert.doesNotMatch(text, /fb-vlans|fb-luns/);
  assert.deepEqual(parseBootScript(text), identity);
  assert.equal('attach' in parseBootScript(text), false);
});

test("boot-script - attach renders as fb-vlans and fb-luns before the chain, and parses back", () => {
  const attach = { vlans: [2101, 2102], luns: ['lun-db1-d-0123456789ab', 'lun-log1-d-0123456789ab'] };
  const text = renderBootScript({ ...base, attach });
  assert.match(text, /^set fb-vlans 2101,2102$/m);
  assert.match(text, /^set fb-luns lun-db1-d-0123456789ab,lun-log1-d-0123456789ab$/m);
  assert.ok(text.indexOf('set fb-luns') < text.indexOf('chain '), 'settings come before the chain that leaves the script');
  assert.deepEqual(parseBootScript(text), { ...identity, attach });
});

test('boot-script - attach with no LUNs renders no fb-luns line and parses back with an empty LUN list', () => {
  const text = renderBootScript({ ...base, attach: { vlans: [2101], luns: [] } });
  assert.doesNotMatch(text, /fb-luns/);
  assert.deepEqual(parseBootScript(text), { ...identity, attach: { vlans: [2101], luns: [] } });
});

test('boot-script - a script whose attach settings are malformed is refused naming the setting', () => {
  const good = renderBootScript(base);
  const withLines = (...lines: string[]) => good.replace(/^chain /m, `${lines.join('\n')}\nchain `);
  assert.throws(() => parseBootScript(withLines('set fb-luns lun-a')), /sets fb-luns but no fb-vlans/);
  assert.throws(() => parseBootScript(withLines('set fb-vlans 20,x')), /fb-vlans is not a comma-separated list of VLAN ids/);
  assert.throws(() => parseBootScript(withLines('set fb-vlans 5000')), /fb-vlans .*VLAN ids run 1-4094/);
  assert.throws(() => parseBootScript(withLines('set fb-vlans 20', 'set fb-luns a,,b')), /fb-luns is not a comma-separated list of LUN ids/);
});

test('boot-script - attachments compare as sets; none equals only none', () => {
  assert.ok(sameBootAttach(undefined, undefined));
  assert.ok(!sameBootAttach(undefined, { vlans: [20], luns: [] }));
  assert.ok(!sameBootAttach({ vlans: [20], luns: [] }, undefined));
  assert.ok(sameBootAttach({ vlans: [20, 30], luns: ['a', 'b'] }, { vlans: [30, 20], luns: ['b', 'a'] }));
  assert.ok(!sameBootAttach({ vlans: [20], luns: ['a'] }, { vlans: [20], luns: ['b'] }));
  assert.ok(!sameBootAttach({ vlans: [20], luns: ['a'] }, { vlans: [20, 30], luns: ['a'] }));
});

test('boot-script - a boot configure command takes an optional attach and refuses a bad one naming the field', () => {
  const command = sampleCommand('boot');
  assert.equal(BootCommand.parse(command).action, 'configure');
  const attached = BootCommand.parse({ ...command, attach: { vlans: [3200], luns: ['lun-db1-d-0123456789ab'] } });
  assert.ok(attached.action === 'configure');
  assert.deepEqual(attached.attach, { vlans: [3200], luns: ['lun-db1-d-0123456789ab'] });

  const noVlan = BootCommand.safeParse({ ...command, attach: { vlans: [], luns: [] } });
  assert.ok(!noVlan.success);
  assert.deepEqual(noVlan.error.issues[0]?.path, ['attach', 'vlans']);
  const badLun = BootCommand.safeParse({ ...command, attach: { vlans: [3200], luns: ['lun a'] } });
  assert.ok(!badLun.success);
  assert.deepEqual(badLun.error.issues[0]?.path, ['attach', 'luns', 0]);
});
