/**
 * Waiting and retrying under the caller's deadline: the effects never give up
 * on an outage by themselves, only when the signal says time is up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { toFirebreakError, type BusLogger } from '@firebreak/shared';

/** Settles like `promise`, or rejects with the signal's reason as soon as it aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as unknown);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as unknown);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
}

export const defaultRetry: RetryPolicy = { initialMs: 250, maxMs: 5_000 };

/** Returned instead of a value when the signal aborted first. */
export const ABORTED: unique symbol = Symbol('aborted');

/** Failures logged per operation: the first, then every tenth, so an outage with hundreds of commands in flight does not flood the log. */
const LOG_EVERY = 10;

/**
 * Runs `op` until it succeeds, backing off between transient failures.
 * A non-retryable failure (a message that fails its schema, a name that is
 * not a valid subject token) is a bug that no retry fixes: it is thrown.
 */
export async function retryUntilAborted<T>(
  op: () => Promise<T>,
  signal: AbortSignal,
  options: { what: string; logger: BusLogger; fields?: object; retry?: RetryPolicy },
): Promise<T | typeof ABORTED> {
  const retry = options.retry ?? defaultRetry;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) return ABORTED;
    try {
      return await op();
    } catch (err) {
      if (signal.aborted) return ABORTED;
      const failure = toFirebreakError(err);
      if (!failure.retryable) throw failure;
      const delayMs = Math.min(retry.initialMs * 2 ** (attempt - 1), retry.maxMs);
      if (attempt === 1 || attempt % LOG_EVERY === 0) {
        options.logger.warn({ ...options.fields, attempt, delayMs, err }, `${options.what} failed; retrying`);
      }
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        return ABORTED;
      }
    }
  }
}
