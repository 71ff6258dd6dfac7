/**
 * Issuing a change is not completing it: drivers read the device back until
 * the state holds. The signal or the wait ending first is "not done yet", not
 * an error; transient read failures only delay; a permanent one ends it, and
 * so does a ConcurrentWriteError: a change someone else undid will not land
 * by waiting.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConcurrentWriteError, DriverError } from './driver-error.ts';
import type { StepResult } from './driver.ts';

export interface ReadBackOptions {
  pollMs: number;
  waitMs: number;
  signal: AbortSignal;
}

/** What is still wrong; or the state holds: undefined, or what the confirming read found, for the caller to report. */
export type ReadBackCheck = string | undefined | { observed: Record<string, unknown> };

export type ReadBackOutcome = { held: true; elapsedMs: number; observed?: Record<string, unknown> } | { held: false; last: string };

export async function readBack(check: () => Promise<ReadBackCheck>, options: ReadBackOptions): Promise<ReadBackOutcome> {
  const started = Date.now();
  const deadline = started + options.waitMs;
  let last = 'not read back';
  for (;;) {
    try {
      const wrong = await check();
      if (typeof wrong !== 'string') return { held: true, elapsedMs: Date.now() - started, ...(wrong && { observed: wrong.observed }) };
      last = wrong;
    } catch (err) {
      // A device busy applying the change may fail a read.
      if (options.signal.aborted) break;
      if (!(err instanceof DriverError) || !err.retryable || err instanceof ConcurrentWriteError) throw err;
      last = err.message;
    }
    if (Date.now() + options.pollMs > deadline) break;
    try {
      await sleep(options.pollMs, undefined, { signal: options.signal });
    } catch {
      break;
    }
  }
  return { held: false, last };
}

/** The ensure-step's result once `goal` holds or the wait ends; `how` says what was sent (or that nothing was). */
export async function settle(goal: string, how: string, check: () => Promise<ReadBackCheck>, options: ReadBackOptions): Promise<StepResult> {
  const r = await readBack(check, options);
  if (r.held) return { done: true, message: `${goal} (${how}; read back after ${r.elapsedMs} ms)`, ...(r.observed && { observed: r.observed }) };
  return { done: false, retryAfterMs: options.pollMs, message: `${goal}: ${how}, not read back yet; ${r.last}` };
}
