import type { StepResult } from '@firebreak/drivers';

/** Issuing a command is not completing it: step until the driver says the state holds. */
export async function untilDone(step: () => Promise<StepResult>, signal: AbortSignal): Promise<void> {
  for (;;) {
    const result = await step();
    if (result.done) return;
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, result.retryAfterMs ?? 200));
  }
}
