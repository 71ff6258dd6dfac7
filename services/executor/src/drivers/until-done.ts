import type { StepResult } from '@firebreak/drivers';

/**
 * Issuing a command is not completing it: step until the driver says the state holds.
 * Resolves with the step that said so; its `observed` is the state that confirming read found.
 */
export async function untilDone(step: () => Promise<StepResult>, signal: AbortSignal): Promise<StepResult> {
  for (;;) {
    const result = await step();
    if (result.done) return result;
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, result.retryAfterMs ?? 200));
  }
}
