/**
 * Whether a failure domain's decision should wait for one of its hosts that
 * has not failed (yet): the detector's answer to the correlator's `mayFail`.
 * A rack that burned at one instant is reported by its hosts over a second
 * or more (heartbeats expire a period apart, traps and BMC probes trickle
 * in), and deciding in the middle of that turns one rack into a domain
 * failure plus stragglers, or into dozens of host failures.
 */

/** Silence, in heartbeat periods, that a healthy host never reaches (jitter included). */
const OVERDUE_PERIODS = 1.5;

export interface MateState {
  /** Expected to heartbeat; a powered-off spare is not, and tells nothing. */
  armed: boolean;
  /** The detector's doubt about it, if any. */
  doubt: 'probing' | 'pending' | 'failed' | 'suspect' | undefined;
  /** Since its last heartbeat arrived, counting only time the detector could hear it (see HeartbeatTracker.silenceMs). */
  silenceMs: number;
}

/**
 * @param quietForMs once the domain has two or more failures pending: how long
 *   ago its first was confirmed. A mate not heard from since then may have
 *   died with it; a live one is heard from within a period and stops counting.
 */
export function mateMayFail(mate: MateState, intervalMs: number, quietForMs: number | undefined): boolean {
  if (!mate.armed) return false;
  // Its BMC is being asked: a verdict on it is on the way. Failed or suspect: already decided.
  if (mate.doubt !== undefined) return mate.doubt === 'probing';
  if (mate.silenceMs > OVERDUE_PERIODS * intervalMs) return true;
  return quietForMs !== undefined && mate.silenceMs > quietForMs;
}

/**
 * How long a domain's decision may wait for its mates: the longest a host
 * that died with the domain's first failure can take to reach the
 * correlator. A mate whose link trap was lost is noticed only when its
 * heartbeats expire (`expiryHorizonMs` after its last one, which came before
 * the first failure), then its BMC is probed, then the gather window runs.
 */
export function maxHoldMs(expiryHorizonMs: number, bmcTimeoutMs: number, windowMs: number): number {
  return expiryHorizonMs + bmcTimeoutMs + windowMs;
}
