/**
 * Issue #15: two racks burned 200 ms apart became one domain.failed and 34
 * host.failed. These tests play a burn out on a simulated clock, host by
 * host: each heartbeats at its own phase of the period, stops at the burn,
 * is noticed (link trap or expired heartbeats), has its BMC probed, and only
 * then reaches the correlator, while the correlator asks about the others
 * exactly as the detector does (mateMayFail).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Inventory, type FailureDomain } from '@firebreak/shared';
import { sampleInventory } from '@firebreak/shared/testing';
import { Correlator } from '../src/correlation/correlator.ts';
import { buildDomainMap } from '../src/correlation/failure-domains.ts';
import { mateMayFail, maxHoldMs, type MateState } from '../src/correlation/mate-may-fail.ts';

const INTERVAL = 1_000;
const MISSED = 3;
const WINDOW = 100;
const BMC_TIMEOUT = 1_000;
const HOSTS_PER_RACK = 40;
const RACKS = ['r1', 'r2', 'r3', 'r4'];
const STEP = 5;

/** Four racks of 40, each with its own PDU and ToR, as the lab's "rack" size. */
function inventory(): Inventory {
  const base = sampleInventory();
  assert.ok(base.hosts[0]);
  const { pdu: _pdu, tor: _tor, ...template } = base.hosts[0];
  const racks = RACKS.map((id) => ({ id, site: 'site1', pdu: `${id}-pdu`, tor: `${id}-tor` }));
  const hosts = racks.flatMap((r, ri) =>
    Array.from({ length: HOSTS_PER_RACK }, (_, i) => ({
      ...template,
      id: `${r.id}-h${String(i + 1).padStart(2, '0')}`,
      rack: r.id,
      nics: [{ mac: `52:54:00:00:${ri.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`, switch: 'sw', port: ri * HOSTS_PER_RACK + i + 1 }],
    })),
  );
  return Inventory.parse({ ...base, racks, hosts, assignments: [], servers: [] });
}

interface Scenario {
  /** Rack → when it burns. */
  burns?: Record<string, number>;
  /** Single hosts killed → when. */
  kills?: Record<string, number>;
  /** How each death is noticed: a link trap soon after, or its heartbeats expiring. */
  noticed: 'trap' | 'heartbeat';
  /** Delay of the trap after the death, per host (traps trickle in under load); null: the trap was lost. */
  trapDelayMs?: (host: string, index: number) => number | null;
  /** How long the BMC probe takes (a dead BMC answers nothing until the timeout). */
  probeMs: (host: string, index: number) => number;
  untilMs: number;
}

interface Outcome {
  domains: { domain: FailureDomain; hosts: string[]; at: number }[];
  hosts: { host: string; at: number }[];
  /** When each failed host was confirmed (handed to the correlator). */
  confirmedAt: Map<string, number>;
}

function simulate(s: Scenario): Outcome {
  const inv = inventory();
  const ids = inv.hosts.map((h) => h.id);
  // Heartbeats spread across the period, as agents started at different moments send them.
  const phase = new Map(ids.map((id, i) => [id, (i * 379) % INTERVAL]));
  const diesAt = new Map<string, number>();
  for (const [rack, at] of Object.entries(s.burns ?? {})) for (const id of ids) if (id.startsWith(`${rack}-`)) diesAt.set(id, at);
  for (const [id, at] of Object.entries(s.kills ?? {})) diesAt.set(id, at);

  const lastHeard = (id: string, now: number): number => {
    const until = Math.min(now, (diesAt.get(id) ?? Infinity) - 1);
    const p = phase.get(id) as number;
    return p + Math.floor((until - p) / INTERVAL) * INTERVAL;
  };
  // When the detector first doubts the host, and when the probe hands it to the correlator.
  const noticedAt = new Map<string, number>();
  const confirmAt = new Map<string, number>();
  [...diesAt.keys()].forEach((id, i) => {
    const died = diesAt.get(id) as number;
    const trapDelay = s.noticed === 'trap' ? (s.trapDelayMs?.(id, i) ?? 0) : null;
    // Without a trap, the host is noticed when its heartbeats expire.
    const noticed = trapDelay !== null ? died + trapDelay : lastHeard(id, died) + MISSED * INTERVAL;
    noticedAt.set(id, noticed);
    confirmAt.set(id, noticed + s.probeMs(id, i));
  });

  let now = 0;
  const doubt = new Map<string, MateState['doubt']>();
  const out: Outcome = { domains: [], hosts: [], confirmedAt: new Map() };
  const correlator = new Correlator({
    domains: buildDomainMap(inv),
    windowMs: WINDOW,
    maxHoldMs: maxHoldMs(MISSED * INTERVAL, BMC_TIMEOUT, WINDOW),
    minHosts: 3,
    minFraction: 0.5,
    isMonitored: () => true,
    mayFail: (id, quietForMs) => mateMayFail({ armed: true, doubt: doubt.get(id), silenceMs: now - lastHeard(id, now) }, INTERVAL, quietForMs),
    clock: () => now,
    emitHost: (c) => {
      doubt.set(c.host, 'failed');
      out.hosts.push({ host: c.host, at: now });
    },
    emitDomain: (domain, failures) => {
      for (const c of failures) doubt.set(c.host, 'failed');
      out.domains.push({ domain, hosts: failures.map((c) => c.host), at: now });
    },
  });
  for (; now <= s.untilMs; now += STEP) {
    for (const [id, at] of noticedAt) if (at <= now && !doubt.has(id)) doubt.set(id, 'probing');
    for (const [id, at] of confirmAt) {
      if (at <= now && doubt.get(id) === 'probing') {
        doubt.set(id, 'pending');
        out.confirmedAt.set(id, now);
        correlator.add({ host: id, cause: 'bmc-unreachable', evidence: {}, epoch: diesAt.get(id) as number, confirmedAt: now });
      }
    }
    correlator.evaluate(now);
  }
  correlator.stop();
  return out;
}

const rackHosts = (rack: string): string[] => Array.from({ length: HOSTS_PER_RACK }, (_, i) => `${rack}-h${String(i + 1).padStart(2, '0')}`);

function assertOneDomainPerRack(out: Outcome, racks: string[]): void {
  assert.deepEqual(out.hosts, [], `no host.failed, got ${out.hosts.length}: ${out.hosts.map((h) => h.host).join(' ')}`);
  assert.deepEqual(
    out.domains.map((d) => `${d.domain.kind} ${d.domain.id}`).sort(),
    racks.map((r) => `rack ${r}`),
    'exactly one domain.failed per burned rack',
  );
  for (const d of out.domains) assert.deepEqual([...d.hosts].sort(), rackHosts(d.domain.id), `${d.domain.id} names every host`);
}

test('detector correlator - two racks burned 200 ms apart, noticed by link traps that trickle in: one domain.failed each', () => {
  const out = simulate({
    burns: { r1: 1_000, r2: 1_200 },
    noticed: 'trap',
    // Under load the receiver and the probes get through a rack in ~400 ms.
    trapDelayMs: (_h, i) => (i % HOSTS_PER_RACK) * 10,
    probeMs: () => 20,
    untilMs: 6_000,
  });
  assertOneDomainPerRack(out, ['r1', 'r2']);
});

test('detector correlator - two racks burned 200 ms apart, noticed by heartbeats, dead BMCs answering nothing: one domain.failed each', () => {
  const out = simulate({ burns: { r3: 1_000, r4: 1_200 }, noticed: 'heartbeat', probeMs: () => BMC_TIMEOUT, untilMs: 8_000 });
  assertOneDomainPerRack(out, ['r3', 'r4']);
});

test('detector correlator - two racks burned 200 ms apart, heartbeats, BMC probes of uneven length: one domain.failed each', () => {
  const out = simulate({ burns: { r1: 1_000, r2: 1_200 }, noticed: 'heartbeat', probeMs: (_h, i) => (i * 37) % BMC_TIMEOUT, untilMs: 8_000 });
  assertOneDomainPerRack(out, ['r1', 'r2']);
});

test('detector correlator - a rack whose traps were partly lost: those hosts are waited for until their heartbeats expire', () => {
  const out = simulate({
    burns: { r2: 1_000 },
    noticed: 'trap',
    trapDelayMs: (_h, i) => (i % 9 === 0 ? null : i * 3),
    probeMs: () => 20,
    untilMs: 8_000,
  });
  assertOneDomainPerRack(out, ['r2']);
});

test('detector correlator - four racks burned within a second: one domain.failed each', () => {
  const out = simulate({
    burns: { r1: 1_000, r2: 1_300, r3: 1_600, r4: 1_900 },
    noticed: 'trap',
    trapDelayMs: (_h, i) => (i * 7) % 300,
    probeMs: (_h, i) => 5 + (i % 50),
    untilMs: 8_000,
  });
  assertOneDomainPerRack(out, ['r1', 'r2', 'r3', 'r4']);
});

test('detector correlator - a lone host is still reported after the gather window alone, however it was noticed', () => {
  for (const noticed of ['trap', 'heartbeat'] as const) {
    const out = simulate({ kills: { 'r2-h07': 1_000 }, noticed, probeMs: () => 20, untilMs: 6_000 });
    assert.deepEqual(out.domains, [], noticed);
    assert.deepEqual(out.hosts.map((h) => h.host), ['r2-h07'], noticed);
    const confirmed = out.confirmedAt.get('r2-h07') as number;
    assert.ok((out.hosts[0]?.at as number) - confirmed <= WINDOW + STEP, `${noticed}: reported ${(out.hosts[0]?.at as number) - confirmed} ms after confirmation`);
  }
});

test('detector correlator - a lone death while a rack elsewhere burns is neither held nor swallowed', () => {
  const out = simulate({
    burns: { r1: 1_000 },
    kills: { 'r3-h05': 1_100 },
    noticed: 'trap',
    trapDelayMs: (_h, i) => (i % HOSTS_PER_RACK) * 10,
    probeMs: () => 20,
    untilMs: 6_000,
  });
  assert.deepEqual(out.hosts.map((h) => h.host), ['r3-h05']);
  assert.ok((out.hosts[0]?.at as number) - (out.confirmedAt.get('r3-h05') as number) <= WINDOW + STEP, 'not held by the other rack');
  assert.deepEqual(out.domains.map((d) => d.domain.id), ['r1']);
});

test('detector correlator - two hosts of a rack die together: held until the rest of the rack is heard, then two host failures', () => {
  const out = simulate({ kills: { 'r4-h01': 1_000, 'r4-h02': 1_000 }, noticed: 'trap', probeMs: () => 20, untilMs: 6_000 });
  assert.deepEqual(out.domains, []);
  assert.deepEqual(out.hosts.map((h) => h.host).sort(), ['r4-h01', 'r4-h02']);
  const confirmed = out.confirmedAt.get('r4-h01') as number;
  // Every live mate heartbeats within a period of the first failure; then nothing is left in doubt.
  for (const h of out.hosts) assert.ok(h.at - confirmed <= INTERVAL + WINDOW, `reported ${h.at - confirmed} ms after confirmation`);
});
