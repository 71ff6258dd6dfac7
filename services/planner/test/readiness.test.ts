import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainFailed, HostFailed, HostRecovered, Inventory, type Bus, type Command, type CommandResult, type DomainReadiness, type ReadinessCheck, type ReadinessReport } from '@firebreak/shared';
import { generateTopology } from '@firebreak/lab';
import type { ClaimOutcome, HeartbeatWanted, IncidentEffects } from '../src/incident/effects.ts';
import type { FleetView, IncidentManager } from '../src/incident-manager.ts';
import { planPlacement } from '../src/placement/index.ts';
import { referenceScenario } from '../src/placement/testing/reference-scenario.ts';
import { siteDomains } from '@firebreak/shared';
import { readinessReport, startReadiness } from '../src/readiness/index.ts';
import { referenceFleet } from '../src/readiness/testing/reference-fleet.ts';
import { testManager, useRedis } from './fake-effects.ts';

const freshStore = useRedis();

/** Effects that work, except that recovered servers' heartbeats wait for the test to let them through. */
class GatedEffects implements IncidentEffects {
  private readonly poweredOn = new Set<string>();
  private readonly leases = new Map<string, string>();
  private open!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));

  letHeartbeatsThrough(): void {
    this.open();
  }

  async runCommands(commands: readonly Command[]): Promise<CommandResult[]> {
    await new Promise((r) => setImmediate(r));
    return commands.map((c) => {
      if (c.kind === 'power' && c.action === 'on') this.poweredOn.add(c.host);
      return { commandId: c.commandId, incidentId: c.incidentId, kind: c.kind, outcome: 'succeeded', attempts: 1, startedAt: 0, finishedAt: 0, executor: 'fake', replayed: false };
    });
  }

  async waitForHeartbeat(wanted: HeartbeatWanted, signal: AbortSignal): Promise<number> {
    await Promise.race([this.gate, new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)))]);
    if (this.poweredOn.has(wanted.host)) return Date.now();
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
  }

  async claimHosts(incidentId: string, hosts: readonly string[]): Promise<ClaimOutcome> {
    for (const h of hosts) this.leases.set(h, incidentId);
    return { claimed: [...hosts], lost: [] };
  }

  async releaseHosts(incidentId: string, hosts: readonly string[]): Promise<void> {
    for (const h of hosts) if (this.leases.get(h) === incidentId) this.leases.delete(h);
  }

  publishProgress(): void {}
}

async function manager(inventory: Inventory, effects: IncidentEffects, onIncidentClosed?: (id: string) => void): Promise<IncidentManager> {
  return testManager(await freshStore(), inventory, effects, onIncidentClosed && { onIncidentClosed });
}

const report = (inventory: Inventory, view: FleetView): ReadinessReport => readinessReport({ inventory, site: 'dc1', view, at: 1_000 });
const domain = (r: ReadinessReport, id: string): DomainReadiness => {
  const found = r.domains.find((d) => d.domain.kind === 'rack' && d.domain.id === id);
  assert.ok(found, `rack ${id} in the report`);
  return found;
};

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('readiness - every rack of the site is checked; a rack whose one server fits elsewhere is ready', async () => {
  const inventory = referenceFleet();
  const r = report(inventory, (await manager(inventory, new GatedEffects())).fleetView());
  assert.equal(r.site, 'dc1');
  assert.equal(r.at, 1_000);
  assert.deepEqual(r.domains.map((d) => `${d.domain.kind} ${d.domain.id}`), ['rack r1', 'rack r2', 'rack r9']);
  assert.deepEqual(domain(r, 'r1'), { domain: { kind: 'rack', id: 'r1', site: 'dc1' }, hosts: 1, servers: 1, ready: true, bareMetal: 1, vms: 0, conversions: 0, preemptions: 0, unplaced: [] });
  assert.equal(domain(r, 'r2').ready, true);
});

test('readiness - a rack that cannot be recovered names the servers left down, their tier and why', async () => {
  const inventory = referenceFleet();
  const r9 = domain(report(inventory, (await manager(inventory, new GatedEffects())).fleetView()), 'r9');
  assert.equal(r9.ready, false);
  assert.equal(r9.hosts, 18);
  assert.equal(r9.servers, 18);
  // As in the reference scenario: 8 on bare metal, 2 converted hypervisors with 6 VMs, the 4 repurposable hosts preempted.
  assert.deepEqual([r9.bareMetal, r9.vms, r9.conversions, r9.preemptions], [8, 6, 2, 4]);
  assert.deepEqual(r9.unplaced.map((u) => u.server).sort(), ['chat-01', 'intranet-01', 'reports-01', 'reports-02']);
  for (const u of r9.unplaced) {
    assert.equal(u.priority, 3, u.server);
    assert.equal(u.reason, 'no-capacity: every compatible host is taken by servers of tier 3 or more critical', u.server);
  }
});

test('readiness - it tells what the engine would do: same outcome as planning the failure directly', async () => {
  const inventory = referenceFleet();
  const r9 = domain(report(inventory, (await manager(inventory, new GatedEffects())).fleetView()), 'r9');
  const scenario = referenceScenario();
  const direct = planPlacement({ ...scenario, inventory, servers: scenario.servers.filter((s) => s !== 'wiki-01' && s !== 'metrics-01') });
  assert.deepEqual(r9.unplaced.map((u) => u.server), direct.unplaced.map((u) => u.server));
  assert.equal(r9.bareMetal + r9.vms, direct.assignments.length);
});

test('readiness - hosts an open incident has failed or taken are not counted; capacity comes back when it closes', async () => {
  const inventory = referenceFleet();
  const effects = new GatedEffects();
  const closed: string[] = [];
  const planner = await manager(inventory, effects, (id) => closed.push(id));
  const before = report(inventory, planner.fleetView());

  // r2-h06 dies: metrics-01 is recovered onto a spare outside r2, whose lease the incident holds until its heartbeat.
  await planner.onHostFailed(HostFailed.parse({ host: 'r2-h06', site: 'dc1', rack: 'r2', epoch: 1, cause: 'bmc-power-off', detectedAt: 10, detector: 'test', evidence: { lastHeartbeatAt: 5 } }));
  await until('the incident to claim its host', () => [...planner.incidents().values()].some((a) => a.getSnapshot().context.claimed.length > 0));
  const view = planner.fleetView();
  const claimed = [...planner.incidents().values()][0]?.getSnapshot().context.claimed ?? [];
  assert.equal(claimed.length, 1);
  assert.deepEqual(view.down, ['r2-h06']);
  assert.ok(!view.candidates.includes(claimed[0] as string), 'the claimed host is no longer a candidate');
  assert.equal(view.candidates.length, 9);

  const during = report(inventory, view);
  // r2's only server is already being recovered: nothing left there to lose.
  assert.deepEqual([domain(during, 'r2').servers, domain(during, 'r2').ready], [0, true]);
  // r9 has one machine fewer to fall back on: fewer of its servers would come back.
  const recovered = (d: DomainReadiness): number => d.bareMetal + d.vms;
  assert.ok(recovered(domain(during, 'r9')) < recovered(domain(before, 'r9')));
  assert.ok(domain(during, 'r9').unplaced.length > domain(before, 'r9').unplaced.length);

  effects.letHeartbeatsThrough();
  await until('the incident to close', () => closed.length === 1);
  const after = planner.fleetView();
  assert.deepEqual(after.down, ['r2-h06'], 'the dead host stays down after its incident until it is heard from again');
  await planner.onHostRecovered(HostRecovered.parse({ host: 'r2-h06', site: 'dc1', rack: 'r2', epoch: 1, detectedAt: 20, detector: 'test', server: null, downForMs: 10 }));
  assert.deepEqual(planner.fleetView().down, []);
  assert.equal(after.candidates.length, 9, 'the host now running metrics-01 stays taken');
  const host = after.serverHosts.get('metrics-01')?.host as string;
  assert.equal(host, claimed[0]);
  // metrics-01 now runs in the rack of its new host: losing that rack loses it too.
  const rack = inventory.hosts.find((h) => h.id === host)?.rack as string;
  const rackNow = domain(report(inventory, after), rack);
  assert.equal(rackNow.servers, domain(before, rack).servers + 1);
  await planner.stop();
});

test('readiness - racks, PDUs and ToRs of the site are its domains; the site itself only when asked', () => {
  const inventory = Inventory.parse(generateTopology({ size: 'tiny', seed: 3 }));
  const site = inventory.racks[0]?.site as string;
  const view: FleetView = {
    serverHosts: new Map(inventory.assignments.map((a) => [a.server, a.mode === 'bare-metal' ? { mode: a.mode, host: a.host } : { mode: a.mode, host: a.hypervisor }])),
    candidates: inventory.hosts.filter((h) => h.role !== 'production').map((h) => h.id),
    existingVms: [],
    down: [],
  };
  const all = readinessReport({ inventory, site, view, at: 1 });
  const racks = inventory.racks.map((r) => r.id);
  assert.deepEqual(
    all.domains.map((d) => `${d.domain.kind} ${d.domain.id}`),
    [...racks.map((r) => `rack ${r}`), ...inventory.racks.map((r) => `pdu ${r.pdu}`), ...inventory.racks.map((r) => `tor ${r.tor}`)],
  );
  // A rack and its own PDU and ToR hold the same hosts: the same answer.
  const first = inventory.racks[0];
  const byId = (kind: string, id: string | undefined) => all.domains.find((d) => d.domain.kind === kind && d.domain.id === id);
  assert.deepEqual({ ...byId('pdu', first?.pdu), domain: undefined }, { ...byId('rack', first?.id), domain: undefined });

  const whole = readinessReport({ inventory, site, view, at: 1, domains: [{ kind: 'site', id: site, site }] });
  assert.equal(whole.domains.length, 1);
  assert.equal(whole.domains[0]?.servers, inventory.assignments.length);
  assert.equal(whole.domains[0]?.ready, false, 'nothing is left to recover a whole site on');

  assert.throws(() => readinessReport({ inventory, site, view, at: 1, domains: [{ kind: 'rack', id: 'r99', site }] }), new RegExp(`site ${site} has no rack r99`));
  const elsewhere = { kind: 'rack', id: racks[0] as string, site: 'elsewhere' } as const;
  assert.throws(() => readinessReport({ inventory, site, view, at: 1, domains: [elsewhere] }), /rack \S+ is in site elsewhere; this report is for site/);
});

test('readiness - offering each domain only enough hosts of each kind changes no verdict (a scarce 1,000-host site)', () => {
  const inventory = Inventory.parse(generateTopology({ size: 'row', seed: 7 }));
  const site = inventory.racks[0]?.site as string;
  // Scarce: only one free host in 25 may be taken, so many racks cannot be recovered.
  const candidates = inventory.hosts.filter((h) => h.role !== 'production').map((h) => h.id).filter((_, i) => i % 25 === 0);
  const serverHosts = new Map(inventory.assignments.map((a) => [a.server, a.mode === 'bare-metal' ? { mode: a.mode, host: a.host } : { mode: a.mode, host: a.hypervisor }] as const));
  const r = readinessReport({ inventory, site, view: { serverHosts, candidates, existingVms: [], down: [] }, at: 1 });
  const domains = siteDomains(inventory, site);
  let notReady = 0;
  for (const d of r.domains.filter((x) => x.domain.kind === 'rack')) {
    const hosts = domains.hostsOf(d.domain) ?? [];
    const servers = [...serverHosts].filter(([, at]) => hosts.some((h) => h.id === at.host)).map(([s]) => s);
    const plan = planPlacement({ inventory, servers, candidates, failed: { hosts: hosts.map((h) => h.id), racks: [d.domain.id] } });
    if (!d.ready) notReady++;
    assert.deepEqual(
      d.unplaced.map((u) => `${u.server} ${u.reason.split(':')[0]}`),
      plan.unplaced.map((u) => `${u.server} ${u.reason}`),
      `rack ${d.domain.id}`,
    );
    assert.deepEqual([d.bareMetal, d.vms, d.conversions, d.preemptions], [
      plan.assignments.filter((a) => a.mode === 'bare-metal').length,
      plan.assignments.filter((a) => a.mode === 'vm').length,
      plan.conversions.length,
      plan.preemptions.length,
    ], `rack ${d.domain.id}`);
  }
  assert.ok(notReady >= 3, `the scarce site has racks that cannot be recovered (${notReady})`);
});

test('readiness - a 10,000-host site (250 racks, 750 domains) is checked in well under a few seconds', () => {
  const inventory = Inventory.parse(generateTopology({ size: '10k' }));
  const site = inventory.racks[0]?.site as string;
  const view: FleetView = {
    serverHosts: new Map(inventory.assignments.map((a) => [a.server, a.mode === 'bare-metal' ? { mode: a.mode, host: a.host } : { mode: a.mode, host: a.hypervisor }])),
    candidates: inventory.hosts.filter((h) => h.role !== 'production').map((h) => h.id),
    existingVms: [],
    down: [],
  };
  const started = performance.now();
  const r = readinessReport({ inventory, site, view, at: 1 });
  const ms = performance.now() - started;
  assert.equal(r.domains.length, 750);
  assert.ok(r.domains.every((d) => d.servers > 0));
  // ~1 s on a loaded 2-core machine; the bound leaves room for a slower one.
  assert.ok(ms < 5_000, `took ${Math.round(ms)} ms`);
  console.log(`# readiness of 10,000 hosts / 750 domains: ${Math.round(ms)} ms`);
});

test('readiness service - a closed incident publishes a fresh report at once; requests made meanwhile coalesce into one more', async () => {
  const inventory = referenceFleet();
  const effects = new GatedEffects();
  const published: ReadinessReport[] = [];
  const logged: { trigger?: string; notReady?: number }[] = [];
  let served: ((check: ReadinessCheck) => Promise<ReadinessReport | undefined>) | undefined;
  const bus = {
    publishCore: (_topic: unknown, report: ReadinessReport) => void published.push(report),
    serve: async (_topic: unknown, _schema: unknown, handler: typeof served) => {
      served = handler;
      return { counters: { received: 0, invalid: 0, failed: 0, silent: 0 }, stop: async () => {} };
    },
  } as unknown as Pick<Bus, 'serve' | 'publishCore'>;
  const logger = { info: (o: { trigger?: string; notReady?: number }) => void logged.push(o), warn: () => {}, error: () => {}, debug: () => {} } as never;
  // Wired as the planner's index.ts does.
  let onIncidentClosed = (): void => {};
  const planner = await testManager(await freshStore(), inventory, effects, { onIncidentClosed: () => onIncidentClosed() });
  const readiness = await startReadiness({ bus, logger, inventory, site: 'dc1', view: () => planner.fleetView(), intervalMs: 0 });
  onIncidentClosed = () => readiness.publishSoon();
  assert.equal(published.length, 0, 'no periodic report with an interval of 0');

  await planner.onHostFailed(HostFailed.parse({ host: 'r2-h06', site: 'dc1', rack: 'r2', epoch: 1, cause: 'bmc-power-off', detectedAt: 10, detector: 'test', evidence: {} }));
  effects.letHeartbeatsThrough();
  await until('the report after the incident closed', () => published.length === 1);
  const host = planner.fleetView().serverHosts.get('metrics-01')?.host as string;
  const rack = inventory.hosts.find((h) => h.id === host)?.rack;
  assert.notEqual(rack, 'r2');
  assert.equal(published[0]?.domains.find((d) => d.domain.id === rack)?.servers, 2, 'metrics-01 counts in its new rack');
  assert.deepEqual(logged.map((l) => [l.trigger, l.notReady]), [['incident-closed', 1]]);

  // Three capacity changes while one report is being made: one more report, not three.
  readiness.publishSoon();
  readiness.publishSoon();
  readiness.publishSoon();
  await until('the coalesced report', () => published.length === 3);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(published.length, 3);

  // Checks for this site are answered; for another site left to its planner.
  assert.equal((await served?.({ site: 'dc1' }))?.domains.length, 3);
  assert.equal(await served?.({ site: 'dc2' }), undefined);
  await readiness.stop();
  await planner.stop();
});

test('incident manager - every host of a failed domain is down, spares it never heard from included, until each is heard from again', async () => {
  const inventory = referenceFleet();
  const planner = await manager(inventory, new GatedEffects());
  const rackHosts = inventory.hosts.filter((h) => h.rack === 'r1').map((h) => h.id);
  const idle = inventory.hosts.filter((h) => h.rack === 'r1' && h.role !== 'production').map((h) => h.id);
  assert.ok(idle.length > 0 && idle.every((h) => planner.fleetView().candidates.includes(h)), 'r1 has spare or repurposable hosts that are candidates');
  const reported = rackHosts.filter((h) => !idle.includes(h));
  await planner.onDomainFailed(
    DomainFailed.parse({ domain: { kind: 'rack', id: 'r1', site: 'dc1' }, hosts: reported, causes: ['bmc-unreachable'], firstFailureAt: 1, detectedAt: 2, epoch: 1, detector: 'test' }),
  );
  const view = planner.fleetView();
  for (const h of idle) assert.ok(!view.candidates.includes(h), `${h} burned with its rack: not a candidate`);
  await planner.onHostRecovered(HostRecovered.parse({ host: idle[0], site: 'dc1', rack: 'r1', epoch: 1, detectedAt: 3, detector: 'test', server: null, downForMs: 1 }));
  assert.ok(planner.fleetView().candidates.includes(idle[0] as string), 'heard from again: a candidate once more');
  await planner.stop();
});

test('incident manager - an idle spare reported failed while its BMC answers (say, powered off after a drill) stays a candidate', async () => {
  const inventory = referenceFleet();
  const planner = await manager(inventory, new GatedEffects());
  const spare = inventory.hosts.find((h) => h.role === 'spare')?.id as string;
  await planner.onHostFailed(
    HostFailed.parse({ host: spare, site: 'dc1', rack: 'r1', epoch: 1, cause: 'link-down', detectedAt: 10, detector: 'test', evidence: { lastHeartbeatAt: 5, bmc: { reachable: true, powerState: 'off' } } }),
  );
  assert.ok(planner.fleetView().candidates.includes(spare));
  await planner.onHostFailed(HostFailed.parse({ host: spare, site: 'dc1', rack: 'r1', epoch: 2, cause: 'bmc-unreachable', detectedAt: 20, detector: 'test', evidence: { lastHeartbeatAt: 5, bmc: { reachable: false } } }));
  assert.ok(!planner.fleetView().candidates.includes(spare), 'with its BMC gone too, it is down');
  await planner.stop();
});
