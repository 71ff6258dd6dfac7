/** The e2e suite's safety checks must catch what they claim to catch. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LabEvent } from '@firebreak/lab';
import type { Server } from '@firebreak/shared';
import { checkFencedBeforeGrant, checkNoDuplicateActions } from '../src/recovery-checks.ts';

const server = { id: 'db-01', luns: ['lun-1'] } as unknown as Server;
const lost = [{ server, formerHost: 'old' }];
const log = (...events: Omit<LabEvent, 'seq' | 'at'>[]): LabEvent[] => events.map((e, i) => ({ ...e, seq: i + 1, at: i }));
const grant: Omit<LabEvent, 'seq' | 'at'> = { source: 'san', action: 'grant', host: 'new', detail: { lun: 'lun-1', initiator: 'iqn.new' } };

test('recovery-checks - a grant after the old host lost that LUN on the SAN is fenced', () => {
  assert.deepEqual(checkFencedBeforeGrant(log({ source: 'san', action: 'revoke-all', host: 'old', detail: { luns: ['lun-1'] } }, grant), lost), []);
  assert.deepEqual(checkFencedBeforeGrant(log({ source: 'san', action: 'revoke', host: 'old', detail: { lun: 'lun-1' } }, grant), lost), []);
});

test('recovery-checks - a grant after a BMC power-off that took effect is fenced', () => {
  assert.deepEqual(checkFencedBeforeGrant(log({ source: 'bmc', action: 'power-off', host: 'old' }, { source: 'host', action: 'powered-off', host: 'old' }, grant), lost), []);
});

test('recovery-checks - a grant before the fence, after a revoke of other LUNs, or while the host is still on is caught', () => {
  const cases: Omit<LabEvent, 'seq' | 'at'>[][] = [
    [grant, { source: 'san', action: 'revoke-all', host: 'old', detail: { luns: ['lun-1'] } }],
    [{ source: 'san', action: 'revoke-all', host: 'old', detail: { luns: ['lun-9'] } }, grant],
    [{ source: 'switch', action: 'set-admin', host: 'old', detail: { admin: 'down' } }, grant],
    [{ source: 'bmc', action: 'power-off', host: 'old' }, grant],
    [{ source: 'host', action: 'powered-off', host: 'old' }, grant],
  ];
  for (const events of cases) assert.equal(checkFencedBeforeGrant(log(...events), lost).length, 1, JSON.stringify(events));
});

test('recovery-checks - a power-on, LUN grant or VM start done twice is reported', () => {
  const twice = checkNoDuplicateActions(log({ source: 'bmc', action: 'power-on', host: 'h1' }, grant, { source: 'bmc', action: 'power-on', host: 'h1' }, grant));
  assert.deepEqual(twice, ['h1 powered on 2 times', 'LUN lun-1 granted to iqn.new 2 times']);
});

test('recovery-checks - a host that died with its BMC answering is fenced by being off; once its BMC is dark, only a revoke fences it', () => {
  const died = { source: 'fault', action: 'kill-host', host: 'old' } as const;
  const off = { source: 'host', action: 'powered-off', host: 'old' } as const;
  assert.deepEqual(checkFencedBeforeGrant(log(died, off, grant), lost), []);
  assert.equal(checkFencedBeforeGrant(log(died, off, { source: 'fault', action: 'bmc-unreachable', host: 'old' }, grant), lost).length, 1);
  assert.equal(checkFencedBeforeGrant(log(died, off, { source: 'host', action: 'powered-on', host: 'old' }, grant), lost).length, 1);
});
