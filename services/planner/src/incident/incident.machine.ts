/**
 * One incident, from detection to its outcome (ARCHITECTURE.md, "Recovery of
 * one incident"): detected → fencing → planning → claiming → recovering (a
 * child machine per target) → verifying → recovered | degraded | failed.
 * A target host that turns out dead (its BMC, its OS or its hypervisor
 * fails it) is given up and released, and its servers are planned again onto
 * other hosts within the incident. Drills skip fencing and end with a
 * cleanup that returns every borrowed host; a stop (or the drill's time
 * running out, which the manager sends as a stop) ends a drill in whatever
 * state it is, and a cleanup that leaves anything undone fails the drill.
 * Every effect is an invoked actor bound in the wiring; this file decides.
 */
import { assign, enqueueActions, fromPromise, setup } from 'xstate';
import type { Plan } from '../placement/index.ts';
import type { ClaimOutcome } from './effects.ts';
import { targetHost, targetKey, type PriorState, type RecoveryTarget, type StepName } from './recovery-steps.ts';
import { errorText, serverRecoveryMachine, type ServerParentEvent } from './server.machine.ts';

export const INCIDENT_MACHINE_ID = 'firebreak-incident';
/** Bump when states or context change shape: snapshots of another version are refused, not misread. */
export const INCIDENT_MACHINE_VERSION = '3';

export type FenceMethod = 'bmc' | 'fabric' | 'failed';

export interface IncidentInput {
  incidentId: string;
  site: string;
  trigger: 'event' | 'drill';
  drillId?: string;
  /** Hosts that failed (or, in a drill, that are rehearsed as failed). */
  hosts: string[];
  racks: string[];
  /** Each server those hosts ran, with the host it ran on. */
  serverHosts: Record<string, string>;
  /** Hosts whose BMC is known to be gone: straight to fabric fencing. */
  bmcGone: string[];
  firstFailureAt: number;
  detectedAt: number;
  /** Re-plans after lost host races before giving up on claiming. */
  maxReplans?: number;
  /** Per-step attempts in the server machines. */
  maxAttempts?: number;
  retryBaseMs?: number;
  /** A drill is stopped (and cleans up) this long after it opened: the manager keeps the clock. */
  drillMaxMs?: number;
  /** W3C trace context of the event that opened the incident: its commands join that trace. */
  traceCarrier?: Record<string, string>;
}

export type TargetStatus = 'pending' | 'running' | 'done' | 'failed';

export interface TargetState {
  target: RecoveryTarget;
  status: TargetStatus;
  step: StepName | null;
  heartbeatAt: number | null;
  error: string | null;
}

export interface Unrecovered {
  server: string;
  reason: string;
}

export interface IncidentContext extends Required<Omit<IncidentInput, 'drillId'>> {
  drillId: string | null;
  servers: string[];
  fence: Record<string, FenceMethod>;
  fencedAt: number | null;
  plan: Plan | null;
  plannedAt: number | null;
  /** Hosts lost to other incidents' claims, or given up as dead targets: planned around. */
  excluded: string[];
  replans: number;
  claimed: string[];
  /** Hosts claimed by an attempt that is being undone (a lost race, a dead target): released next. */
  toRelease: string[];
  /** Servers planned again after their target host turned out dead; empty on the first plan. */
  replanServers: string[];
  /** Target hosts given up as dead, with why: never used again by this incident. */
  abandoned: Record<string, string>;
  targets: Record<string, TargetState>;
  unrecovered: Unrecovered[];
  /** What a drill found on each host it borrowed, read before it changed anything: cleanup puts exactly this back. */
  borrowed: Record<string, PriorState>;
  /** A drill was told to stop (or cleans up at the end of its rehearsal): further stops change nothing. */
  stopped: boolean;
  /** What a drill's cleanup put back and what it could not: anything left fails the drill. Null before cleanup. */
  cleanup: CleanupOutcome | null;
  finishedAt: number | null;
  error: string | null;
}

export type IncidentEvent =
  | ServerParentEvent
  /** More failed hosts that overlap this incident. */
  | { type: 'join'; hosts: string[]; racks: string[]; serverHosts: Record<string, string>; bmcGone: string[] }
  | { type: 'drill.stop' };

export interface FenceInput {
  incidentId: string;
  site: string;
  hosts: string[];
  bmcGone: string[];
}

export interface PlanInput {
  incidentId: string;
  /** A drill places only on idle capacity: spares and hosts that run nothing. */
  drill: boolean;
  servers: string[];
  failedHosts: string[];
  failedRacks: string[];
  excluded: string[];
}

/** One thing a drill borrowed or made, as its cleanup found it (IncidentProgress's CleanupItem). */
export interface CleanupNote {
  host?: string;
  server?: string;
  what: string;
}

export interface CleanupOutcome {
  restored: CleanupNote[];
  left: CleanupNote[];
}

export interface BorrowInput {
  incidentId: string;
  site: string;
  hosts: string[];
}

export interface CleanupInput {
  incidentId: string;
  site: string;
  drill: boolean;
  /** Hosts to put back as they were found. */
  borrowed: Record<string, PriorState>;
  /** Targets to take back (every step undone), VMs first, then hypervisors, then bare metal. */
  targets: RecoveryTarget[];
  hosts: string[];
}

/** Every host a plan takes, whether by assignment or conversion. */
export function hostsOfPlan(plan: Plan): string[] {
  const hosts = new Set<string>();
  for (const a of plan.assignments) hosts.add(a.mode === 'bare-metal' ? a.host : a.hypervisor);
  for (const c of plan.conversions) hosts.add(c.host);
  return [...hosts].sort();
}

/** The recovery targets of a plan: bare-metal servers, hypervisors (converted or standing), VMs. */
export function targetsOfPlan(plan: Plan): RecoveryTarget[] {
  const converted = new Set(plan.conversions.map((c) => c.host));
  const vmsOn = new Map<string, string[]>();
  const targets: RecoveryTarget[] = [];
  for (const a of plan.assignments) {
    if (a.mode === 'bare-metal') targets.push({ mode: 'bare-metal', server: a.server, host: a.host });
    else {
      vmsOn.set(a.hypervisor, [...(vmsOn.get(a.hypervisor) ?? []), a.server]);
      targets.push({ mode: 'vm', server: a.server, hypervisor: a.hypervisor });
    }
  }
  for (const [host, servers] of [...vmsOn].sort(([a], [b]) => a.localeCompare(b))) {
    targets.push({ mode: 'hypervisor', host, servers: servers.sort(), standing: !converted.has(host) });
  }
  return targets;
}

/** A re-planned server's new target is a new child: the failed one's id may still be taken. */
const childId = (key: string, replans: number): string => (replans === 0 ? `target-${key}` : `target-${key}-r${replans}`);
/**
 * Steps whose failure says the target host itself is dead or unreachable:
 * its BMC, its OS, its hypervisor. Not storage, network or boot, whose
 * failures are the array's, the switch's or the boot service's, and would
 * follow the server to any other host.
 */
const hostSteps: ReadonlySet<StepName> = new Set(['prepare', 'power-on', 'heartbeat', 'vm-define', 'vm-start']);
const union = (a: readonly string[], b: readonly string[]): string[] => [...new Set([...a, ...b])].sort();
/** A phase's actor failed: noted on the incident, named by its phase. */
const failedWith = (phase: string) => ({ type: 'recordFailure' as const, params: ({ event }: { event: { error?: unknown } }) => ({ phase, error: event.error }) });
const settled = (t: TargetState): boolean => t.status === 'done' || t.status === 'failed';

export const incidentMachine = setup({
  types: {
    input: {} as IncidentInput,
    context: {} as IncidentContext,
    events: {} as IncidentEvent,
  },
  actors: {
    fence: fromPromise<Record<string, FenceMethod>, FenceInput>(() => Promise.reject(new Error('fence is not provided'))),
    plan: fromPromise<Plan, PlanInput>(() => Promise.reject(new Error('plan is not provided'))),
    claim: fromPromise<ClaimOutcome, { incidentId: string; hosts: string[] }>(() => Promise.reject(new Error('claim is not provided'))),
    release: fromPromise<void, { incidentId: string; hosts: string[] }>(() => Promise.reject(new Error('release is not provided'))),
    borrow: fromPromise<Record<string, PriorState>, BorrowInput>(() => Promise.reject(new Error('borrow is not provided'))),
    cleanup: fromPromise<CleanupOutcome, CleanupInput>(() => Promise.reject(new Error('cleanup is not provided'))),
    serverRecovery: serverRecoveryMachine,
  },
  actions: {
    markFinished: assign({ finishedAt: () => Date.now() }),
    /** The claimed hosts' targets join the incident; hosts lost to another incident leave their servers unrecovered. */
    takeClaims: assign(({ context, event }) => {
      const output = (event as unknown as { output: ClaimOutcome }).output;
      const lost = new Set(output.lost.map((l) => l.host));
      // Targets of earlier plans stay (done, or failed and not planned again); a re-planned server's failed one makes way.
      const replanned = new Set(context.replanServers);
      const targets: Record<string, TargetState> = Object.fromEntries(
        Object.entries(context.targets).filter(([, t]) => t.target.mode === 'hypervisor' ? !(t.target.host in context.abandoned) : !replanned.has(t.target.server)),
      );
      const unrecovered = [...context.unrecovered];
      for (const target of context.plan ? targetsOfPlan(context.plan) : []) {
        if (lost.has(targetHost(target))) {
          if (target.mode !== 'hypervisor') unrecovered.push({ server: target.server, reason: `host ${targetHost(target)} went to another incident after ${context.replans} re-plans` });
          continue;
        }
        targets[targetKey(target)] = { target, status: 'pending', step: null, heartbeatAt: null, error: null };
      }
      return { claimed: union(context.claimed, output.claimed), targets, unrecovered, replanServers: [] };
    }),
    forgetReleased: assign(({ context }) => ({ claimed: context.claimed.filter((h) => !context.toRelease.includes(h)), toRelease: [] })),
    recordFailure: assign((_, params: { phase: string; error: unknown }) => ({ error: `${params.phase}: ${errorText(params.error)}` })),
    /** A stopped drill's recoveries in flight end now; cleanup waits for their commands to settle (incident-actors.ts). */
    stopTargets: enqueueActions(({ self, enqueue }) => {
      for (const id of Object.keys(self.getSnapshot().children)) if (id.startsWith('target-')) enqueue.stopChild(id);
    }),
    noteStopped: assign(({ context }) => {
      const why = 'the drill was stopped before it came up';
      const known = new Set(context.unrecovered.map((u) => u.server));
      const up = new Set(Object.values(context.targets).flatMap((t) => (t.status === 'done' && t.target.mode !== 'hypervisor' ? [t.target.server] : [])));
      const stopped = context.servers.filter((s) => !up.has(s) && !known.has(s)).map((server) => ({ server, reason: why }));
      // Targets keep their status (cleanup undoes what began), and say why they never finished.
      const targets = Object.fromEntries(Object.entries(context.targets).map(([key, t]) => [key, t.status === 'done' || t.status === 'failed' ? t : { ...t, error: why }]));
      return { stopped: true, unrecovered: [...context.unrecovered, ...stopped], targets };
    }),
    startReadyTargets: enqueueActions(({ context, enqueue }) => {
      for (const [key, t] of Object.entries(context.targets)) {
        if (t.status !== 'pending' || !ready(context, t.target)) continue;
        enqueue.assign(({ context: c }) => updateTarget(c, key, { status: 'running' }));
        enqueue.spawnChild('serverRecovery', {
          id: childId(key, context.replans),
          input: {
            incidentId: context.incidentId,
            site: context.site,
            target: t.target,
            drill: context.trigger === 'drill',
            maxAttempts: context.maxAttempts,
            retryBaseMs: context.retryBaseMs,
          },
        });
      }
    }),
  },
  guards: {
    isDrill: ({ context }) => context.trigger === 'drill',
    drillRunning: ({ context }) => context.trigger === 'drill' && !context.stopped,
    cleanupLeftWork: ({ context }) => (context.cleanup?.left.length ?? 0) > 0,
    lostRace: ({ context, event }) => (event as unknown as { output: ClaimOutcome }).output.lost.length > 0 && context.replans < context.maxReplans,
    deadTargets: ({ context }) => context.trigger === 'event' && context.replans < context.maxReplans && deadTargetsOf(context).servers.length > 0,
    allSettled: ({ context }) => Object.values(context.targets).every(settled),
    allRecovered: ({ context }) => context.unrecovered.length === 0 && Object.values(context.targets).every((t) => t.status === 'done'),
    someRecovered: ({ context }) => Object.values(context.targets).some((t) => t.status === 'done' && t.target.mode !== 'hypervisor'),
  },
}).createMachine({
  id: INCIDENT_MACHINE_ID,
  context: ({ input }) => ({
    incidentId: input.incidentId,
    site: input.site,
    trigger: input.trigger,
    drillId: input.drillId ?? null,
    hosts: [...input.hosts].sort(),
    racks: [...input.racks].sort(),
    serverHosts: { ...input.serverHosts },
    servers: Object.keys(input.serverHosts).sort(),
    bmcGone: [...input.bmcGone].sort(),
    firstFailureAt: input.firstFailureAt,
    detectedAt: input.detectedAt,
    maxReplans: input.maxReplans ?? 5,
    maxAttempts: input.maxAttempts ?? 3,
    retryBaseMs: input.retryBaseMs ?? 1_000,
    drillMaxMs: input.drillMaxMs ?? 3_600_000,
    traceCarrier: { ...input.traceCarrier },
    fence: {},
    fencedAt: null,
    plan: null,
    plannedAt: null,
    excluded: [],
    replans: 0,
    claimed: [],
    toRelease: [],
    replanServers: [],
    abandoned: {},
    targets: {},
    unrecovered: [],
    borrowed: {},
    stopped: false,
    cleanup: null,
    finishedAt: null,
    error: null,
  }),
  initial: 'detected',
  on: {
    // A drill stops whatever it is doing: planning, claiming, recovering or standing.
    'drill.stop': { guard: 'drillRunning', target: '.cleanup', actions: ['stopTargets', 'noteStopped'] },
    // Overlapping failures join while nothing has been claimed yet; the fence and plan are made again over all hosts.
    join: {
      guard: ({ context }) => context.claimed.length === 0,
      target: '.fencing',
      reenter: true,
      actions: assign(({ context, event }) => ({
        hosts: union(context.hosts, event.hosts),
        racks: union(context.racks, event.racks),
        serverHosts: { ...context.serverHosts, ...event.serverHosts },
        servers: union(context.servers, Object.keys(event.serverHosts)),
        bmcGone: union(context.bmcGone, event.bmcGone),
      })),
    },
  },
  states: {
    detected: {
      always: [{ guard: 'isDrill', target: 'planning' }, { target: 'fencing' }],
    },
    fencing: {
      always: { guard: 'isDrill', target: 'planning' },
      invoke: {
        src: 'fence',
        input: ({ context }) => ({ incidentId: context.incidentId, site: context.site, hosts: context.hosts, bmcGone: context.bmcGone }),
        onDone: {
          target: 'planning',
          actions: assign(({ event }) => ({ fence: event.output, fencedAt: Date.now() })),
        },
        onError: { target: 'failed', actions: failedWith('fencing') },
      },
    },
    planning: {
      invoke: {
        src: 'plan',
        input: ({ context }) => ({
          incidentId: context.incidentId,
          drill: context.trigger === 'drill',
          // No storage grant before a confirmed fence: servers of unfenced hosts wait for an operator.
          servers:
            context.replanServers.length > 0
              ? context.replanServers
              : context.trigger === 'drill'
                ? context.servers
                : context.servers.filter((s) => !unfencedServers(context).has(s)),
          failedHosts: context.hosts,
          failedRacks: context.racks,
          // The hosts this incident keeps for servers it already recovered are not free either.
          excluded: union(context.excluded, context.claimed),
        }),
        onDone: {
          target: 'claiming',
          actions: assign(({ context, event }) => {
            const unplaced = (u: { reason: string; explanation: string }) => `${u.reason}: ${u.explanation}`;
            if (context.replanServers.length > 0) {
              // Planned again: what is still not placed keeps the reason its first host failed.
              const replanned = new Set(context.replanServers);
              const before = new Map(context.unrecovered.map((u) => [u.server, u.reason]));
              const dead = Object.keys(context.abandoned).join(', ');
              return {
                plan: event.output,
                plannedAt: Date.now(),
                unrecovered: [
                  ...context.unrecovered.filter((u) => !replanned.has(u.server)),
                  ...event.output.unplaced.map((u) => ({ server: u.server, reason: `${before.get(u.server) ?? 'its target failed'}; planned again without ${dead}: ${unplaced(u)}` })),
                ],
              };
            }
            return {
              plan: event.output,
              plannedAt: Date.now(),
              unrecovered: [
                ...[...unfencedServers(context)].filter(() => context.trigger !== 'drill').map((server) => ({ server, reason: 'its old host could not be fenced (BMC and fabric both failed)' })),
                ...event.output.unplaced.map((u) => ({ server: u.server, reason: unplaced(u) })),
              ],
            };
          }),
        },
        onError: { target: 'failed', actions: failedWith('planning') },
      },
    },
    claiming: {
      invoke: {
        src: 'claim',
        input: ({ context }) => ({ incidentId: context.incidentId, hosts: context.plan ? hostsOfPlan(context.plan) : [] }),
        onDone: [
          {
            // Lost a host to another incident: give back what we got and plan again without it.
            guard: 'lostRace',
            target: 'releasing',
            actions: assign(({ context, event }) => ({
              excluded: union(context.excluded, event.output.lost.map((l) => l.host)),
              replans: context.replans + 1,
              toRelease: event.output.claimed,
            })),
          },
          // A drill reads what it borrows before it changes anything.
          { guard: 'isDrill', target: 'borrowing', actions: 'takeClaims' },
          { target: 'recovering', actions: 'takeClaims' },
        ],
        onError: { target: 'failed', actions: failedWith('claiming') },
      },
    },
    borrowing: {
      invoke: {
        src: 'borrow',
        input: ({ context }) => ({ incidentId: context.incidentId, site: context.site, hosts: context.claimed.filter((h) => !(h in context.borrowed)) }),
        onDone: { target: 'recovering', actions: assign(({ context, event }) => ({ borrowed: { ...context.borrowed, ...event.output } })) },
        // Without knowing what a host was, the drill must not change it: nothing started, the claims go back.
        onError: { target: 'cleanup', actions: [failedWith('borrowing'), 'noteStopped'] },
      },
    },
    releasing: {
      invoke: {
        src: 'release',
        input: ({ context }) => ({ incidentId: context.incidentId, hosts: context.toRelease }),
        onDone: { target: 'planning', actions: 'forgetReleased' },
        onError: { target: 'planning', actions: 'forgetReleased' },
      },
    },
    recovering: {
      entry: 'startReadyTargets',
      always: { guard: 'allSettled', target: 'verifying' },
      on: {
        'target.step': {
          actions: assign(({ context, event }) => updateTarget(context, event.key, { status: 'running', step: event.step })),
        },
        'target.done': {
          actions: [assign(({ context, event }) => updateTarget(context, event.key, { status: 'done', heartbeatAt: event.heartbeatAt })), 'startReadyTargets'],
        },
        'target.failed': {
          actions: [
            assign(({ context, event }) => {
              const targets = updateTarget(context, event.key, { status: 'failed', step: event.step, error: `${event.step}: ${event.error}` }).targets;
              // A hypervisor that failed takes its VMs with it.
              const failed = targets[event.key]?.target;
              if (failed?.mode === 'hypervisor') {
                for (const [key, t] of Object.entries(targets)) {
                  if (t.target.mode === 'vm' && t.target.hypervisor === failed.host && t.status === 'pending') {
                    targets[key] = { ...t, status: 'failed', error: `hypervisor ${failed.host} failed: ${event.error}` };
                  }
                }
              }
              return { targets };
            }),
            'startReadyTargets',
          ],
        },
      },
    },
    verifying: {
      entry: assign(({ context }) => {
        const known = new Set(context.unrecovered.map((u) => u.server));
        return {
          unrecovered: [
            ...context.unrecovered,
            ...Object.values(context.targets)
              .filter((t) => t.status === 'failed' && t.target.mode !== 'hypervisor' && !known.has(t.target.server))
              .map((t) => ({ server: (t.target as { server: string }).server, reason: t.error ?? 'failed' })),
          ],
        };
      }),
      always: [
        // A rehearsal stands while anything came up; with nothing up there is nothing to wait for.
        { guard: ({ context }) => context.trigger === 'drill' && Object.values(context.targets).some((t) => t.status === 'done'), target: 'drilling' },
        { guard: 'isDrill', target: 'cleanup' },
        {
          // Dead target hosts go back and their servers are planned again elsewhere, a bounded number of times.
          guard: 'deadTargets',
          target: 'releasing',
          actions: assign(({ context }) => {
            const dead = deadTargetsOf(context);
            return {
              abandoned: { ...context.abandoned, ...dead.hosts },
              excluded: union(context.excluded, Object.keys(dead.hosts)),
              replans: context.replans + 1,
              replanServers: dead.servers,
              toRelease: hostsOfFailedTargets(context),
            };
          }),
        },
        { target: 'releasingFailed' },
      ],
    },
    releasingFailed: {
      // Hosts whose recovery failed go back (their wiring was compensated); recovered hosts stay leased to their servers.
      invoke: {
        src: 'release',
        input: ({ context }) => ({ incidentId: context.incidentId, hosts: hostsOfFailedTargets(context) }),
        onDone: 'outcome',
        onError: 'outcome',
      },
    },
    outcome: {
      always: [
        { guard: 'cleanupLeftWork', target: 'failed' },
        { guard: 'allRecovered', target: 'recovered' },
        { guard: 'someRecovered', target: 'degraded' },
        { target: 'failed' },
      ],
    },
    // The rehearsal stands until stopped: by an operator, or by the manager when its time is up.
    drilling: {},
    cleanup: {
      entry: assign({ stopped: true }),
      invoke: {
        src: 'cleanup',
        input: ({ context }) => ({
          incidentId: context.incidentId,
          site: context.site,
          drill: true,
          borrowed: context.borrowed,
          targets: cleanupOrder(context),
          // Hosts a claim in flight may have taken too: releasing one not held is a no-op.
          hosts: union(context.claimed, context.plan ? hostsOfPlan(context.plan) : []),
        }),
        onDone: {
          target: 'outcome',
          actions: assign(({ event }) => ({
            cleanup: event.output,
            ...(event.output.left.length > 0 && { error: `cleanup left work undone: ${event.output.left.map((l) => l.what).join('; ')}` }),
          })),
        },
        onError: {
          target: 'outcome',
          actions: assign(({ event }) => ({ cleanup: { restored: [], left: [{ what: `cleanup stopped: ${errorText(event.error)}` }] }, error: `cleanup: ${errorText(event.error)}` })),
        },
      },
    },
    recovered: { type: 'final', entry: 'markFinished' },
    degraded: { type: 'final', entry: 'markFinished' },
    failed: { type: 'final', entry: 'markFinished' },
  },
});

/** A VM starts once its hypervisor is ready; everything else at once. */
function ready(context: IncidentContext, target: RecoveryTarget): boolean {
  if (target.mode !== 'vm') return true;
  return context.targets[`hv-${target.hypervisor}`]?.status === 'done';
}

function updateTarget(context: IncidentContext, key: string, patch: Partial<TargetState>): { targets: Record<string, TargetState> } {
  const current = context.targets[key];
  if (!current) return { targets: context.targets };
  return { targets: { ...context.targets, [key]: { ...current, ...patch } } };
}

function unfencedServers(context: IncidentContext): Set<string> {
  const failedHosts = new Set(Object.entries(context.fence).filter(([, m]) => m === 'failed').map(([h]) => h));
  if (failedHosts.size === 0) return new Set();
  return new Set(context.servers.filter((s) => failedHosts.has(serverHost(context, s))));
}

function serverHost(context: IncidentContext, server: string): string {
  return context.serverHosts[server] ?? '';
}

/**
 * Failed targets whose host itself failed them (a host step), with the
 * servers to plan again: theirs, and the VMs a dead hypervisor took with it.
 */
function deadTargetsOf(context: IncidentContext): { servers: string[]; hosts: Record<string, string> } {
  const hosts: Record<string, string> = {};
  for (const t of Object.values(context.targets)) {
    if (t.status === 'failed' && t.step !== null && hostSteps.has(t.step)) hosts[targetHost(t.target)] = t.error ?? 'failed';
  }
  const servers = Object.values(context.targets)
    .filter((t) => t.status === 'failed' && t.target.mode !== 'hypervisor' && targetHost(t.target) in hosts)
    .map((t) => (t.target as { server: string }).server);
  return { servers: [...new Set(servers)].sort(), hosts };
}

function hostsOfFailedTargets(context: IncidentContext): string[] {
  const failed = new Set<string>();
  const kept = new Set<string>();
  for (const t of Object.values(context.targets)) (t.status === 'done' ? kept : failed).add(targetHost(t.target));
  return [...failed].filter((h) => !kept.has(h)).sort();
}

function cleanupOrder(context: IncidentContext): CleanupInput['targets'] {
  const rank = { vm: 0, hypervisor: 1, 'bare-metal': 2 } as const;
  return Object.values(context.targets)
    .filter((t) => t.status !== 'pending')
    .sort((a, b) => rank[a.target.mode] - rank[b.target.mode] || targetKey(a.target).localeCompare(targetKey(b.target)))
    .map((t) => t.target);
}
