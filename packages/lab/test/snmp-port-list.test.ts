import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePortList, encodePortList } from '../src/snmp/port-list.ts';

test('snmp port list - port 1 is the most significant bit of the first octet', () => {
  assert.deepEqual(encodePortList([1], 2), Buffer.from([0x80, 0x00]));
  assert.deepEqual(encodePortList([8, 9, 16], 2), Buffer.from([0x01, 0x81]));
  assert.deepEqual(encodePortList([], 1), Buffer.from([0x00]));
});

test('snmp port list - decoding gives back the ports, in order', () => {
  assert.deepEqual(decodePortList(Buffer.from([0x01, 0x81])), [8, 9, 16]);
  assert.deepEqual(decodePortList(encodePortList([3, 1, 24], 3)), [1, 3, 24]);
  assert.deepEqual(decodePortList(Buffer.alloc(0)), []);
});

test('snmp port list - a port beyond the list is refused, not dropped', () => {
  assert.throws(() => encodePortList([9], 1), RangeError);
  assert.throws(() => encodePortList([0], 1), RangeError);
});
