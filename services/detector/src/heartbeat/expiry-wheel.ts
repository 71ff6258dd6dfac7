/**
 * Deadlines for many entries (hosts, by number) under one clock, without a
 * timer each. A hashed timing wheel: slot k holds the entries whose deadline
 * falls in (k-1, k] × slotMs, as an intrusive doubly linked list over typed
 * arrays, so moving an entry on every heartbeat is O(1) and allocates
 * nothing. A deadline past one revolution stays in its slot and is skipped
 * until its own revolution comes round.
 */

const NONE = -1;
const MIN_SLOTS = 16;
const MAX_SLOTS = 1 << 16;

export interface ExpiryWheelOptions {
  /** Width of one slot: deadlines fire up to this late. */
  slotMs: number;
  /** Longest deadline usually scheduled ahead; sizes the wheel so most fire on their first pass. */
  horizonMs: number;
}

export class ExpiryWheel {
  readonly slotMs: number;
  readonly slotCount: number;
  private readonly heads: Int32Array;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** The slot an entry sits in, NONE when unscheduled. */
  private readonly slotOf: Int32Array;
  private readonly deadlines: Float64Array;
  /** Last tick (now / slotMs, floored) whose slot was processed. */
  private cursor = Number.NEGATIVE_INFINITY;
  private scheduled = 0;
  /** Reused between slots: due entries are unlinked first, then fired, so a callback may reschedule anything. */
  private readonly due: number[] = [];

  constructor(capacity: number, options: ExpiryWheelOptions) {
    if (!(options.slotMs > 0)) throw new RangeError(`expiry wheel: slotMs must be positive, got ${options.slotMs}`);
    this.slotMs = options.slotMs;
    let slots = MIN_SLOTS;
    while (slots < MAX_SLOTS && slots * options.slotMs < options.horizonMs + 2 * options.slotMs) slots <<= 1;
    this.slotCount = slots;
    this.heads = new Int32Array(slots).fill(NONE);
    this.next = new Int32Array(capacity).fill(NONE);
    this.prev = new Int32Array(capacity).fill(NONE);
    this.slotOf = new Int32Array(capacity).fill(NONE);
    this.deadlines = new Float64Array(capacity);
  }

  get size(): number {
    return this.scheduled;
  }

  isScheduled(entry: number): boolean {
    return this.slotOf[entry] !== NONE;
  }

  /** The entry's deadline, or NaN when it has none. */
  deadlineOf(entry: number): number {
    return this.slotOf[entry] === NONE ? Number.NaN : (this.deadlines[entry] as number);
  }

  /** Sets (or moves) the entry's deadline. */
  schedule(entry: number, deadline: number): void {
    if (this.slotOf[entry] !== NONE) this.unlink(entry);
    else this.scheduled++;
    this.deadlines[entry] = deadline;
    // A deadline at or behind the cursor goes in the next slot to be processed, not a revolution later.
    const slot = this.slotIndex(Math.max(Math.ceil(deadline / this.slotMs), this.cursor + 1));
    const head = this.heads[slot] as number;
    this.next[entry] = head;
    this.prev[entry] = NONE;
    if (head !== NONE) this.prev[head] = entry;
    this.heads[slot] = entry;
    this.slotOf[entry] = slot;
  }

  cancel(entry: number): void {
    if (this.slotOf[entry] === NONE) return;
    this.unlink(entry);
    this.scheduled--;
  }

  /**
   * Fires, in slot order, every entry whose deadline is ≤ now; a fired entry
   * is unscheduled before its callback runs. After a stall longer than one
   * revolution each slot is visited once. A throwing callback does not stop
   * the others: the first error is rethrown once the wheel is consistent.
   */
  advance(now: number, onDue: (entry: number) => void): void {
    const target = Math.floor(now / this.slotMs);
    if (target <= this.cursor) {
      // A clock that stepped back: deadlines set from now on belong in their own slots, not behind the old cursor.
      this.cursor = target;
      return;
    }
    const steps = Math.min(target - this.cursor, this.slotCount);
    let failure: { error: unknown } | undefined;
    for (let tick = target - steps + 1; tick <= target; tick++) {
      const due = this.collect(this.slotIndex(tick), now);
      for (let i = 0; i < due.length; i++) {
        const entry = due[i] as number;
        // A callback before this one may have rescheduled it (a heartbeat raced in).
        if (this.slotOf[entry] !== NONE) continue;
        try {
          onDue(entry);
        } catch (error) {
          failure ??= { error };
        }
      }
      due.length = 0;
    }
    this.cursor = target;
    if (failure !== undefined) throw failure.error;
  }

  private collect(slot: number, now: number): number[] {
    const due = this.due;
    let entry = this.heads[slot] as number;
    while (entry !== NONE) {
      const following = this.next[entry] as number;
      if ((this.deadlines[entry] as number) <= now) {
        this.unlink(entry);
        this.scheduled--;
        due.push(entry);
      }
      entry = following;
    }
    return due;
  }

  private unlink(entry: number): void {
    const before = this.prev[entry] as number;
    const after = this.next[entry] as number;
    if (before !== NONE) this.next[before] = after;
    else this.heads[this.slotOf[entry] as number] = after;
    if (after !== NONE) this.prev[after] = before;
    this.next[entry] = NONE;
    this.prev[entry] = NONE;
    this.slotOf[entry] = NONE;
  }

  private slotIndex(tick: number): number {
    // slotCount is a power of two, but ticks of epoch milliseconds exceed 32 bits.
    const slot = tick % this.slotCount;
    return slot < 0 ? slot + this.slotCount : slot;
  }
}
