import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createActor, type SnapshotFrom } from 'xstate';
import type { Command, CommandResult } from '@firebreak/shared';
import type { ClaimOutcome, HeartbeatWanted, IncidentEffects } from '../src/incident/effects.ts';
import { boundIncidentMachine, type IncidentActorOptions } from '../src/incident/incident-actors.ts';
import type { IncidentInput, incidentMachine } from '../src/incident/incident.machine.ts';
import { referenceScenario } from '../src/placement/testing/reference-scenario.ts';

/**
 * Effects with the failure modes of the real ones: commands can fail by rule,
 * results are recorded like FB_RESULTS (a command already answered is not
 * published again), leases are exclusive, heartbeats come only for hosts that
 * were powered on.
 */
class FakeEffects implements IncidentEffects {
  readonly published: Command[] = [];
  readonly stored = new Map<string, CommandResult>();
  readonly leases = new Map<string, string>();
  readonly poweredOn = new Set<string>();
  failWhen: (c: Command) => string | undefined = () => undefined;

  async runCommands(commands: readonly Command[]): Promise<CommandResult[]> {
    await new Promise((r) => setImmediate(r));
    return commands.map((c) => {
      const stored = this.stored.get(c.commandId);
      if (stored) return stored;
      this.published.push(c);
      const error = this.failWhen(c);
      if (!error && c.kind === 'power' && c.action === 'on') this.poweredOn.add(c.host);
      const result: CommandResult = {
        commandId: c.commandId,
        incidentId: c.incidentId,
        kind: c.kind,
        outcome: error ? 'failed' : 'succeeded',
        attempts: 1,
        startedAt: 0,
        finishedAt: 0,
        executor: 'fake',
        replayed: false,
        ...(error && { error: { code: 'permanent', message: error, retryable: false } }),
      };
      this.stored.set(c.commandId, result);
      return result;
    });
  }

  async waitForHeartbeat(wanted: HeartbeatWanted, signal: AbortSignal): Promise<number> {
    await new Promise((r) => setImmediate(r));
    if (this.poweredOn.has(wanted.host)) return Date.now();
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
  }

  async claimHosts(incidentId: string, hosts: readonly string[]): Promise<ClaimOutcome> {
    const owner = `incident:${incidentId}`;
    const out: ClaimOutcome = { claimed: [], lost: [] };
    for (const host of hosts) {
      const holder = this.leases.get(host) ?? owner;
      this.leases.set(host, holder);
      if (holder === owner) out.claimed.push(host);
      else out.lost.push({ host, holder });
    }
    return out;
  }

  async releaseHosts(incidentId: string, hosts: readonly string[]): Promise<void> {
    for (const host of hosts) if (this.leases.get(host) === `incident:${incidentId}`) this.leases.delete(host);
  }

  publishProgress(): void {}

  /** Index of the first published command matching, or -1. */
  first(match: (c: Command) => boolean): number {
    return this.published.findIndex(match);
  }
}

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
  assert.ok(effects.published.every((c) => c.fencingToken === 7));
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
  effects.failWhen = (c) => (c.kind === 'power' && burnedHosts.includes(c.host) ? 'BMC unreachable' : undefined);
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
  effects.failWhen = (c) => ('host' in c && c.host === stuck && (c.kind === 'power' || c.kind === 'net') ? 'unreachable' : undefined);
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

test('incident machine - a failing step is retried, then its finished steps are undone and the host released', async () => {
  const effects = new FakeEffects();
  // Every network change on the host chosen for db-01 fails.
  let victim: string | undefined;
  effects.failWhen = (c) => {
    if (c.kind === 'storage' && c.action === 'grant' && c.lun === 'db-01-san-a') victim = c.host;
    return c.kind === 'net' && c.action !== 'shut' && c.host === victim ? 'switch refused the VLAN' : undefined;
  };
  const end = await runToEnd(createActor(machineWith(effects), { input: incidentInput() }));
  assert.ok(victim);
  assert.equal(end.context.targets['db-01']?.status, 'failed');
  const netAttempts = new Set(effects.published.filter((c) => c.kind === 'net' && c.host === victim && c.action !== 'shut').map((c) => c.attempt));
  assert.deepEqual([...netAttempts].sort(), [1, 2], 'two attempts, each with its own command id');
  const revoke = effects.first((c) => c.kind === 'storage' && c.action === 'revoke' && c.host === victim);
  const grant = effects.first((c) => c.kind === 'storage' && c.action === 'grant' && c.host === victim);
  assert.ok(revoke > grant, 'the grant was compensated');
  assert.equal(effects.leases.has(victim), false, 'the host went back');
  assert.match(end.context.unrecovered.find((u) => u.server === 'db-01')?.reason ?? '', /switch refused the VLAN/);
});

test('incident machine - restored from a snapshot mid-recovery, it finishes without re-issuing finished commands', async () => {
  const effects = new FakeEffects();
  const machine = machineWith(effects);
  const first = createActor(machine, { input: incidentInput() });
  const snapshot = await new Promise<unknown>((resolve) => {
    const sub = first.subscribe((s) => {
      // Some targets are part-way through.
      if (s.matches('recovering') && effects.published.filter((c) => c.kind === 'boot').length >= 3) {
        sub.unsubscribe();
        resolve(JSON.parse(JSON.stringify(first.getPersistedSnapshot())));
      }
    });
    first.start();
  });
  first.stop();
  const publishedBefore = effects.published.length;
  const end = await runToEnd(createActor(machineWith(effects), { snapshot: snapshot as never, input: incidentInput() }));
  assert.equal(end.value, 'degraded');
  assert.equal(Object.values(end.context.targets).filter((t) => t.status === 'done').length, 16);
  const ids = effects.published.map((c) => c.commandId);
  assert.equal(new Set(ids).size, ids.length, 'no command was published twice');
  assert.ok(effects.published.length > publishedBefore, 'the resumed incident went on');
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
