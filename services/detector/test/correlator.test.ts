import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Inventory, type FailureDomain } from '@firebreak/shared';
import { sampleInventory } from '@firebreak/shared/testing';
import { Correlator, type FailureCandidate } from '../src/correlation/correlator.ts';
import { buildDomainMap } from '../src/correlation/failure-domains.ts';

/** Racks r1 and r2 share PDU "pA"; r3 has its own. Eight hosts per rack. */
function inventory(): Inventory {
  const base = sampleInventory();
  assert.ok(base.hosts[0]);
  // Domains come from the racks here, not from per-host overrides.
  const { pdu: _pdu, tor: _tor, ...template } = base.hosts[0];
  const racks = [
    { id: 'r1', site: 'site1', pdu: 'pA', tor: 'r1-tor' },
    { id: 'r2', site: 'site1', pdu: 'pA', tor: 'r2-tor' },
    { id: 'r3', site: 'site1', pdu: 'pB', tor: 'r3-tor' },
  ];
  const hosts = racks.flatMap((r, ri) =>
    Array.from({ length: 8 }, (_, i) => ({
      ...template,
      id: `${r.id}-h${i + 1}`,
      rack: r.id,
      nics: [{ mac: `52:54:00:00:${ri.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`, switch: 'sw', port: ri * 8 + i + 1 }],
    })),
  );
  return Inventory.parse({ ...base, racks, hosts, assignments: [], servers: [] });
}

function harness(opts: { overdue?: Set<string>; monitored?: Set<string> } = {}) {
  const inv = inventory();
  let now = 0;
  const hosts: string[] = [];
  const domains: { domain: FailureDomain; hosts: string[] }[] = [];
  const correlator = new Correlator({
    domains: buildDomainMap(inv),
    windowMs: 100,
    maxHoldMs: 1_500,
    minHosts: 3,
    minFraction: 0.5,
    isMonitored: (h) => opts.monitored?.has(h) ?? true,
    mayFail: (h) => opts.overdue?.has(h) ?? false,
    clock: () => now,
    emitHost: (c) => hosts.push(c.host),
    emitDomain: (domain, failures) => domains.push({ domain, hosts: failures.map((f) => f.host) }),
  });
  const fail = (host: string): void =>
    correlator.add({ host, cause: 'heartbeat-lost', evidence: {}, epoch: 1, confirmedAt: now } satisfies FailureCandidate);
  const at = (t: number): boolean => {
    now = t;
    return correlator.evaluate(t);
  };
  return { correlator, fail, at, hosts, domains };
}

test('detector correlator - one dead host is reported alone after the gather window', () => {
  const h = harness();
  h.fail('r1-h1');
  assert.equal(h.at(50), false, 'still gathering');
  assert.equal(h.at(100), true);
  assert.deepEqual(h.hosts, ['r1-h1']);
  assert.deepEqual(h.domains, []);
  h.correlator.stop();
});

test('detector correlator - a burned rack becomes exactly one domain failure naming exactly its hosts', () => {
  const h = harness();
  for (let i = 1; i <= 8; i++) h.fail(`r3-h${i}`);
  h.at(100);
  assert.equal(h.domains.length, 1);
  assert.deepEqual(h.domains[0]?.domain, { kind: 'rack', id: 'r3', site: 'site1' });
  assert.deepEqual(h.domains[0]?.hosts, Array.from({ length: 8 }, (_, i) => `r3-h${i + 1}`));
  assert.deepEqual(h.hosts, []);
  h.correlator.stop();
});

test('detector correlator - two deaths in one rack stay two host failures (below the threshold)', () => {
  const h = harness();
  h.fail('r1-h1');
  h.fail('r1-h5');
  h.at(100);
  assert.deepEqual(h.hosts.sort(), ['r1-h1', 'r1-h5']);
  assert.deepEqual(h.domains, []);
  h.correlator.stop();
});

test('detector correlator - waits for overdue rack-mates, then reports them together', () => {
  const overdue = new Set(['r3-h5', 'r3-h6', 'r3-h7', 'r3-h8']);
  const h = harness({ overdue });
  for (let i = 1; i <= 4; i++) h.fail(`r3-h${i}`);
  assert.equal(h.at(400), false, 'held: rack-mates are overdue');
  for (let i = 5; i <= 8; i++) {
    overdue.delete(`r3-h${i}`);
    h.fail(`r3-h${i}`);
  }
  assert.equal(h.at(900), true);
  assert.equal(h.domains.length, 1);
  assert.equal(h.domains[0]?.hosts.length, 8);
  h.correlator.stop();
});

test('detector correlator - never holds longer than maxHold for a neighbour that never expires', () => {
  const h = harness({ overdue: new Set(['r1-h2']) });
  h.fail('r1-h1');
  assert.equal(h.at(1_000), false);
  assert.equal(h.at(1_500), true);
  assert.deepEqual(h.hosts, ['r1-h1']);
  h.correlator.stop();
});

test('detector correlator - a PDU feeding two racks fails as the PDU, not as two racks', () => {
  const h = harness();
  for (const r of ['r1', 'r2']) for (let i = 1; i <= 8; i++) h.fail(`${r}-h${i}`);
  h.at(100);
  assert.equal(h.domains.length, 1);
  assert.deepEqual(h.domains[0]?.domain, { kind: 'pdu', id: 'pA', site: 'site1' });
  assert.equal(h.domains[0]?.hosts.length, 16);
  h.correlator.stop();
});

test('detector correlator - the share counts only monitored hosts (powered-off spares do not dilute a rack)', () => {
  const monitored = new Set(['r3-h1', 'r3-h2', 'r3-h3']);
  const h = harness({ monitored });
  for (const id of monitored) h.fail(id);
  h.at(100);
  assert.deepEqual(h.domains[0]?.domain.id, 'r3');
  h.correlator.stop();
});
