import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainFailed, HostFailed, type Command, type IncidentProgress, type Inventory } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { IncidentManager } from '../src/incident-manager.ts';
import { referenceFleet } from '../src/readiness/testing/reference-fleet.ts';
import { FakeEffects, memoryStore, quietLogger, succeeded } from './fake-effects.ts';

function manager(inventory: Inventory, effects: FakeEffects, closed: string[]): IncidentManager {
  return new IncidentManager({
    inventory,
    store: memoryStore(),
    effects,
    logger: quietLogger,
    fencingToken: () => 1,
    actor: { stepTimeoutMs: 5_000, heartbeatTimeoutMs: 5_000 },
    input: { retryBaseMs: 1 },
    onIncidentClosed: (id, outcome) => void closed.push(`${id} ${outcome}`),
  });
}

/** Holds the commands it is asked about until opened. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

const hostFailed = (host: string, epoch: number, at = 10): HostFailed =>
  HostFailed.parse({ host, site: 'dc1', rack: host.split('-')[0], epoch, cause: 'heartbeat-lost', detectedAt: at, detector: 'test', evidence: { lastHeartbeatAt: at - 5 } });

const rackFailed = (rack: string, hosts: string[], epoch: number, firstFailureAt = 5, detectedAt = 10): DomainFailed =>
  DomainFailed.parse({ domain: { kind: 'rack', id: rack, site: 'dc1' }, hosts, causes: ['heartbeat-lost'], firstFailureAt, detectedAt, epoch, detector: 'test' });

const fenceOf = (host: string) => (c: Command) => c.kind === 'power' && c.action === 'off' && c.host === host;
const incidentsIn = (progress: readonly IncidentProgress[]): string[] => [...new Set(progress.map((p) => p.incidentId))].sort();
const finalReport = (progress: readonly IncidentProgress[], incidentId: string) => progress.find((p) => p.incidentId === incidentId && p.report !== undefined);

const fleet = referenceFleet();
const r9 = fleet.hosts.filter((h) => h.rack === 'r9').map((h) => h.id);
const serversOn = (hosts: readonly string[]): string[] => fleet.assignments.filter((a) => a.mode === 'bare-metal' && hosts.includes(a.host)).map((a) => a.server).sort();

test('incident manager - a rack failure reported while an incident in that rack is still fencing joins it: one incident recovers the rack', async () => {
  const effects = new FakeEffects();
  const fence = gate();
  effects.answer = async (c) => {
    if (c.kind === 'power' && c.action === 'off' && r9.includes(c.host)) await fence.wait();
    return succeeded;
  };
  const closed: string[] = [];
  const planner = manager(fleet, effects, closed);
  planner.onHostFailed(hostFailed('r9-h01', 1));
  await waitFor('r9-h01 being fenced', () => effects.first(fenceOf('r9-h01')) >= 0);

  planner.onDomainFailed(rackFailed('r9', r9, 1));
  assert.deepEqual([...planner.incidents().keys()], ['inc-r9-h01-1'], 'no second incident');
  assert.deepEqual(planner.incidents().get('inc-r9-h01-1')?.getSnapshot().context.hosts, [...r9].sort());

  fence.open();
  await waitFor('the incident to close', () => closed.length === 1, 10_000);
  assert.deepEqual(closed, ['inc-r9-h01-1 degraded']);
  assert.deepEqual(incidentsIn(effects.progress), ['inc-r9-h01-1'], 'dashboards saw one incident');
  const report = finalReport(effects.progress, 'inc-r9-h01-1')?.report ?? [];
  assert.deepEqual(report.map((r) => r.server), serversOn(r9), 'every server of the rack is in its report');
  assert.equal(report.filter((r) => r.outcome === 'recovered').length, 14);
  // The first host was asked to power off again when the fence was made over the whole rack: the same command, carried out once.
  for (const host of r9) {
    const fences = new Set(effects.published.filter(fenceOf(host)).map((c) => c.commandId));
    assert.equal(fences.size, 1, `${host}: one fence command`);
    assert.equal(effects.executions.get([...fences][0] as string), 1, `${host} powered off once`);
  }
  await planner.stop();
});

test('incident manager - a failure in the same rack after the open incident has claimed its hosts opens an incident of its own', async () => {
  const effects = new FakeEffects();
  const storage = gate();
  effects.answer = async (c) => {
    if (c.kind === 'storage' && c.action === 'grant') await storage.wait();
    return succeeded;
  };
  const closed: string[] = [];
  const planner = manager(fleet, effects, closed);
  planner.onHostFailed(hostFailed('r9-h01', 1));
  const first = () => planner.incidents().get('inc-r9-h01-1')?.getSnapshot().context;
  await waitFor('the first incident to claim its host', () => (first()?.claimed.length ?? 0) > 0);

  planner.onHostFailed(hostFailed('r9-h02', 1, 20));
  assert.deepEqual([...planner.incidents().keys()], ['inc-r9-h01-1', 'inc-r9-h02-1']);
  assert.deepEqual(first()?.hosts, ['r9-h01'], 'the first incident did not take it in');
  assert.deepEqual(planner.incidents().get('inc-r9-h02-1')?.getSnapshot().context.hosts, ['r9-h02']);

  storage.open();
  await waitFor('both incidents to close', () => closed.length === 2, 10_000);
  assert.deepEqual(closed.sort(), ['inc-r9-h01-1 recovered', 'inc-r9-h02-1 recovered']);
  const [db1, db2] = serversOn(['r9-h01', 'r9-h02']).map((s) => planner.fleetView().serverHosts.get(s)?.host);
  assert.ok(db1 !== undefined && db2 !== undefined && db1 !== db2, `each server on a host of its own (${db1}, ${db2})`);
  await planner.stop();
});

test('incident manager - a failure already in an open incident (redelivered, from another detector, or in a rack report) is ignored', async () => {
  const effects = new FakeEffects();
  const fence = gate();
  const storage = gate();
  effects.answer = async (c) => {
    if (fenceOf('r9-h01')(c)) await fence.wait();
    if (c.kind === 'storage' && c.action === 'grant') await storage.wait();
    return succeeded;
  };
  const closed: string[] = [];
  const planner = manager(fleet, effects, closed);
  planner.onHostFailed(hostFailed('r9-h01', 1));
  await waitFor('r9-h01 being fenced', () => effects.first(fenceOf('r9-h01')) >= 0);

  // While it is fencing: the same event delivered again.
  planner.onHostFailed(hostFailed('r9-h01', 1));
  fence.open();
  const context = () => planner.incidents().get('inc-r9-h01-1')?.getSnapshot().context;
  await waitFor('the incident to claim its host', () => (context()?.claimed.length ?? 0) > 0);
  // Once it has claimed: another detector's verdict on the same host, and a rack report naming only that host.
  planner.onHostFailed(hostFailed('r9-h01', 2, 30));
  planner.onDomainFailed(rackFailed('r9', ['r9-h01'], 1));
  assert.deepEqual([...planner.incidents().keys()], ['inc-r9-h01-1']);
  assert.deepEqual(context()?.hosts, ['r9-h01']);

  storage.open();
  await waitFor('the incident to close', () => closed.length === 1, 10_000);
  assert.deepEqual(closed, ['inc-r9-h01-1 recovered']);
  assert.deepEqual(incidentsIn(effects.progress), ['inc-r9-h01-1']);
  assert.equal(effects.published.filter(fenceOf('r9-h01')).length, 1, 'fenced once: the duplicate did not restart the fence');
  const [server] = serversOn(['r9-h01']);
  assert.equal(effects.published.filter((c) => c.kind === 'storage' && c.action === 'grant' && c.lun.startsWith(`${server}-`)).length, 1, `${server} recovered once`);
  await planner.stop();
});
