import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DrillReport, IncidentProgress } from '@firebreak/shared';
import { durationText, renderDrillOutcome, worstRto } from '../src/drill-view.ts';

test('cli drill view - durations to the second under an hour, to the minute above', () => {
  assert.deepEqual([0, 38_000, 60_000, 252_000, 1_800_000, 3_600_000, 3_720_000, 7_200_000].map(durationText), ['0s', '38s', '1m', '4m12s', '30m', '1h', '1h02m', '2h']);
});

const server = (name: string, rto: number | null, target: number): DrillReport['servers'][number] => ({
  server: name,
  host: 'h1',
  outcome: rto === null ? 'unrecovered' : 'recovered',
  detectMs: 0,
  fenceMs: null,
  planMs: 1,
  heartbeatMs: rto === null ? null : rto * 1000,
  rtoSeconds: rto,
  rtoTargetSeconds: target,
});

test('cli drill view - the worst RTO is a server not up, else the one nearest (or furthest past) its target', () => {
  assert.equal(worstRto({ servers: [server('a', 100, 900), server('b', 50, 60)] }), '50.0s/60s b');
  assert.equal(worstRto({ servers: [server('a', 100, 90), server('b', 50, 60)] }), '100.0s/90s a OVER');
  assert.equal(worstRto({ servers: [server('a', 100, 90), server('b', null, 60)] }), 'b not up');
  assert.equal(worstRto({ servers: [] }), '-');
});

test('cli drill view - the outcome says what cleanup restored, and on failure every thing left', () => {
  const p: IncidentProgress = {
    incidentId: 'drill-x',
    site: 'site1',
    phase: 'recovered',
    trigger: 'drill',
    openedAt: 0,
    at: 1,
    hosts: ['r2-h01'],
    servers: [],
    report: [{ server: 'a', outcome: 'recovered', detectMs: 0, fenceMs: null, planMs: 1, heartbeatMs: 1, rtoSeconds: 1, rtoTargetSeconds: 60 }],
    cleanup: { complete: true, restored: [{ host: 'r3-h07', what: 'host returned' }], left: [] },
  };
  assert.deepEqual(renderDrillOutcome(p), ['cleanup: restored everything (1 restored, 0 left)', '  restored: host returned (host r3-h07)', 'drill passed: 1 of 1 servers recovered and cleanup restored everything']);
  assert.deepEqual(renderDrillOutcome({ ...p, phase: 'failed', message: 'cleanup left work undone', cleanup: { complete: false, restored: [], left: [{ what: 'VM web-01 still defined', host: 'r2-h08' }] } }), [
    'cleanup: INCOMPLETE (0 restored, 1 left)',
    'drill FAILED; what is left:',
    '  - the drill ended failed: cleanup left work undone',
    '  - cleanup left: VM web-01 still defined (host r2-h08)',
  ]);
  assert.equal(renderDrillOutcome({ ...p, cleanup: undefined })[0], 'cleanup: the planner did not report what it restored');
});
