import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createActor, type SnapshotFrom } from 'xstate';
import { boundIncidentMachine, type IncidentActorOptions } from '../src/incident/incident-actors.ts';
import type { IncidentInput, incidentMachine } from '../src/incident/incident.machine.ts';
import { referenceScenario } from '../src/placement/testing/reference-scenario.ts';
import { FakeEffects, hungUntilDeadline, refused, succeeded, unanswered } from './fake-effects.ts';

const scenario = referenceScenario();
const burnedHosts = scenario.inventory.hosts.filter((h) => h.rack === 'r9').map((h) => h.id);
const serverHosts = Object.fromEntries(scenario.servers.map((s, i) => [s, burnedHosts[i] as string]));

function incidentInput(overrides: Partial<IncidentInput> = {}): IncidentInput {
  return {
    incidentId: 'inc-r9',
    site: 'site1',
    trigger: 'event',
    hosts: burnedHosts,
    racks: ['r9'],
    serverHosts,
    bmcGone: [],
    firstFailureAt: 1,
    detectedAt: 2,
    retryBaseMs: 1,
    maxAttempts: 2,
    ...overrides,
  };
}

function machineWith(effects: FakeEffects, options: Partial<IncidentActorOptions> = {}) {
  return boundIncidentMachine({
    inventory: scenario.inventory,
    effects,
    fencingToken: () => 7,
    issuer: 'planner-a',
    candidates: () => [...scenario.candidates],
    stepTimeoutMs: 1_000,
    heartbeatTimeoutMs: 200,
    ...options,
  });
}

type Snapshot = SnapshotFrom<typeof incidentMachine>;

function runToEnd(actor: ReturnType<typeof createActor<ReturnType<typeof machineWith>>>): Promise<Snapshot> {
  return new Promise((resolve, reject) => {
    const sub = actor.subscribe({
      next: (s) => {
        if (s.status === 'done') {
          sub.unsubscribe();
          resolve(s as Snapshot);
        }
      },
      error: reject,
    });
    actor.start();
  });
}

/** Fails unless `work` settles within `ms`; its timer also keeps the process alive while only abort timers are pending. */
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`did not end within ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

const sequence = (effects: FakeEffects, host: string): string[] => effects.published.filter((c) => 'host' in c && c.host === host).map((c) => `${c.kind} ${c.action}`);

test('incident machine - the reference scenario: 20 servers lost, 10 hosts → 8 on bare metal, 2 hypervisors with 6 VMs, 6 reported', async () => {
  const effects = new FakeEffects();
  const end = await runToEnd(createActor(machineWith(effects), { input: incidentInput() }));
  assert.equal(end.value, 'degraded');
  const targets = Object.values(end.context.targets);
  const done = (mode: string) => targets.filter((t) => t.status === 'done' && t.target.mode === mode).length;
  assert.equal(done('bare-metal'), 8);
  assert.equal(done('hypervisor'), 2);
  assert.equal(done('vm'), 6);
  assert.equal(end.context.unrecovered.length, 6);
  for (const u of end.context.unrecovered) assert.match(u.reason, /\S/, `${u.server} has a reason`);
  // The tier-0 servers are all back.
  for (const s of ['db-01', 'db-02', 'auth-01']) assert.equal(end.context.targets[s]?.status, 'done', s);
  // Every command carried the leader's token.
  assert.ok(effects.published.every((c) => c.fencingToken === 7 && c.issuer === 'planner-a'));
});

test('incident machine - every dead host is fenced (BMC power-off) before any storage is granted', async () => {
  const effects = new FakeEffects();
  await runToEnd(createActor(machineWith(effects), { input: incidentInput() }));
  const firstGrant = effects.first((c) => c.kind === 'storage' && c.action === 'grant');
  assert.ok(firstGrant > 0);
  for (const host of burnedHosts) {
    const off = effects.first((c) => c.kind === 'power' && c.action === 'off' && c.host === host);
    assert.ok(off >= 0 && off < firstGrant, `${host} powered off before the first grant`);
  }
  assert.equal(effects.first((c) => c.kind === 'net' && c.action === 'shut'), -1, 'no fabric fencing when the BMCs answer');
});

test('incident machine - a burned rack whose BMCs fail is fenced on the fabric: ports shut and LUNs revoked before any grant', async () => {
  const effects = new FakeEffects();
  effects.answer = (c) => (c.kind === 'power' && burnedHosts.includes(c.host) ? refused('BMC unreachable') : succeeded);
  const end = await runToEnd(createActor(machineWith(effects), { input: incidentInput() }));
  assert.equal(end.value, 'degraded');
  const firstGrant = effects.first((c) => c.kind === 'storage' && c.action === 'grant');
  for (const host of burnedHosts) {
    const bmc = effects.first((c) => c.kind === 'power' && c.action === 'off' && c.host === host);
    const shut = effects.first((c) => c.kind === 'net' && c.action === 'shut' && c.host === host);
    const revoke = effects.first((c) => c.kind === 'storage' && c.action === 'revoke-all' && c.host === host);
    assert.ok(bmc >= 0 && bmc < shut, `${host}: BMC first, then the fabric`);
    assert.ok(shut < firstGrant && revoke >= 0 && revoke < firstGrant, `${host} fenced on the fabric before the first grant`);
  }
});

test('incident machine - servers whose old host cannot be fenced at all get no storage and are reported', async () => {
  const effects = new FakeEffects();
  const stuck = burnedHosts[0] as string;
  effects.answer = (c) => ('host' in c && c.host === stuck && (c.kind === 'power' || c.kind === 'net') ? refused('unreachable') : succeeded);
  const end = await runToEnd(createActor(machineWith(effects), { input: incidentInput() }));
  const server = scenario.servers[0] as string;
  assert.equal(end.context.fence[stuck], 'failed');
  assert.match(end.context.unrecovered.find((u) => u.server === server)?.reason ?? '', /could not be fenced/);
  const lun = `${server}-san-a`;
  assert.equal(effects.first((c) => c.kind === 'storage' && c.action === 'grant' && c.lun === lun), -1, 'no grant of its LUN');
});

test('incident machine - a lost race for a host re-plans without it', async () => {
  const effects = new FakeEffects();
  effects.leases.set('r1-h01', 'incident:other');
  const end = await runToEnd(createActor(machineWith(effects), { input: incidentInput() }));
  assert.equal(end.context.replans, 1);
  assert.deepEqual(end.context.excluded, ['r1-h01']);
  assert.ok(Object.values(end.context.targets).every((t) => !('host' in t.target) || t.target.host !== 'r1-h01'));
  assert.equal(effects.first((c) => 'host' in c && c.host === 'r1-h01'), -1, 'nothing was sent to the other incident’s host');
  assert.equal(effects.leases.get('r1-h01'), 'incident:other');
});

test('incident machine - a failing step is retried, then the steps done are undone in reverse order and the host released', async () => {
  const effects = new FakeEffects();
  // The BMC of the host chosen for db-01 refuses to power it on, after its storage, network and boot were set up.
  let victim: string | undefined;
  effects.answer = (c) => {
    if (c.kind === 'storage' && c.action === 'grant' && c.lun === 'db-01-san-a') victim = c.host;
    return c.kind === 'power' && c.action === 'on' && c.host === victim ? refused('BMC refused the power-on') : succeeded;
  };
  const end = await runToEnd(createActor(machineWith(effects), { input: incidentInput() }));
  assert.ok(victim);
  // Its host was given up as dead and db-01 planned again, but every other host is taken: it stays down.
  assert.match(end.context.abandoned[victim] ?? '', /BMC refused the power-on/);
  assert.equal(end.context.targets['db-01'], undefined);
  const onVictim = effects.published.filter((c) => 'host' in c && c.host === victim);
  assert.deepEqual(
    sequence(effects, victim),
    [
      'power off', // prepare
      'storage grant',
      'net access',
      'boot configure',
      'power pxe-once',
      'power on',
      'power on', // the retry
      // Compensation, the failed step first (the BMC may have acted), then the rest last first: boot config cleared, ports shut, LUN revoked.
      'power off',
      'boot clear',
      'net shut',
      'storage revoke',
    ],
  );
  const powerOns = onVictim.filter((c) => c.kind === 'power' && c.action === 'on');
  assert.deepEqual(powerOns.map((c) => c.attempt), [1, 2]);
  assert.notEqual(powerOns[0]?.commandId, powerOns[1]?.commandId, 'the retry is a new command');
  const grant = onVictim.find((c) => c.kind === 'storage' && c.action === 'grant');
  const revoke = onVictim.find((c) => c.kind === 'storage' && c.action === 'revoke');
  assert.equal(revoke?.kind === 'storage' && revoke.lun, grant?.kind === 'storage' && grant.lun, 'the LUN granted is the one revoked');
  assert.equal(effects.leases.has(victim), false, 'the host went back');
  assert.match(end.context.unrecovered.find((u) => u.server === 'db-01')?.reason ?? '', new RegExp(`BMC refused the power-on\\); planned again without ${victim}: `));
});

test('incident machine - a step that failed part-way is undone too: a hypervisor granted some of its LUNs gives every one back', async () => {
  const effects = new FakeEffects();
  // Only a hypervisor is granted several LUNs (one per VM it will host): refuse each one's second grant.
  const grants = new Map<string, number>();
  effects.answer = (c) => {
    if (c.kind !== 'storage' || c.action !== 'grant') return succeeded;
    const n = (grants.get(c.host) ?? 0) + 1;
    grants.set(c.host, n);
    return n === 2 ? refused('array refused the grant') : succeeded;
  };
  const end = await runToEnd(createActor(machineWith(effects), { input: incidentInput({ maxAttempts: 1 }) }));
  const partial = [...grants].filter(([, n]) => n >= 2).map(([host]) => host);
  assert.ok(partial.length > 0, 'a hypervisor was part-way through its grants');
  for (const host of partial) {
    const granted = effects.published.filter((c) => c.kind === 'storage' && c.action === 'grant' && c.host === host);
    const revoked = new Set(effects.published.filter((c) => c.kind === 'storage' && c.action === 'revoke' && c.host === host).map((c) => (c.kind === 'storage' && 'lun' in c ? c.lun : '')));
    for (const g of granted) assert.ok(g.kind === 'storage' && 'lun' in g && revoked.has(g.lun), `${host}: LUN ${g.kind === 'storage' && 'lun' in g ? g.lun : '?'} granted, then revoked`);
    assert.equal(effects.leases.has(host), false, `${host} went back`);
  }
  assert.ok(Object.values(end.context.targets).some((t) => t.status === 'failed'));
});

test('incident machine - a server whose heartbeat never comes times out on each attempt, then is given up and undone in bounded time', async () => {
  const effects = new FakeEffects();
  // db-01's new host powers on, but its OS never comes up.
  let victim: string | undefined;
  effects.answer = (c) => {
    if (c.kind === 'storage' && c.action === 'grant' && c.lun === 'db-01-san-a') effects.silent.add((victim = c.host));
    return succeeded;
  };
  const heartbeatTimeoutMs = 150;
  const started = Date.now();
  const end = await within(5_000, runToEnd(createActor(machineWith(effects, { heartbeatTimeoutMs }), { input: incidentInput({ maxAttempts: 2 }) })));
  const took = Date.now() - started;
  assert.ok(victim);
  assert.equal(end.value, 'degraded');
  assert.ok(victim in end.context.abandoned, 'its host was given up as dead');
  assert.match(end.context.unrecovered.find((u) => u.server === 'db-01')?.reason ?? '', /^heartbeat: .*timeout/);
  assert.equal(effects.heartbeatWaits.filter((w) => w.server === 'db-01').length, 2, 'waited twice');
  assert.deepEqual(sequence(effects, victim), [
    'power off',
    'storage grant',
    'net access',
    'boot configure',
    'power pxe-once',
    'power on',
    // No heartbeat after two waits: every step is undone, last first.
    'power off',
    'boot clear',
    'net shut',
    'storage revoke',
  ]);
  assert.equal(effects.leases.has(victim), false, 'the host went back');
  assert.ok(took >= 2 * heartbeatTimeoutMs, `gave each attempt its time (${took} ms)`);
  // The other servers were not held up by it: all 15 others that could be placed are back.
  assert.equal(Object.values(end.context.targets).filter((t) => t.status === 'done').length, 15);
});

test('incident machine - a step whose results never come times out, is retried under a new command id, and is undone when the retry times out too', async () => {
  const effects = new FakeEffects();
  let victim: string | undefined;
  effects.answer = (c) => {
    if (c.kind === 'storage' && c.action === 'grant' && c.lun === 'db-01-san-a') victim = c.host;
    if (c.kind !== 'boot' || c.action !== 'configure' || c.host !== victim) return succeeded;
    // The first attempt's executor dies with the command: no result at all, the planner's own deadline ends the wait.
    // The second reaches an executor, but the boot service hangs: the executor reports its deadline passed.
    return c.attempt === 1 ? unanswered : hungUntilDeadline(c);
  };
  const stepTimeoutMs = 100;
  // What the planner allows past a step's deadline for results still in transit.
  const slackMs = 5_000;
  const started = Date.now();
  const end = await within(10_000, runToEnd(createActor(machineWith(effects, { stepTimeoutMs }), { input: incidentInput({ maxAttempts: 2 }) })));
  const took = Date.now() - started;
  assert.ok(victim);
  assert.equal(end.context.targets['db-01']?.status, 'failed');
  assert.match(end.context.unrecovered.find((u) => u.server === 'db-01')?.reason ?? '', /^boot: .*deadline passed/);
  assert.deepEqual(sequence(effects, victim), ['power off', 'storage grant', 'net access', 'boot configure', 'power pxe-once', 'boot configure', 'power pxe-once', 'boot clear', 'net shut', 'storage revoke']);
  const configures = effects.published.filter((c) => c.kind === 'boot' && c.host === victim && c.action === 'configure');
  assert.deepEqual(configures.map((c) => c.attempt), [1, 2]);
  assert.notEqual(configures[0]?.commandId, configures[1]?.commandId);
  assert.equal(effects.leases.has(victim), false, 'the host went back');
  assert.ok(took >= stepTimeoutMs + slackMs, `the first attempt waited out its deadline (${took} ms)`);
  assert.ok(took < 2 * (stepTimeoutMs + slackMs), `and the second did not need to (${took} ms)`);
});

test('incident machine - resumed from its snapshot after a crash, it asks again only for what was in flight, and nothing runs twice', async () => {
  const effects = new FakeEffects();
  const first = createActor(machineWith(effects), { input: incidentInput() });
  const crashedAt = new Promise<void>((resolve) => {
    const sub = first.subscribe((s) => {
      // Some targets are part-way through their steps.
      if (s.matches('recovering') && effects.published.filter((c) => c.kind === 'boot').length >= 3) {
        sub.unsubscribe();
        effects.crash();
        resolve();
      }
    });
  });
  first.start();
  await crashedAt;
  // Whatever reached the planner before the crash is in the snapshot; commands published but unanswered stay in flight.
  await new Promise((r) => setTimeout(r, 50));
  const snapshot: unknown = JSON.parse(JSON.stringify(first.getPersistedSnapshot()));
  first.stop();
  const askedBefore = effects.published.length;
  const finished = new Set(effects.delivered);
  const inFlight = new Set(effects.published.map((c) => c.commandId).filter((id) => !finished.has(id)));
  assert.ok(finished.size > 0 && inFlight.size > 0, 'the crash came mid-recovery');

  effects.restart();
  const end = await runToEnd(createActor(machineWith(effects), { snapshot: snapshot as never, input: incidentInput() }));
  assert.equal(end.value, 'degraded');
  assert.equal(Object.values(end.context.targets).filter((t) => t.status === 'done').length, 16);
  const before = new Set(effects.published.slice(0, askedBefore).map((c) => c.commandId));
  const askedAgain = new Set(effects.published.slice(askedBefore).map((c) => c.commandId).filter((id) => before.has(id)));
  assert.deepEqual([...askedAgain].filter((id) => finished.has(id)), [], 'no finished command was issued again');
  assert.deepEqual([...askedAgain].sort(), [...inFlight].sort(), 'every command in flight at the crash was asked for again');
  assert.deepEqual([...effects.executions].filter(([, n]) => n !== 1), [], 'each command ran once: those in flight were answered from their recorded results');
  assert.ok(effects.published.length > askedBefore + askedAgain.size, 'the resumed incident went on to new steps');
});

test('incident machine - failures that overlap an open incident join it before claiming', async () => {
  const effects = new FakeEffects();
  const half = burnedHosts.slice(0, 10);
  const actor = createActor(machineWith(effects), {
    input: incidentInput({ hosts: half, serverHosts: Object.fromEntries(Object.entries(serverHosts).filter(([, h]) => half.includes(h))) }),
  });
  const done = runToEnd(actor);
  actor.send({ type: 'join', hosts: burnedHosts.slice(10), racks: ['r9'], serverHosts, bmcGone: [] });
  const end = await done;
  assert.equal(end.context.hosts.length, 20);
  assert.equal(end.context.servers.length, 20);
  assert.equal(end.value, 'degraded');
});

test('incident machine - a target host that turns out dead is released and its server planned again onto another host, fenced first', async () => {
  const effects = new FakeEffects();
  // db-01's first host powers on but never comes up; every other host works.
  let victim: string | undefined;
  effects.answer = (c) => {
    if (c.kind === 'storage' && c.action === 'grant' && c.lun === 'db-01-san-a' && victim === undefined) effects.silent.add((victim = c.host));
    return succeeded;
  };
  const two = Object.fromEntries(Object.entries(serverHosts).filter(([s]) => s === 'db-01' || s === 'web-01'));
  assert.equal(Object.keys(two).length, 2);
  const end = await within(5_000, runToEnd(createActor(machineWith(effects, { heartbeatTimeoutMs: 100 }), { input: incidentInput({ serverHosts: two, maxAttempts: 1 }) })));
  assert.ok(victim);
  assert.equal(end.value, 'recovered', JSON.stringify(end.context.unrecovered));
  const target = end.context.targets['db-01']?.target;
  assert.ok(target?.mode === 'bare-metal' && target.host !== victim, `db-01 on ${JSON.stringify(target)}`);
  assert.equal(end.context.replans, 1);
  assert.match(end.context.abandoned[victim] ?? '', /^heartbeat: /);
  assert.equal(effects.leases.has(victim), false, 'the dead host went back');
  assert.equal(effects.leases.has(target.host), true, 'the new one is kept for db-01');
  // Its LUN left the dead host before the new host got it.
  const revoked = effects.published.findIndex((c) => c.kind === 'storage' && c.action === 'revoke' && c.host === victim && c.lun === 'db-01-san-a');
  const granted = effects.published.findIndex((c) => c.kind === 'storage' && c.action === 'grant' && c.host === target.host && c.lun === 'db-01-san-a');
  assert.ok(revoked >= 0 && granted > revoked, `revoked at ${revoked}, granted again at ${granted}`);
  assert.equal(end.context.targets['web-01']?.status, 'done', 'the other server was not disturbed');
  const web = end.context.targets['web-01']?.target;
  assert.ok(web?.mode === 'bare-metal');
  assert.equal(effects.published.filter((c) => c.kind === 'power' && c.action === 'on' && c.host === web.host).length, 1, 'web-01 powered on once');
});
