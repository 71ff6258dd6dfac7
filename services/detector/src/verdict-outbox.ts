/**
 * The detector's outbox: every verdict is sent until JetStream acknowledges
 * it, or until the detector stops. A verdict that found NATS down is not a
 * verdict lost: an incident that never opens is the worst thing a detector
 * can do. Retrying is safe because a verdict's message id is deterministic,
 * so the stream keeps one copy however many attempts reach it.
 *
 * Order: verdicts that share a key (a host, a domain) go out in the order
 * they were added, so a host's `recovered` never overtakes its `failed`, nor
 * the `domain.failed` that named it. Verdicts about different hosts go out
 * side by side. After a failure the outbox backs off (capped exponential)
 * and then sends one verdict at a time until one gets through, so an outage
 * costs a warning per attempt, not a storm of attempts.
 */
import { toFirebreakError } from '@firebreak/shared';

export interface OutboxLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface OutboxItem {
  /** What it is, for logs: `host.failed`, `domain.failed` … */
  kind: string;
  /** Whom it is about, for logs: a host id, or `rack r2`. */
  subject: string;
  /** Items sharing a key are published in the order they were added. */
  keys: readonly string[];
  /** One publish attempt; resolves once the stream has it (`duplicate` when it already had it). */
  send(attempt: number): Promise<{ duplicate: boolean }>;
}

/**
 * `published`: stored by this attempt or an earlier one of ours; `duplicate`:
 * a peer detector had already published it; `rejected`: it can never be
 * published (it fails its schema), so it was dropped; `abandoned`: the
 * outbox stopped first.
 */
export type OutboxOutcome = 'published' | 'duplicate' | 'rejected' | 'abandoned';

export interface OutboxBackoff {
  initialMs: number;
  maxMs: number;
}

export interface OutboxOptions {
  logger: OutboxLogger;
  /** Delay after the n-th consecutive failure: initialMs × 2^(n-1), at most maxMs. Default 250 ms to 5 s. */
  backoff?: OutboxBackoff;
  /** Attempts in flight at once while publishing goes well. Default 32. */
  maxInFlight?: number;
}

interface Entry {
  readonly item: OutboxItem;
  readonly resolve: (outcome: OutboxOutcome) => void;
  attempts: number;
  /** The attempt whose result decides what happens next; undefined while none is. */
  current: object | undefined;
  settled: boolean;
}

const defaultOutboxBackoff: OutboxBackoff = { initialMs: 250, maxMs: 5_000 };
const DEFAULT_MAX_IN_FLIGHT = 32;

export class VerdictOutbox {
  /** Oldest first; an entry leaves once published, rejected or abandoned. */
  private readonly queue: Entry[] = [];
  private readonly backoff: OutboxBackoff;
  private readonly maxInFlight: number;
  /** Entries with a current attempt. */
  private inFlight = 0;
  /** Failures since the last success: the backoff exponent, and a probe-only mode while > 0. */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: OutboxOptions) {
    this.backoff = options.backoff ?? defaultOutboxBackoff;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!(this.backoff.initialMs > 0) || this.backoff.maxMs < this.backoff.initialMs) {
      throw new RangeError(`verdict outbox: backoff needs 0 < initialMs ≤ maxMs, got ${this.backoff.initialMs} … ${this.backoff.maxMs}`);
    }
  }

  /** Verdicts not yet acknowledged by JetStream, in flight or waiting their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Never rejects: the outcome says what became of the item. */
  add(item: OutboxItem): Promise<OutboxOutcome> {
    if (this.stopped) {
      this.options.logger.error({ verdict: item.kind, subject: item.subject }, 'detector stopping: verdict not published');
      return Promise.resolve('abandoned');
    }
    return new Promise((resolve) => {
      this.queue.push({ item, resolve, attempts: 0, current: undefined, settled: false });
      this.pump();
    });
  }

  /**
   * The connection to NATS is back: retry now rather than after the backoff.
   * An attempt made while the connection was down waits out its whole
   * timeout even though the server is back (its request went nowhere), so
   * each such verdict gets a fresh attempt beside it; both carry one message
   * id, so the stream keeps one copy, and whichever is acknowledged first
   * settles the verdict.
   */
  reconnected(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.failures = 0;
    for (const entry of this.queue) entry.current = undefined;
    this.inFlight = 0;
    this.pump();
  }

  /**
   * Gives up on everything without an attempt in flight; such an attempt
   * still settles (published, or abandoned if it fails). Every verdict given
   * up is logged at error: it is a failure nobody will hear of from this detector.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (const entry of this.queue.filter((e) => e.current === undefined)) {
      const { kind, subject } = entry.item;
      this.options.logger.error({ verdict: kind, subject, attempts: entry.attempts }, 'detector stopping: verdict not published');
      this.settle(entry, 'abandoned');
    }
  }

  /** Starts every attempt that order, the in-flight limit and the backoff allow. */
  private pump(): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    // After a failure, one attempt at a time until one succeeds: the oldest verdict probes the way.
    const limit = this.failures > 0 ? 1 : this.maxInFlight;
    const blocked = new Set<string>();
    for (const entry of this.queue) {
      if (this.inFlight >= limit) break;
      const free = entry.current === undefined && entry.item.keys.every((k) => !blocked.has(k));
      for (const k of entry.item.keys) blocked.add(k);
      if (free) void this.attempt(entry);
    }
  }

  private async attempt(entry: Entry): Promise<void> {
    const token = {};
    entry.current = token;
    entry.attempts++;
    this.inFlight++;
    const { item } = entry;
    const attempt = entry.attempts;
    let ack: { duplicate: boolean } | undefined;
    let failure: unknown;
    try {
      ack = await item.send(attempt);
    } catch (err) {
      failure = err;
    }
    // An attempt made before a reconnect no longer counts as in flight, and its failure tells nothing new.
    const current = entry.current === token;
    if (current) {
      entry.current = undefined;
      this.inFlight--;
    }
    const fields = { verdict: item.kind, subject: item.subject };
    if (entry.settled || (ack === undefined && !current)) {
      if (!entry.settled) this.options.logger.warn({ ...fields, attempt, nextDelayMs: 0, err: failure }, 'could not publish verdict; retried at once on reconnect');
      this.pump();
      return;
    }

    if (ack !== undefined) {
      this.failures = 0;
      if (entry.attempts > 1) this.options.logger.info({ ...fields, attempts: entry.attempts }, 'verdict published after retries');
      else this.options.logger.info({ ...fields, duplicate: ack.duplicate }, ack.duplicate ? 'verdict already published by a peer' : 'verdict published');
      // A duplicate after a failed attempt is most likely that attempt's own copy.
      this.settle(entry, ack.duplicate && entry.attempts === 1 ? 'duplicate' : 'published');
    } else if (!toFirebreakError(failure).retryable) {
      // A verdict that fails its own schema fails it on every attempt; retrying would hold up its host's later verdicts forever.
      this.options.logger.error({ ...fields, attempts: attempt, err: failure }, 'verdict can never be published; dropped');
      this.settle(entry, 'rejected');
    } else if (this.stopped) {
      this.options.logger.error({ ...fields, attempts: attempt, err: failure }, 'detector stopping: verdict not published');
      this.settle(entry, 'abandoned');
    } else {
      // Attempts that fail together (one outage) share one backoff step.
      if (this.retryTimer === undefined) {
        this.failures++;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, this.delayMs());
      }
      this.options.logger.warn({ ...fields, attempt, nextDelayMs: this.delayMs(), err: failure }, 'could not publish verdict; will retry');
    }
    this.pump();
  }

  private delayMs(): number {
    return Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.max(0, this.failures - 1));
  }

  private settle(entry: Entry, outcome: OutboxOutcome): void {
    if (entry.settled) return;
    entry.settled = true;
    const at = this.queue.indexOf(entry);
    if (at >= 0) this.queue.splice(at, 1);
    entry.resolve(outcome);
  }
}
