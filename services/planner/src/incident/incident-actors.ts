/**
 * The incident machines' invoked actors, built over an `IncidentEffects`:
 * the real one in the service, fakes with real failure modes in tests. The
 * machines stay free of I/O; these turn a step into commands and results.
 */
import { fromPromise } from 'xstate';
import type { Command, CommandResult, Inventory } from '@firebreak/shared';
import { planPlacement, type PlacementPolicy, type Plan } from '../placement/index.ts';
import type { HeartbeatWanted, IncidentEffects } from './effects.ts';
import { incidentMachine, type BorrowInput, type CleanupInput, type CleanupOutcome, type FenceInput, type FenceMethod, type PlanInput } from './incident.machine.ts';
import { RecoveryPlanner, stepsOf, targetHost, targetKey, type CommandFrame, type PriorState, type RecoveryTarget, type StepName } from './recovery-steps.ts';
import { serverRecoveryMachine, type StepInput, type StepOutput, type UndoInput } from './server.machine.ts';

export interface IncidentActorOptions {
  inventory: Inventory;
  effects: IncidentEffects;
  /** The planner's current leader token: read when a command is issued, so a resumed incident carries the new leader's. */
  fencingToken: () => number;
  /** This planner's instance id, the owner of the lease the token comes with. */
  issuer: string;
  /** Hosts the planner may use now (not production, not failed, not leased elsewhere). */
  candidates: () => string[];
  /** Hosts a drill may borrow: idle capacity only (spares and hosts that run nothing), never a host that runs a server. */
  drillCandidates?: () => string[];
  /** VMs running on standing hypervisors. */
  existingVms?: () => { server: string; hypervisor: string }[];
  policy?: Partial<PlacementPolicy>;
  /** How long one step's commands may take. */
  stepTimeoutMs?: number;
  /** How long a BMC power-off may take before fabric fencing takes over. */
  bmcFenceTimeoutMs?: number;
  /** How long to wait for a recovered server's heartbeat. */
  heartbeatTimeoutMs?: number;
  clock?: () => number;
}

const failures = (results: readonly CommandResult[]): string[] =>
  results.filter((r) => r.outcome !== 'succeeded').map((r) => `${r.kind} ${r.commandId}: ${r.outcome}${r.error ? ` (${r.error.message})` : ''}`);

export function incidentActors(options: IncidentActorOptions) {
  const { effects, inventory } = options;
  const recovery = new RecoveryPlanner(inventory);
  const clock = options.clock ?? Date.now;
  const stepTimeoutMs = options.stepTimeoutMs ?? 120_000;
  const bmcFenceTimeoutMs = options.bmcFenceTimeoutMs ?? 15_000;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 600_000;

  const frame = (incidentId: string, site: string, drill: boolean, attempt: number, timeoutMs: number): CommandFrame => {
    const now = clock();
    return { incidentId, site, drill, attempt, now, deadline: now + timeoutMs, fencingToken: options.fencingToken(), issuer: options.issuer };
  };
  /** Commands in flight per incident: a stopped drill's cleanup waits for them, so no late change lands after it. */
  const inFlight = new Map<string, Set<Promise<unknown>>>();
  /** Runs the commands, with a little slack past their deadline for the results to arrive. */
  const run = (commands: readonly Command[], timeoutMs: number): Promise<CommandResult[]> => {
    if (commands.length === 0) return Promise.resolve([]);
    const running = effects.runCommands(commands, AbortSignal.timeout(timeoutMs + 5_000));
    const incidentId = commands[0]?.incidentId ?? '';
    const set = inFlight.get(incidentId) ?? new Set();
    inFlight.set(incidentId, set);
    set.add(running);
    const forget = (): void => {
      set.delete(running);
      if (set.size === 0) inFlight.delete(incidentId);
    };
    running.then(forget, forget);
    return running;
  };
  const settled = async (incidentId: string): Promise<void> => {
    await Promise.allSettled([...(inFlight.get(incidentId) ?? [])]);
  };

  const fenceHost = async (input: FenceInput, host: string, bmcGone: boolean): Promise<FenceMethod> => {
    // BMC power-off first, unless the detector already knows the BMC is gone.
    if (!bmcGone) {
      const results = await run(recovery.fenceByBmc(host, frame(input.incidentId, input.site, false, 1, bmcFenceTimeoutMs)), bmcFenceTimeoutMs);
      if (failures(results).length === 0) return 'bmc';
    }
    const results = await run(recovery.fenceByFabric(host, frame(input.incidentId, input.site, false, 1, stepTimeoutMs)), stepTimeoutMs);
    return failures(results).length === 0 ? 'fabric' : 'failed';
  };
  /**
   * Each host's fence of an incident, in flight or settled a little while ago. Failed hosts that join an
   * open incident start its fence again over all its hosts: a host already being fenced the same way is
   * waited for, not asked of the bus again (a rack's hosts are found over a second or two, one join each).
   */
  const fences = new Map<string, Promise<FenceMethod>>();
  const FENCE_KEPT_MS = 60_000;
  const fenceOnce = (input: FenceInput, host: string): Promise<FenceMethod> => {
    const bmcGone = input.bmcGone.includes(host);
    const key = `${input.incidentId}/${host}/${bmcGone ? 'fabric' : 'bmc'}`;
    let fenced = fences.get(key);
    if (fenced === undefined) {
      fenced = fenceHost(input, host, bmcGone);
      fences.set(key, fenced);
      const forget = (): void => void setTimeout(() => fences.delete(key), FENCE_KEPT_MS).unref();
      // A fence that threw is forgotten at once, so the next attempt asks again.
      fenced.then(forget, () => fences.delete(key));
    }
    return fenced;
  };

  const fence = fromPromise<Record<string, FenceMethod>, FenceInput>(async ({ input }) => {
    const outcomes = await Promise.all(input.hosts.map(async (host): Promise<[string, FenceMethod]> => [host, await fenceOnce(input, host)]));
    return Object.fromEntries(outcomes);
  });

  const plan = fromPromise<Plan, PlanInput>(async ({ input }) => {
    const excluded = new Set(input.excluded);
    if (input.drill) {
      // Production comes first: a drill neither preempts work nor packs onto a standing hypervisor.
      const planned = planPlacement({
        inventory,
        servers: input.servers,
        candidates: (options.drillCandidates?.() ?? []).filter((h) => !excluded.has(h)),
        failed: { hosts: input.failedHosts, racks: input.failedRacks },
        policy: { ...options.policy, allowPreemption: false },
        existingVms: [],
      });
      const why = 'drills use only idle capacity (spares and hosts that run nothing)';
      return { ...planned, unplaced: planned.unplaced.map((u) => ({ ...u, explanation: `${u.explanation}; ${why}` })) };
    }
    return planPlacement({
      inventory,
      servers: input.servers,
      candidates: options.candidates().filter((h) => !excluded.has(h)),
      failed: { hosts: input.failedHosts, racks: input.failedRacks },
      ...(options.policy !== undefined && { policy: options.policy }),
      existingVms: options.existingVms?.() ?? [],
    });
  });

  /**
   * Heartbeat watches begun by the step that boots a target (power-on, vm-start), by incident and target:
   * the heartbeat step that follows counts a beat sent from that step on, even one sent before it began.
   */
  const watches = new Map<string, { sentAfter: number; stop: AbortController }>();
  const watchKey = (input: StepInput): string => `${input.incidentId}/${targetKey(input.target)}`;
  const heartbeatWanted = (input: StepInput, sentAfter: number): HeartbeatWanted => {
    const { target } = input;
    const host = recovery.host(targetHost(target));
    return { incidentId: input.incidentId, site: input.site, rack: host.rack, host: host.id, server: target.mode === 'hypervisor' ? null : target.server, sentAfter };
  };
  const endWatch = (key: string): void => {
    watches.get(key)?.stop.abort();
    watches.delete(key);
  };

  const runStep = fromPromise<StepOutput, StepInput>(async ({ input, signal }) => {
    const { target, step } = input;
    const key = watchKey(input);
    if (step === 'heartbeat') {
      // A watch begun with the power-on has heard every beat since; a retried wait (or one after a restart) starts afresh.
      const watch = input.attempt === 1 ? watches.get(key) : undefined;
      try {
        const at = await effects.waitForHeartbeat(heartbeatWanted(input, watch?.sentAfter ?? clock()), AbortSignal.any([signal, AbortSignal.timeout(heartbeatTimeoutMs)]));
        return { at };
      } finally {
        endWatch(key);
      }
    }
    const steps = stepsOf(target);
    if (effects.watchHeartbeats !== undefined && steps[steps.indexOf(step) + 1] === 'heartbeat') {
      // The host may boot and beat before this step's result is back: listen from before it is powered on.
      endWatch(key);
      const sentAfter = clock();
      const stop = new AbortController();
      watches.set(key, { sentAfter, stop });
      effects.watchHeartbeats(heartbeatWanted(input, sentAfter), AbortSignal.any([stop.signal, AbortSignal.timeout(stepTimeoutMs + heartbeatTimeoutMs)]));
    }
    const commands = recovery.commands(target, step, frame(input.incidentId, input.site, input.drill, input.attempt, stepTimeoutMs));
    try {
      const failed = failures(await run(commands, stepTimeoutMs));
      if (failed.length > 0) throw new Error(`${step} failed: ${failed.join('; ')}`);
    } catch (err) {
      endWatch(key);
      throw err;
    }
    return { at: clock() };
  });

  /** Runs what `build` gives for attempt 1, then for each later attempt only what has not succeeded yet; returns the last failures. */
  const withRetries = async (build: (attempt: number) => Command[], attempts: number): Promise<string[]> => {
    let pending = new Set(build(1).map((c) => withoutAttempt(c.commandId)));
    let problems: string[] = [];
    for (let attempt = 1; attempt <= attempts && pending.size > 0; attempt++) {
      const results = await run(build(attempt).filter((c) => pending.has(withoutAttempt(c.commandId))), stepTimeoutMs);
      pending = new Set(results.filter((r) => r.outcome !== 'succeeded').map((r) => withoutAttempt(r.commandId)));
      problems = failures(results);
    }
    return problems;
  };

  /**
   * Takes the steps back, last first. Within a step, access goes before what it refers to (a LUN's grant is
   * revoked before its clone is deleted). What fails is tried again, as a new command, up to `attempts` times.
   */
  const undoTarget = async (incidentId: string, site: string, drill: boolean, target: RecoveryTarget, steps: readonly StepName[], attempts = 1): Promise<string[]> => {
    const failed: string[] = [];
    for (const step of steps) {
      const undo = (attempt: number): Command[] => recovery.undo(target, step, frame(incidentId, site, drill, attempt, stepTimeoutMs));
      failed.push(...(await withRetries((attempt) => undo(attempt).filter(revokesAccess), attempts)));
      failed.push(...(await withRetries((attempt) => undo(attempt).filter((c) => !revokesAccess(c)), attempts)));
    }
    return failed;
  };

  /** Reads each host's power, ports and boot entry before a drill changes anything on it. */
  const borrow = fromPromise<Record<string, PriorState>, BorrowInput>(async ({ input }) => {
    const found: Record<string, PriorState> = {};
    await Promise.all(
      input.hosts.map(async (host) => {
        const reads = recovery.borrowReads(host, frame(input.incidentId, input.site, true, 1, stepTimeoutMs));
        const results = await run(reads, stepTimeoutMs);
        const failed = failures(results);
        if (failed.length > 0) throw new Error(`could not read ${host} before borrowing it: ${failed.join('; ')}`);
        found[host] = recovery.priorStateOf(host, reads, results);
      }),
    );
    return found;
  });

  const undoSteps = fromPromise<void, UndoInput>(async ({ input }) => {
    const failed = await undoTarget(input.incidentId, input.site, input.drill, input.target, input.steps);
    if (failed.length > 0) throw new Error(`undo failed: ${failed.join('; ')}`);
  });

  /**
   * Puts back everything a drill borrowed or made, three tries per command, and says what it put back and what
   * it could not. VMs go first; then each borrowed host's power as it was (nothing runs on it while its wiring
   * changes); then the drill's LUN grants and clones; then each host's ports and boot entry exactly as read
   * before the drill. A target whose host was never read (its borrow failed) is undone step by step instead.
   */
  const cleanup = fromPromise<CleanupOutcome, CleanupInput>(async ({ input }) => {
    await settled(input.incidentId);
    const outcome: CleanupOutcome = { restored: [], left: [] };
    const note = (about: { host?: string; server?: string }, name: string, failed: readonly string[]): void => {
      if (failed.length === 0) outcome.restored.push({ ...about, what: `${name}: put back` });
      else outcome.left.push(...failed.map((f) => ({ ...about, what: `${name}: ${f}` })));
    };
    const at = (attempt: number): CommandFrame => frame(input.incidentId, input.site, input.drill, attempt, stepTimeoutMs);
    const borrowed = Object.entries(input.borrowed);
    for (const target of input.targets.filter((t) => t.mode === 'vm')) {
      note({ host: targetHost(target), server: target.server }, `VM ${target.server} on ${targetHost(target)}`, await undoTarget(input.incidentId, input.site, input.drill, target, stepsOf(target).reverse(), 3));
    }
    for (const [host, prior] of borrowed) note({ host }, `host ${host} power ${prior.power}`, await withRetries((attempt) => recovery.restores(host, prior, at(attempt)).power, 3));
    for (const target of input.targets.filter((t) => t.mode !== 'vm')) {
      const host = targetHost(target);
      const about = target.mode === 'hypervisor' ? { host } : { host, server: target.server };
      const name = target.mode === 'hypervisor' ? `hypervisor ${host}` : `${target.server} on ${host}`;
      const steps = host in input.borrowed ? (['storage'] as StepName[]) : stepsOf(target).reverse();
      note(about, name, await undoTarget(input.incidentId, input.site, input.drill, target, steps, 3));
    }
    for (const [host, prior] of borrowed) note({ host }, `host ${host} ports and boot entry`, await withRetries((attempt) => recovery.restores(host, prior, at(attempt)).wiring, 3));
    await effects.releaseHosts(input.incidentId, input.hosts);
    for (const host of input.hosts) outcome.restored.push({ host, what: `host ${host} returned` });
    return outcome;
  });

  return {
    fence,
    plan,
    claim: fromPromise(({ input }: { input: { incidentId: string; hosts: string[] } }) => effects.claimHosts(input.incidentId, input.hosts)),
    release: fromPromise(({ input }: { input: { incidentId: string; hosts: string[] } }) => effects.releaseHosts(input.incidentId, input.hosts)),
    borrow,
    cleanup,
    serverRecovery: serverRecoveryMachine.provide({ actors: { runStep, undoSteps } }),
  };
}

/** A command id names its attempt last (recovery-steps.ts): the same undo tried again differs only there. */
const withoutAttempt = (commandId: string): string => commandId.replace(/-a\d+$/, '');

/** Storage access revoked: done before what it refers to (a clone) is deleted. */
function revokesAccess(command: Command): boolean {
  return command.kind === 'storage' && (command.action === 'revoke' || command.action === 'revoke-all');
}

/** The incident machine with its effects bound: what the service runs and the tests drive. */
export function boundIncidentMachine(options: IncidentActorOptions) {
  return incidentMachine.provide({ actors: incidentActors(options) });
}
