/**
 * Polls every BMC's Redfish health on its own schedule, independently of
 * heartbeats: a Critical health or a machine that powered off while it was
 * expected to run is a failure the host agent may never get to report.
 *
 * BMCs are fragile embedded web servers and a data center has thousands, so
 * the poller spreads hosts over the interval instead of polling them in a
 * burst, keeps at most `maxConcurrent` requests in flight, and backs off per
 * BMC when one stops answering (a burned rack's BMCs are not hammered).
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from '@firebreak/shared';
import type { BmcEvidence, BmcProbe } from './bmc-prober.ts';
import { DueQueue, type Due } from './due-queue.ts';

export type UnhealthyCause = 'bmc-critical' | 'bmc-power-off';

/** Time and timers, replaceable in tests. */
export interface PollerClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BmcHealthPollerOptions {
  /** Each BMC is polled once per interval while it answers. */
  intervalMs: number;
  maxConcurrent: number;
  /** After the n-th failure in a row a BMC waits min(initialMs × 2^(n-1), maxMs), never less than the interval. */
  backoff: { initialMs: number; maxMs: number };
  clock?: PollerClock;
  /** Called once per condition, again only after it has cleared (health OK/Warning, power on). */
  onUnhealthy(hostId: string, evidence: BmcEvidence, cause: UnhealthyCause): void;
  /** Whether the host should be running (it was heartbeating); a powered-off spare is not a failure. */
  isExpectedOn(hostId: string): boolean;
  logger?: Logger;
}

export interface BmcPollerStats {
  hosts: number;
  polls: number;
  /** Polls that got no usable answer. */
  errors: number;
  inFlight: number;
  /** The most polls ever in flight at once. */
  maxInFlight: number;
  /** BMCs whose last poll failed, now polled on their backoff. */
  backingOff: number;
  /** onUnhealthy calls. */
  unhealthy: number;
}

interface Target extends Due {
  readonly hostId: string;
  failures: number;
  /** Set when the host left the host list; its queue entry is skipped. */
  removed: boolean;
  readonly reported: Set<UnhealthyCause>;
}

const systemClock: PollerClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class BmcHealthPoller {
  readonly #prober: BmcProbe;
  readonly #hosts: readonly string[] | (() => readonly string[]);
  readonly #options: BmcHealthPollerOptions;
  readonly #clock: PollerClock;
  #targets = new Map<string, Target>();
  #queue = new DueQueue<Target>();
  /** The host list is read again once per interval when it is a function. */
  #nextRefreshAt = 0;
  #timer: { handle: unknown; at: number } | undefined;
  #abort: AbortController | undefined;
  readonly #pending = new Set<Promise<void>>();
  #counts = { polls: 0, errors: 0, maxInFlight: 0, unhealthy: 0 };

  constructor(prober: BmcProbe, hosts: readonly string[] | (() => readonly string[]), options: BmcHealthPollerOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError(`bmc poller: intervalMs must be positive, got ${options.intervalMs}`);
    if (!Number.isInteger(options.maxConcurrent) || options.maxConcurrent < 1) {
      throw new RangeError(`bmc poller: maxConcurrent must be a positive integer, got ${options.maxConcurrent}`);
    }
    this.#prober = prober;
    this.#hosts = hosts;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  start(): void {
    if (this.#abort !== undefined) return;
    this.#abort = new AbortController();
    // Every poll in flight listens to this signal; more than ten is the normal case, not a leak.
    setMaxListeners(0, this.#abort.signal);
    this.#nextRefreshAt = this.#clock.now();
    this.#pump();
  }

  /** Stops polling, cancels polls in flight and resolves once they have settled; no callback runs after it. */
  async stop(): Promise<void> {
    const abort = this.#abort;
    if (abort === undefined) return;
    this.#abort = undefined;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer.handle);
    this.#timer = undefined;
    abort.abort();
    await Promise.allSettled([...this.#pending]);
    this.#targets = new Map();
    this.#queue = new DueQueue();
  }

  stats(): BmcPollerStats {
    let backingOff = 0;
    for (const t of this.#targets.values()) if (t.failures > 0) backingOff++;
    return { hosts: this.#targets.size, inFlight: this.#pending.size, backingOff, ...this.#counts };
  }

  #pump(): void {
    const abort = this.#abort;
    if (abort === undefined) return;
    const now = this.#clock.now();
    if (now >= this.#nextRefreshAt) this.#refresh(now);
    while (this.#pending.size < this.#options.maxConcurrent) {
      const next = this.#queue.peek();
      if (next === undefined || next.dueAt > now) break;
      this.#queue.pop();
      if (!next.removed) this.#poll(next, abort.signal);
    }
    this.#arm(now);
  }

  /** One timer, for the earliest thing to do; completions pump on their own. */
  #arm(now: number): void {
    const due = this.#pending.size < this.#options.maxConcurrent ? (this.#queue.peek()?.dueAt ?? Infinity) : Infinity;
    const at = Math.min(due, this.#nextRefreshAt);
    if (this.#timer?.at === at) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer.handle);
    this.#timer = undefined;
    if (at === Infinity) return;
    const handle = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, Math.max(0, at - now));
    this.#timer = { handle, at };
  }

  /** Follows the host list: new hosts are spread over the next interval, gone ones dropped. */
  #refresh(now: number): void {
    const dynamic = typeof this.#hosts === 'function';
    this.#nextRefreshAt = dynamic ? now + this.#options.intervalMs : Infinity;
    let ids: readonly string[];
    try {
      ids = typeof this.#hosts === 'function' ? this.#hosts() : this.#hosts;
    } catch (err) {
      this.#options.logger?.error({ err }, 'bmc poller: reading the host list failed; keeping the last one');
      return;
    }
    const wanted = new Set(ids);
    for (const [id, target] of this.#targets) {
      if (wanted.has(id)) continue;
      target.removed = true;
      this.#targets.delete(id);
    }
    const added = [...wanted].filter((id) => !this.#targets.has(id));
    added.forEach((hostId, i) => {
      const target: Target = { hostId, dueAt: now + Math.floor((i * this.#options.intervalMs) / added.length), failures: 0, removed: false, reported: new Set() };
      this.#targets.set(hostId, target);
      this.#queue.push(target);
    });
  }

  #poll(target: Target, signal: AbortSignal): void {
    this.#counts.polls++;
    const done = this.#prober
      .probe(target.hostId, signal)
      // A wrapped or fake prober may throw even though BmcProber never does.
      .catch((err: unknown): BmcEvidence => ({ reachable: false, error: err instanceof Error ? err.message : String(err) }))
      .then((evidence) => {
        if (signal.aborted) return;
        try {
          this.#settle(target, evidence);
        } catch (err) {
          this.#options.logger?.error({ err, host: target.hostId }, 'bmc poller: handling a poll result failed');
        }
      })
      .finally(() => {
        this.#pending.delete(done);
        this.#pump();
      });
    this.#pending.add(done);
    this.#counts.maxInFlight = Math.max(this.#counts.maxInFlight, this.#pending.size);
  }

  #settle(target: Target, evidence: BmcEvidence): void {
    const now = this.#clock.now();
    const { intervalMs, backoff } = this.#options;
    const answered = evidence.reachable && evidence.error === undefined;
    if (answered) {
      target.failures = 0;
      // Keep the host's slot in the interval; a poll that ran late starts a new one from now.
      target.dueAt = Math.max(target.dueAt + intervalMs, now);
    } else {
      this.#counts.errors++;
      target.failures++;
      const delay = Math.min(backoff.initialMs * 2 ** (target.failures - 1), backoff.maxMs);
      target.dueAt = now + Math.max(intervalMs, delay);
    }
    // Rescheduled before the callbacks run, so a throwing callback cannot drop the host from the schedule.
    if (!target.removed) this.#queue.push(target);
    if (answered) this.#judge(target, evidence);
  }

  #judge(target: Target, evidence: BmcEvidence): void {
    if (evidence.health === 'Critical') this.#report(target, evidence, 'bmc-critical');
    else if (evidence.health === 'OK' || evidence.health === 'Warning') target.reported.delete('bmc-critical');
    if (evidence.powerState === 'off') {
      if (this.#options.isExpectedOn(target.hostId)) this.#report(target, evidence, 'bmc-power-off');
    } else if (evidence.powerState === 'on') {
      target.reported.delete('bmc-power-off');
    }
  }

  #report(target: Target, evidence: BmcEvidence, cause: UnhealthyCause): void {
    if (target.reported.has(cause)) return;
    target.reported.add(cause);
    this.#counts.unhealthy++;
    this.#options.onUnhealthy(target.hostId, evidence, cause);
  }
}
