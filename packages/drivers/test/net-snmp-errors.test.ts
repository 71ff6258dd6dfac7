import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { snmp } from '../src/net/net-snmp.ts';
import { hasPort, portsIn, samePorts, withPort } from '../src/net/port-list.ts';
import { parseAddress } from '../src/net/snmp-client.ts';
import { snmpError, type SnmpContext } from '../src/net/snmp-errors.ts';

const ctx: SnmpContext = { operation: 'set', switchId: 'sw1', address: '10.0.0.2:161', credentialsRef: 'env:SW1', timeoutMs: 1_000, retries: 1 };
const SECRET = 'Sw1-Community-Secret';
const failed = (message: string, status: number) => new (snmp.RequestFailedError as unknown as new (m: string, s: number) => Error)(message, status);

describe('net-snmp errors', () => {
  test('net-snmp errors - refusals of the value are permanent and name the SNMP status and the object', () => {
    for (const [status, name, object] of [
      [snmp.ErrorStatus['InconsistentValue'], 'inconsistentValue', 'dot1qPvid.2'],
      [snmp.ErrorStatus['WrongValue'], 'wrongValue', 'dot1qVlanStaticEgressPorts.10'],
      [snmp.ErrorStatus['NotWritable'], 'notWritable', 'ifOperStatus.1'],
    ] as const) {
      const oid = { 'dot1qPvid.2': '1.3.6.1.2.1.17.7.1.4.5.1.1.2', 'dot1qVlanStaticEgressPorts.10': '1.3.6.1.2.1.17.7.1.4.3.1.2.10', 'ifOperStatus.1': '1.3.6.1.2.1.2.2.1.8.1' }[object];
      const err = snmpError(ctx, failed(`${String(snmp.ErrorStatus[Number(status)])}: ${oid}`, Number(status)), SECRET);
      assert.equal(err.retryable, false, name);
      assert.equal(err.message, `snmp set on switch sw1 at udp 10.0.0.2:161: the switch answered ${name} for ${object}`);
      assert.deepEqual(err.messageIds, [name]);
    }
  });

  test('net-snmp errors - a busy agent and silence are retryable', () => {
    assert.equal(snmpError(ctx, failed('ResourceUnavailable', snmp.ErrorStatus.ResourceUnavailable), SECRET).retryable, true);
    assert.equal(snmpError(ctx, failed('GeneralError', snmp.ErrorStatus.GeneralError), SECRET).retryable, true);
    const timeout = snmpError(ctx, new (snmp.RequestTimedOutError as unknown as new (m: string) => Error)('Request timed out'), SECRET);
    assert.equal(timeout.code, 'TIMEOUT');
    assert.match(timeout.message, /no answer within 2000 ms \(2 attempts\)/);
  });

  test('net-snmp errors - net-snmp messages that quote the community are scrubbed from the cause', () => {
    const invalid = new (snmp.ResponseInvalidError as unknown as new (m: string) => Error)(`Community '${SECRET}' in request does not match community 'x' in response`);
    const err = snmpError(ctx, invalid, SECRET);
    assert.equal(err.retryable, true);
    assert.ok(!`${err.message} ${inspect(err, { depth: 5 })}`.includes(SECRET));
    assert.match((err.cause as Error).message, /Community '\[REDACTED\]'/);
  });

  test('net-snmp errors - PortList bits: port 1 is the top bit of the first octet; a copy grows to fit', () => {
    const list = Buffer.from([0x80, 0x01]);
    assert.equal(hasPort(list, 1), true);
    assert.equal(hasPort(list, 16), true);
    assert.equal(hasPort(list, 2), false);
    assert.equal(hasPort(list, 40), false);
    assert.deepEqual(withPort(list, 2, true, 2), Buffer.from([0xc0, 0x01]));
    assert.deepEqual(withPort(list, 1, false, 2), Buffer.from([0x00, 0x01]));
    assert.deepEqual(withPort(undefined, 9, true, 1), Buffer.from([0x00, 0x80]));
    assert.deepEqual(list, Buffer.from([0x80, 0x01]), 'the switch’s list is not modified');
    assert.deepEqual(portsIn(list), [1, 16]);
    assert.deepEqual(portsIn(undefined), []);
    assert.equal(samePorts(Buffer.from([0x80]), Buffer.from([0x80, 0x00, 0x00])), true, 'padding is no port');
    assert.equal(samePorts(undefined, Buffer.alloc(4)), true, 'no list and an empty one name no ports alike');
    assert.equal(samePorts(list, Buffer.from([0x80])), false);
  });

  test('net-snmp errors - switch addresses are host:port, [v6]:port or a host for port 161', () => {
    assert.deepEqual(parseAddress('10.0.0.2:1161'), { host: '10.0.0.2', port: 1161, transport: 'udp4' });
    assert.deepEqual(parseAddress('[fd00::2]:161'), { host: 'fd00::2', port: 161, transport: 'udp6' });
    assert.deepEqual(parseAddress('tor-1.example'), { host: 'tor-1.example', port: 161, transport: 'udp4' });
    assert.throws(() => parseAddress('10.0.0.2:99999'), /not host:port/);
  });
});
