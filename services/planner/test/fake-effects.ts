/**
 * Incident effects for machine and manager tests, with the failure modes of
 * the real ones: devices refuse, results never come, a device hangs until the
 * executor gives up at the command's deadline, leases are exclusive, a host
 * heartbeats only once powered on (and not at all if its OS never comes up),
 * and a planner can crash with commands in flight.
 */
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createStore } from '@firebreak/shared';
import { startRedis, type TestServer } from '@firebreak/shared/testing';
import type { Command, CommandResult, IncidentProgress, Store } from '@firebreak/shared';
import type { Inventory } from '@firebreak/shared';
import type { ClaimOutcome, HeartbeatWanted, IncidentEffects } from '../src/incident/effects.ts';
import { IncidentManager, type IncidentManagerOptions } from '../src/incident-manager.ts';

/** What the executor makes of one command. */
export type Answer = { outcome: 'succeeded' } | { outcome: 'failed'; code: string; message: string } | { outcome: 'none' };

export const succeeded: Answer = { outcome: 'succeeded' };
/** The device refused: a permanent failure with this message. */
export const refused = (message: string): Answer => ({ outcome: 'failed', code: 'permanent', message });
/** No result is ever published (the executor that held the command died with it). */
export const unanswered: Answer = { outcome: 'none' };
/** The device never answers: like the real executor, give up at the command's deadline. */
export async function hungUntilDeadline(c: Command): Promise<Answer> {
  await sleep(Math.max(0, c.deadline - Date.now()));
  return { outcome: 'failed', code: 'TIMEOUT', message: 'deadline passed after 1 attempt(s)' };
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class FakeEffects implements IncidentEffects {
  /** Every command handed over for publishing, in order, repeats included: a re-issued command shows up twice. */
  readonly published: Command[] = [];
  /** Results as FB_RESULTS keeps them: a command answered once is answered from here, never carried out again. */
  readonly stored = new Map<string, CommandResult>();
  /** How often the executor carried out each command. */
  readonly executions = new Map<string, number>();
  /** Commands whose result reached the planner. */
  readonly delivered = new Set<string>();
  readonly leases = new Map<string, string>();
  readonly poweredOn = new Set<string>();
  /** Hosts whose OS never comes up: powered on, never heard from. */
  readonly silent = new Set<string>();
  readonly progress: IncidentProgress[] = [];
  /** Every wait for a heartbeat, in order. */
  readonly heartbeatWaits: HeartbeatWanted[] = [];
  /** How the executor answers a command; by default it succeeds at once. */
  answer: (c: Command) => Answer | Promise<Answer> = () => succeeded;
  /** What a read observes, as the lab's devices would report an idle host: off, each port up on VLAN 1, no boot entry. */
  observe: (c: Command) => Record<string, unknown> | undefined = (c) => {
    if (c.kind === 'power' && c.action === 'status') return { powerState: this.poweredOn.has(c.host) ? 'on' : 'off', health: 'OK' };
    if (c.kind === 'net' && c.action === 'read') return { admin: 'up', pvid: 1, vlans: [{ vlan: 1, untagged: true }] };
    if (c.kind === 'boot' && c.action === 'read') return { entry: null };
    return undefined;
  };
  /** Commands the executor is carrying out: the same id published again is the same execution (JetStream dedupes by id). */
  private readonly running = new Map<string, Promise<CommandResult | undefined>>();
  private crashed = false;

  /** The planner dies: what it published still runs and is recorded, but no answer reaches it any more, not even one on its way. */
  crash(): void {
    this.crashed = true;
  }

  /** A planner is running again (a new actor, resumed from a snapshot). */
  restart(): void {
    this.crashed = false;
  }

  async runCommands(commands: readonly Command[], signal: AbortSignal): Promise<CommandResult[]> {
    this.published.push(...commands);
    const results = Promise.all(commands.map((c) => this.execute(c)));
    if (this.crashed) return never();
    await new Promise((r) => setImmediate(r));
    const all = await untilAborted(results, signal);
    if (this.crashed) return never();
    for (const c of commands) this.delivered.add(c.commandId);
    return all.map((r) => r as CommandResult);
  }

  async waitForHeartbeat(wanted: HeartbeatWanted, signal: AbortSignal): Promise<number> {
    this.heartbeatWaits.push(wanted);
    if (this.crashed) return never();
    await new Promise((r) => setImmediate(r));
    if (this.poweredOn.has(wanted.host) && !this.silent.has(wanted.host)) return Date.now();
    return untilAborted(never<number>(), signal);
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

  publishProgress(progress: IncidentProgress): void {
    this.progress.push(progress);
  }

  /** Index of the first published command matching, or -1. */
  first(match: (c: Command) => boolean): number {
    return this.published.findIndex(match);
  }

  /** Resolves with the recorded result, or never when no result is ever published. */
  private execute(c: Command): Promise<CommandResult | undefined> {
    const recorded = this.stored.get(c.commandId);
    if (recorded) return Promise.resolve(recorded);
    let running = this.running.get(c.commandId);
    if (!running) {
      running = this.carryOut(c);
      this.running.set(c.commandId, running);
    }
    return running;
  }

  private async carryOut(c: Command): Promise<CommandResult | undefined> {
    const answer = await this.answer(c);
    if (answer.outcome === 'none') return never();
    this.executions.set(c.commandId, (this.executions.get(c.commandId) ?? 0) + 1);
    if (answer.outcome === 'succeeded' && c.kind === 'power' && c.action === 'on') this.poweredOn.add(c.host);
    const result: CommandResult = {
      commandId: c.commandId,
      incidentId: c.incidentId,
      kind: c.kind,
      outcome: answer.outcome,
      attempts: 1,
      startedAt: 0,
      finishedAt: 0,
      executor: 'fake',
      replayed: false,
      ...(answer.outcome === 'succeeded' && this.observe(c) !== undefined && { observed: this.observe(c) }),
      ...(answer.outcome === 'failed' && { error: { code: answer.code, message: answer.message, retryable: false } }),
    };
    this.stored.set(c.commandId, result);
    this.running.delete(c.commandId);
    return result;
  }
}

/**
 * One real Redis for the test file, started before its tests and stopped
 * after them: the manager's snapshots and the fleet ledger live there as in
 * production. Each call of the returned function empties it and opens a store.
 */
export function useRedis(): () => Promise<Store> {
  let redis: TestServer | undefined;
  const stores: Store[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await redis?.stop();
  });
  return async () => {
    if (!redis) throw new Error('useRedis(): Redis is not up yet; call the returned function inside a test');
    const store = createStore(redis.url);
    stores.push(store);
    await store.redis.flushdb();
    return store;
  };
}

export const quietLogger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as never;

/** A planner's incident manager for site dc1 on these effects, `store` and fencing token 1, its ledger loaded; `options` override. */
export async function testManager(store: Store, inventory: Inventory, effects: IncidentEffects, options: Partial<IncidentManagerOptions> = {}): Promise<IncidentManager> {
  const manager = new IncidentManager({
    inventory,
    site: 'dc1',
    store,
    effects,
    logger: quietLogger,
    fencingToken: () => 1,
    issuer: 'planner-test',
    actor: { stepTimeoutMs: 5_000, heartbeatTimeoutMs: 30_000 },
    ...options,
  });
  await manager.resume();
  return manager;
}
