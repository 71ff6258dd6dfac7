import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainFailed, HostFailed, Inventory, ledgerSeedOf, type Command, type CommandResult, type IncidentProgress, type Store } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import type { ClaimOutcome, HeartbeatWanted } from '../src/incident/effects.ts';
import type { IncidentManager } from '../src/incident-manager.ts';
import { buildInventory } from '../src/placement/testing/placement-fixture.ts';
import { referenceFleet } from '../src/readiness/testing/reference-fleet.ts';
import { FakeEffects, succeeded, testManager, useRedis } from './fake-effects.ts';

const freshStore = useRedis();

/** A manager on its own emptied Redis (or `options.store`), recording each closed incident as "<id> <outcome>" in `closed`. */
async function manager(inventory: Inventory, effects: FakeEffects, closed: string[], options: { clock?: () => number; store?: Store } = {}): Promise<IncidentManager> {
  const { clock } = options;
  return testManager(options.store ?? (await freshStore()), inventory, effects, {
    actor: { stepTimeoutMs: 5_000, heartbeatTimeoutMs: 5_000 },
    input: { retryBaseMs: 1 },
    onIncidentClosed: (id, outcome) => void closed.push(`${id} ${outcome}`),
    ...(clock && { clock }),
  });
}

/** Holds every storage grant until opened: the incident has claimed its hosts and waits there. */
function holdGrants(effects: FakeEffects): { open: () => void } {
  const storage = gate();
  effects.answer = async (c) => {
    if (c.kind === 'storage' && c.action === 'grant') await storage.wait();
    return succeeded;
  };
  return storage;
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
  const planner = await manager(fleet, effects, closed);
  await planner.onHostFailed(hostFailed('r9-h01', 1));
  await waitFor('r9-h01 being fenced', () => effects.first(fenceOf('r9-h01')) >= 0);

  await planner.onDomainFailed(rackFailed('r9', r9, 1));
  assert.deepEqual([...planner.incidents().keys()], ['inc-r9-h01-1'], 'no second incident');
  assert.deepEqual(planner.incidents().get('inc-r9-h01-1')?.getSnapshot().context.hosts, [...r9].sort());

  fence.open();
  await waitFor('the incident to close', () => closed.length === 1, 10_000);
  assert.deepEqual(closed, ['inc-r9-h01-1 degraded']);
  assert.deepEqual(incidentsIn(effects.progress), ['inc-r9-h01-1'], 'dashboards saw one incident');
  const report = finalReport(effects.progress, 'inc-r9-h01-1')?.report ?? [];
  assert.deepEqual(report.map((r) => r.server), serversOn(r9), 'every server of the rack is in its report');
  assert.equal(report.filter((r) => r.outcome === 'recovered').length, 14);
  // The join fenced the rest of the rack without asking the first host again: each fence published and carried out once.
  for (const host of r9) {
    const fences = new Set(effects.published.filter(fenceOf(host)).map((c) => c.commandId));
    assert.equal(fences.size, 1, `${host}: one fence command`);
    assert.equal(effects.published.filter(fenceOf(host)).length, 1, `${host}: its fence published once, not again on the join`);
    assert.equal(effects.executions.get([...fences][0] as string), 1, `${host} powered off once`);
  }
  await planner.stop();
});

test('incident manager - a failure in the same rack after the open incident has claimed its hosts opens an incident of its own', async () => {
  const effects = new FakeEffects();
  const storage = holdGrants(effects);
  const closed: string[] = [];
  const planner = await manager(fleet, effects, closed);
  await planner.onHostFailed(hostFailed('r9-h01', 1));
  const first = () => planner.incidents().get('inc-r9-h01-1')?.getSnapshot().context;
  await waitFor('the first incident to claim its host', () => (first()?.claimed.length ?? 0) > 0);

  await planner.onHostFailed(hostFailed('r9-h02', 1, 20));
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
  const planner = await manager(fleet, effects, closed);
  await planner.onHostFailed(hostFailed('r9-h01', 1));
  await waitFor('r9-h01 being fenced', () => effects.first(fenceOf('r9-h01')) >= 0);

  // While it is fencing: the same event delivered again.
  await planner.onHostFailed(hostFailed('r9-h01', 1));
  fence.open();
  const context = () => planner.incidents().get('inc-r9-h01-1')?.getSnapshot().context;
  await waitFor('the incident to claim its host', () => (context()?.claimed.length ?? 0) > 0);
  // Once it has claimed: another detector's verdict on the same host, and a rack report naming only that host.
  await planner.onHostFailed(hostFailed('r9-h01', 2, 30));
  await planner.onDomainFailed(rackFailed('r9', ['r9-h01'], 1));
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

/** Simulated time for the planner's clock: it moves only when a fake device or host takes its time. */
class SimulatedTime {
  constructor(public now: number) {}
  advanceTo(at: number): void {
    this.now = Math.max(this.now, at);
  }
}

/**
 * FakeEffects in simulated time: commands issued together finish together,
 * each after its kind's duration; a host heartbeats a fixed time after its
 * power-on; a host claim or release is a Redis round trip. The first claim
 * loses its first host to an incident that claimed it a moment earlier.
 */
class TimedEffects extends FakeEffects {
  static readonly durations: Record<string, number> = { 'power off': 1_500, 'storage grant': 800, 'net access': 2_000, 'boot configure': 500, 'power pxe-once': 500, 'power on': 1_200 };
  static readonly osBootMs = 40_000;
  private readonly poweredOnAt = new Map<string, number>();
  private claims = 0;

  constructor(private readonly time: SimulatedTime) {
    super();
  }

  override async runCommands(commands: readonly Command[], signal: AbortSignal): Promise<CommandResult[]> {
    const ends = commands.map((c) => c.issuedAt + (TimedEffects.durations[`${c.kind} ${c.action}`] ?? 0));
    // Time passes once everything issued alongside these has been issued too.
    await new Promise((r) => setImmediate(r));
    this.time.advanceTo(Math.max(...ends));
    for (const c of commands) if (c.kind === 'power' && c.action === 'on') this.poweredOnAt.set(c.host, this.time.now);
    return super.runCommands(commands, signal);
  }

  override async waitForHeartbeat(wanted: HeartbeatWanted, signal: AbortSignal): Promise<number> {
    await new Promise((r) => setImmediate(r));
    const on = this.poweredOnAt.get(wanted.host);
    if (on !== undefined) this.time.advanceTo(on + TimedEffects.osBootMs);
    return super.waitForHeartbeat(wanted, signal);
  }

  override async claimHosts(incidentId: string, hosts: readonly string[]): Promise<ClaimOutcome> {
    this.time.now += 30;
    if (this.claims++ === 0 && hosts[0] !== undefined) this.leases.set(hosts[0], 'incident:another');
    return super.claimHosts(incidentId, hosts);
  }

  override async releaseHosts(incidentId: string, hosts: readonly string[]): Promise<void> {
    this.time.now += 10;
    return super.releaseHosts(incidentId, hosts);
  }
}

test('incident manager - the final report gives each server its detect, fence, plan and heartbeat times and its RTO against its target, to the millisecond', async (t) => {
  // Rack r3 runs app-01 (x86) and arm-01 (aarch64); two x86 spares in r1 can take app-01, nothing can take arm-01.
  const base = buildInventory({
    hosts: [
      { id: 'r3-h01', rack: 'r3', role: 'production' },
      { id: 'r3-h02', rack: 'r3', role: 'production', arch: 'aarch64' },
      { id: 'r1-h01', rack: 'r1' },
      { id: 'r1-h02', rack: 'r1' },
    ],
    servers: [{ id: 'app-01', tier: 0 }, { id: 'arm-01', arch: 'aarch64' }],
  });
  const inventory = Inventory.parse({
    ...base,
    servers: base.servers.map((s) => ({ ...s, rtoSeconds: s.id === 'app-01' ? 60 : 300 })),
    assignments: [
      { server: 'app-01', mode: 'bare-metal', host: 'r3-h01' },
      { server: 'arm-01', mode: 'bare-metal', host: 'r3-h02' },
    ],
  });
  const firstFailureAt = 1_700_000_000_000;
  const detectedAt = firstFailureAt + 4_000;
  const time = new SimulatedTime(detectedAt);
  // The machine stamps fence and plan times with Date.now: it reads the simulated time too.
  t.mock.method(Date, 'now', () => time.now);
  const effects = new TimedEffects(time);
  const closed: string[] = [];
  const planner = await manager(inventory, effects, closed, { clock: () => time.now });

  await planner.onDomainFailed(rackFailed('r3', ['r3-h01', 'r3-h02'], 1, firstFailureAt, detectedAt));
  // Polled on real timers: waitFor's deadline would read the simulated clock.
  for (let waited = 0; closed.length === 0; waited += 5) {
    assert.ok(waited < 10_000, 'the incident closes');
    await new Promise((r) => setTimeout(r, 5));
  }
  const final = finalReport(effects.progress, 'inc-rack-r3-1');
  assert.equal(final?.phase, 'degraded');

  const fenceMs = 1_500; // both BMCs power off at once
  const planMs = 30 + 10; // the first plan's host went to another incident: its claim and release, then a second plan
  const heartbeatMs = fenceMs + planMs + 30 /* claim */ + 1_500 /* prepare */ + 800 /* storage */ + 2_000 /* network */ + 500 /* boot */ + 1_200 /* power-on */ + 40_000; /* OS boot */
  assert.deepEqual(final?.report, [
    { server: 'app-01', outcome: 'recovered', detectMs: 4_000, fenceMs, planMs, heartbeatMs, rtoSeconds: (4_000 + heartbeatMs) / 1_000, rtoTargetSeconds: 60 },
    { server: 'arm-01', outcome: 'unrecovered', detectMs: 4_000, fenceMs, planMs, heartbeatMs: null, rtoSeconds: null, rtoTargetSeconds: 300 },
  ]);
  assert.equal(final?.report?.[0]?.rtoSeconds, 51.57, 'app-01 back 51.57 s after it failed, within its 60 s target');
  assert.match(final?.servers.find((s) => s.server === 'arm-01')?.message ?? '', /\S/, 'arm-01 says why it stayed down');
  await planner.stop();
});

test('incident manager - a failed domain takes its idle hosts down with it, whatever the cause: none is a candidate, the ledger says down', async () => {
  const store = await freshStore();
  const rack = fleet.racks.find((r) => fleet.hosts.some((h) => h.rack === r.id && h.role !== 'production'));
  assert.ok(rack, 'a rack with an idle host');
  const members = fleet.hosts.filter((h) => h.rack === rack.id);
  const idle = members.filter((h) => h.role !== 'production').map((h) => h.id);
  const running = members.filter((h) => serversOn([h.id]).length > 0).map((h) => h.id);
  const planner = await manager(fleet, new FakeEffects(), [], { store });
  assert.ok(idle.every((h) => planner.fleetView().candidates.includes(h)), 'idle hosts are candidates before');
  // A switch or power loss, not a fire: the BMCs still answer, and the detector names only the hosts it heard go.
  await planner.onDomainFailed(rackFailed(rack.id, running, 1));
  const view = planner.fleetView();
  assert.deepEqual(idle.filter((h) => view.candidates.includes(h)), [], 'no idle host of the failed rack is a candidate');
  const ledger = await store.ledger.read();
  for (const h of [...idle, ...running]) assert.deepEqual(ledger.hosts.get(h)?.status, { role: 'down' }, h);
  await planner.stop();
});

test('incident manager - a host an open incident is provisioning, reported failed while it reboots, is left to that incident', async () => {
  const store = await freshStore();
  const effects = new FakeEffects();
  const storage = holdGrants(effects);
  const closed: string[] = [];
  const planner = await manager(fleet, effects, closed, { store });
  await planner.onHostFailed(hostFailed('r9-h01', 1));
  const context = () => planner.incidents().get('inc-r9-h01-1')?.getSnapshot().context;
  await waitFor('the incident to claim its host', () => (context()?.claimed.length ?? 0) > 0);
  const [target] = context()?.claimed ?? [];
  assert.ok(target);
  // Its BMC is slow to answer while it is reprovisioned: the detector calls it failed.
  await planner.onHostFailed(HostFailed.parse({ host: target, site: 'dc1', rack: target.split('-')[0], epoch: 5, cause: 'bmc-unreachable', detectedAt: 20, detector: 'test', evidence: { bmc: { reachable: false } } }));
  assert.deepEqual([...planner.incidents().keys()], ['inc-r9-h01-1'], 'no incident of its own');
  assert.notDeepEqual((await store.ledger.host(target))?.status, { role: 'down' }, 'not marked down under the incident');
  storage.open();
  await waitFor('the incident to close', () => closed.length === 1, 10_000);
  assert.deepEqual(closed, ['inc-r9-h01-1 recovered']);
  const [server] = serversOn(['r9-h01']);
  assert.ok(server);
  assert.deepEqual((await store.ledger.host(target))?.status, { role: 'home', server });
  await planner.stop();
});

test('incident manager - a hypervisor that carries a recovered server as a VM fails: that server is recovered again', async () => {
  const store = await freshStore();
  const hypervisor = fleet.hosts.find((h) => h.role !== 'production' && h.hypervisorCapable);
  const moved = fleet.assignments.find((a) => a.mode === 'bare-metal');
  assert.ok(hypervisor && moved?.mode === 'bare-metal', 'a hypervisor-capable idle host and a bare-metal server');
  // An earlier incident (by an earlier planner) left the server as a VM on that host; the inventory still says otherwise.
  await store.ledger.seed(ledgerSeedOf(fleet, 1));
  await store.ledger.apply({
    site: 'dc1', token: 1, why: { kind: 'incident', id: 'inc-earlier' }, at: 2,
    servers: [{ id: moved.server, version: 1, placement: { state: 'vm', hypervisor: hypervisor.id } }],
    hosts: [{ id: hypervisor.id, version: 1, status: { role: 'hypervisor', servers: [moved.server], converted: true } }, { id: moved.host, version: 1, status: { role: 'down' } }],
  });
  const closed: string[] = [];
  const planner = await manager(fleet, new FakeEffects(), closed, { store });
  await planner.onHostFailed(hostFailed(hypervisor.id, 1));
  const incident = `inc-${hypervisor.id}-1`;
  assert.deepEqual(Object.keys(planner.incidents().get(incident)?.getSnapshot().context.serverHosts ?? {}), [moved.server], 'the VM it carried is the incident\'s to recover');
  await waitFor('the incident to close', () => closed.length === 1, 10_000);
  assert.deepEqual(closed, [`${incident} recovered`]);
  const placement = (await store.ledger.server(moved.server))?.placement;
  const now = placement?.state === 'bare-metal' ? placement.host : placement?.state === 'vm' ? placement.hypervisor : undefined;
  assert.ok(now !== undefined && now !== hypervisor.id && now !== moved.host, `${moved.server} now on ${JSON.stringify(placement)}`);
  await planner.stop();
});
