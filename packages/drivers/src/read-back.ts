/**
 * Issuing a change is not completing it: drivers read the device back until
 * the state holds. The signal or the wait ending first is "not done yet", not
 * an error; transient read failures only delay; a permanent one ends it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DriverError } from './driver-error.ts';
import type { StepResult } from './driver.ts';

export interface ReadBackOptions {
  pollMs: number;
  waitMs: number;
  signal: AbortSignal;
}

export type ReadBackOutcome = { held: true; elapsedMs: number } | { held: false; last: string };

/** `check` answers undefined when the state holds, else what is still wrong. */
export async function readBack(check: () => Promise<string | undefined>, options: ReadBackOptions): Promise<ReadBackOutcome> {
  const started = Date.now();
  const deadline = started + options.waitMs;
  let last = 'not read back';
  for (;;) {
    try {
      const wrong = await check();
      if (wrong === undefined) return { held: true, elapsedMs: Date.now() - started };
      last = wrong;
    } catch (err) {
      // A device busy applying the change may fail a read.
      if (options.signal.aborted) break;
      if (!(err instanceof DriverError) || !err.retryable) throw err;
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

/**
 * The ensure-step's result once `goal` holds or the wait ends; `how` says what was sent (or that nothing was).
 * `observed`, called once the state holds, gives what the confirming read found.
 */
export async function settle(
  goal: string,
  how: string,
  check: () => Promise<string | undefined>,
  options: ReadBackOptions,
  observed?: () => Record<string, unknown>,
): Promise<StepResult> {
  const r = await readBack(check, options);
  if (r.held) return { done: true, message: `${goal} (${how}; read back after ${r.elapsedMs} ms)`, ...(observed && { observed: observed() }) };
  return { done: false, retryAfterMs: options.pollMs, message: `${goal}: ${how}, not read back yet; ${r.last}` };
}
