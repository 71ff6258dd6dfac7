/**
 * Changes to one switch or array happen one at a time across every executor
 * (issue #16): each ensure-step of a net or storage command runs inside the
 * device's lock, read, write and read-back together, so no other executor's
 * read can come between our write and its confirmation. The lock carries the
 * command's fencing token (DeviceLocks says what that buys) and is taken per
 * step, not per command, so a command waiting out a retry holds nothing.
 */
import type { StepResult } from '@firebreak/drivers';
import type { Command, DeviceLocking } from '@firebreak/shared';

export interface DeviceChanges {
  /** The store's DeviceLocks in a running executor; ProcessDeviceLocks where only one executor runs (tests). */
  locks: DeviceLocking;
  /** Named in the lock, so a waiting executor can say who holds the device. */
  executorId: string;
}

/** The device ids of the lock and of the executor's per-device limits. */
export const switchDevice = (id: string): string => `switch:${id}`;
export const arrayDevice = (id: string): string => `array:${id}`;

/** `change` as an ensure-step that holds `device` while it runs; `change` must use the signal it is given. */
export function lockedStep(changes: DeviceChanges, device: string, command: Command, signal: AbortSignal, change: (held: AbortSignal) => Promise<StepResult>): () => Promise<StepResult> {
  const claim = { site: command.site, token: command.fencingToken, holder: `${changes.executorId}/${command.commandId}` };
  return () => changes.locks.hold(device, claim, signal, change);
}
