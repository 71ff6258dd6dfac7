import { setTimeout as sleep } from 'node:timers/promises';
import { DriverError, type StepResult } from '@firebreak/drivers';

/**
 * Issuing a command is not completing it: step until the driver says the state holds.
 * Resolves with the step that said so; its `observed` is the state that confirming read found.
 * The deadline passing between steps is a timeout that says what the last step saw.
 */
export async function untilDone(step: () => Promise<StepResult>, signal: AbortSignal): Promise<StepResult> {
  for (;;) {
    const result = await step();
    if (result.done) return result;
    try {
      await sleep(result.retryAfterMs ?? 200, undefined, { signal });
    } catch {
      throw DriverError.timeout(`not done by the command's deadline: ${result.message}`);
    }
  }
}
