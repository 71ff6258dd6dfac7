/**
 * The recovery of one target (a server on bare metal, a host becoming a
 * hypervisor, or a VM): its steps in order, each retried with backoff until
 * its attempts run out; then the step that failed and the finished ones are
 * undone in reverse (compensation) so no half-wired host is left behind. The
 * failed step is undone too because it may have done part of its work (one
 * of two ports on the VLAN, one of two LUNs granted); undoing what was never
 * done is harmless, since every command ensures a state.
 */
import { assign, fromPromise, sendParent, setup } from 'xstate';
import { stepsOf, targetKey, type RecoveryTarget, type StepName } from './recovery-steps.ts';

export interface ServerRecoveryInput {
  incidentId: string;
  site: string;
  target: RecoveryTarget;
  drill: boolean;
  /** Attempts per step before the target is given up. */
  maxAttempts: number;
  /** Backoff before attempt n is retryBaseMs * 2^(n-2). */
  retryBaseMs: number;
}

export interface StepInput {
  incidentId: string;
  site: string;
  target: RecoveryTarget;
  step: StepName;
  attempt: number;
  drill: boolean;
}

export interface UndoInput {
  incidentId: string;
  site: string;
  target: RecoveryTarget;
  /** Finished steps, most recent first. */
  steps: StepName[];
  drill: boolean;
}

/** What a finished step reports: the heartbeat's time for the heartbeat step. */
export interface StepOutput {
  at: number;
}

export type ServerRecoveryEvent = { type: 'noop' };

export type ServerParentEvent =
  | { type: 'target.step'; key: string; step: StepName; attempt: number }
  | { type: 'target.done'; key: string; heartbeatAt: number | null }
  | { type: 'target.failed'; key: string; step: StepName; error: string };

interface ServerRecoveryContext extends ServerRecoveryInput {
  key: string;
  steps: StepName[];
  index: number;
  attempt: number;
  finished: StepName[];
  heartbeatAt: number | null;
  error: string | null;
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export const serverRecoveryMachine = setup({
  types: {
    input: {} as ServerRecoveryInput,
    context: {} as ServerRecoveryContext,
    events: {} as ServerRecoveryEvent,
  },
  actors: {
    runStep: fromPromise<StepOutput, StepInput>(() => Promise.reject(new Error('runStep is not provided'))),
    undoSteps: fromPromise<void, UndoInput>(() => Promise.reject(new Error('undoSteps is not provided'))),
  },
  delays: {
    retryDelay: ({ context }) => context.retryBaseMs * 2 ** Math.max(0, context.attempt - 2),
  },
  guards: {
    allDone: ({ context }) => context.index >= context.steps.length,
    canRetry: ({ context }) => context.attempt < context.maxAttempts,
  },
}).createMachine({
  id: 'server-recovery',
  context: ({ input }) => ({
    ...input,
    key: targetKey(input.target),
    steps: stepsOf(input.target),
    index: 0,
    attempt: 1,
    finished: [],
    heartbeatAt: null,
    error: null,
  }),
  initial: 'next',
  states: {
    next: {
      always: [{ guard: 'allDone', target: 'done' }, { target: 'running' }],
    },
    running: {
      entry: sendParent(({ context }): ServerParentEvent => ({ type: 'target.step', key: context.key, step: context.steps[context.index] as StepName, attempt: context.attempt })),
      invoke: {
        src: 'runStep',
        input: ({ context }) => ({
          incidentId: context.incidentId,
          site: context.site,
          target: context.target,
          step: context.steps[context.index] as StepName,
          attempt: context.attempt,
          drill: context.drill,
        }),
        onDone: {
          target: 'next',
          actions: assign(({ context, event }) => {
            const step = context.steps[context.index] as StepName;
            return {
              index: context.index + 1,
              attempt: 1,
              finished: [step, ...context.finished],
              heartbeatAt: step === 'heartbeat' ? event.output.at : context.heartbeatAt,
            };
          }),
        },
        onError: [
          { guard: 'canRetry', target: 'backoff', actions: assign(({ context, event }) => ({ attempt: context.attempt + 1, error: errorText(event.error) })) },
          { target: 'compensating', actions: assign(({ event }) => ({ error: errorText(event.error) })) },
        ],
      },
    },
    backoff: {
      after: { retryDelay: 'running' },
    },
    compensating: {
      invoke: {
        src: 'undoSteps',
        input: ({ context }) => ({
          incidentId: context.incidentId,
          site: context.site,
          target: context.target,
          steps: [context.steps[context.index] as StepName, ...context.finished],
          drill: context.drill,
        }),
        onDone: 'failed',
        onError: {
          target: 'failed',
          actions: assign(({ context, event }) => ({ error: `${context.error ?? 'failed'}; compensation also failed: ${errorText(event.error)}` })),
        },
      },
    },
    done: {
      type: 'final',
      entry: sendParent(({ context }): ServerParentEvent => ({ type: 'target.done', key: context.key, heartbeatAt: context.heartbeatAt })),
    },
    failed: {
      type: 'final',
      entry: sendParent(({ context }): ServerParentEvent => ({
        type: 'target.failed',
        key: context.key,
        step: context.steps[context.index] as StepName,
        error: context.error ?? 'failed',
      })),
    },
  },
});
