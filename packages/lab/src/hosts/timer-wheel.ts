/**
 * Drives many periodic jobs with one timer. The period is cut into slots;
 * each job sits in one slot and runs once per revolution when the wheel
 * reaches it, so 10,000 heartbeats a second are spread over the second
 * instead of firing in one burst, and no job owns a timer.
 */

export interface WheelClock {
  /** Milliseconds, monotonic, sub-millisecond where available. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: WheelClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface TimerWheelOptions {
  /** How often each job runs. */
  periodMs: number;
  /** Width of one slot; the period must be a whole number of slots. Default 10 ms. */
  slotMs?: number;
  clock?: WheelClock;
}

/** Handle returned by `add`; pass it to `remove`. */
export interface WheelEntry<T> {
  readonly item: T;
}

interface Slotted<T> extends WheelEntry<T> {
  slot: number;
  /** Position in its slot's array, for O(1) swap-removal; -1 once removed. */
  index: number;
  /** The tick it last ran in, so an entry moved by a removal never runs twice in one tick. */
  ranAt: number;
}

/** How late jobs ran against their schedule. */
export interface Lateness {
  samples: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Histogram resolution and range: 0.1 ms buckets up to 5 s, the rest in the last bucket. */
const BUCKET_MS = 0.1;
const BUCKETS = 50_001;

export class TimerWheel<T> {
  readonly slotCount: number;
  private readonly slotMs: number;
  private readonly periodMs: number;
  private readonly clock: WheelClock;
  private readonly slots: Slotted<T>[][];
  private entries = 0;
  /** Round-robin placement keeps slots within one entry of each other as jobs come and go. */
  private nextSlot = 0;
  private timer: unknown = undefined;
  /** Schedule origin: tick k runs slot k mod slotCount at origin + k × slotMs. */
  private origin = 0;
  private tick = 0;
  private readonly histogram = new Uint32Array(BUCKETS);
  private samples = 0;
  private totalLateMs = 0;
  private maxLateMs = 0;

  constructor(
    private readonly onDue: (item: T) => void,
    options: TimerWheelOptions,
  ) {
    const slotMs = options.slotMs ?? 10;
    if (!(options.periodMs > 0) || !(slotMs > 0) || !Number.isInteger(options.periodMs / slotMs)) {
      throw new RangeError(`timer wheel: periodMs (${options.periodMs}) must be a positive multiple of slotMs (${slotMs})`);
    }
    this.periodMs = options.periodMs;
    this.slotMs = slotMs;
    this.slotCount = options.periodMs / slotMs;
    this.clock = options.clock ?? realClock;
    this.slots = Array.from({ length: this.slotCount }, () => []);
  }

  get size(): number {
    return this.entries;
  }

  /** Places the job in the next slot; it first runs when the wheel next reaches that slot. */
  add(item: T): WheelEntry<T> {
    const slot = this.nextSlot;
    this.nextSlot = (slot + 1) % this.slotCount;
    const list = this.slots[slot] as Slotted<T>[];
    const entry: Slotted<T> = { item, slot, index: list.length, ranAt: -1 };
    list.push(entry);
    if (this.entries++ === 0) this.start();
    return entry;
  }

  remove(handle: WheelEntry<T>): void {
    const entry = handle as Slotted<T>;
    if (entry.index < 0) return;
    const list = this.slots[entry.slot] as Slotted<T>[];
    const last = list.pop() as Slotted<T>;
    if (last !== entry) {
      list[entry.index] = last;
      last.index = entry.index;
    }
    entry.index = -1;
    if (--this.entries === 0) this.halt();
  }

  /** Jobs per slot, for checking the spread. */
  slotSizes(): number[] {
    return this.slots.map((list) => list.length);
  }

  /** Whether the wheel's one timer is armed (it is exactly when the wheel holds jobs). */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  lateness(): Lateness {
    const percentile = (p: number): number => {
      const rank = Math.ceil(this.samples * p);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += this.histogram[i] as number;
        if (seen >= rank) return Math.min((i + 1) * BUCKET_MS, this.maxLateMs);
      }
      return this.maxLateMs;
    };
    if (this.samples === 0) return { samples: 0, meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
    return {
      samples: this.samples,
      meanMs: this.totalLateMs / this.samples,
      p50Ms: percentile(0.5),
      p99Ms: percentile(0.99),
      maxMs: this.maxLateMs,
    };
  }

  resetLateness(): void {
    this.histogram.fill(0);
    this.samples = 0;
    this.totalLateMs = 0;
    this.maxLateMs = 0;
  }

  /** Drops every job and the timer. */
  stop(): void {
    for (const list of this.slots) {
      for (const entry of list) entry.index = -1;
      list.length = 0;
    }
    this.entries = 0;
    this.halt();
  }

  private start(): void {
    this.origin = this.clock.now();
    this.tick = 0;
    this.arm();
  }

  private halt(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    const due = this.origin + this.tick * this.slotMs;
    this.timer = this.clock.setTimeout(() => this.run(), Math.max(0, due - this.clock.now()));
  }

  private run(): void {
    this.timer = undefined;
    const now = this.clock.now();
    // Catch up on slots missed while the event loop was busy, but at most one
    // revolution: after a long stall each job runs once, late, not in a burst.
    for (let n = 0; n < this.slotCount && this.origin + this.tick * this.slotMs <= now && this.entries > 0; n++) {
      this.runSlot(this.tick);
      this.tick++;
    }
    const behind = Math.floor((now - this.origin) / this.slotMs) + 1;
    if (behind > this.tick) this.tick = behind;
    // Keep the numbers small over long runs; the schedule itself does not change.
    if (this.tick >= this.slotCount * 1_000) {
      this.origin += (this.tick - (this.tick % this.slotCount)) * this.slotMs;
      this.tick %= this.slotCount;
    }
    if (this.entries > 0 && this.timer === undefined) this.arm();
  }

  private runSlot(tick: number): void {
    const list = this.slots[tick % this.slotCount] as Slotted<T>[];
    const scheduled = this.origin + tick * this.slotMs;
    // Backwards, so a job removing itself (swap-removal) never skips another.
    for (let i = list.length - 1; i >= 0; i--) {
      const entry = list[i];
      if (entry === undefined || entry.ranAt === tick) continue;
      entry.ranAt = tick;
      this.observe(this.clock.now() - scheduled);
      try {
        this.onDue(entry.item);
      } catch {
        // One job's failure must not stop the others; the job reports its own errors.
      }
    }
  }

  private observe(lateMs: number): void {
    const late = lateMs > 0 ? lateMs : 0;
    this.histogram[Math.min(Math.floor(late / BUCKET_MS), BUCKETS - 1)]!++;
    this.samples++;
    this.totalLateMs += late;
    if (late > this.maxLateMs) this.maxLateMs = late;
  }
}
