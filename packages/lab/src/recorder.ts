/**
 * What the lab's simulators did, for tests and operators: a counter per
 * (source, action, host), an ordered event log across all simulators, so a
 * test can check that a fence came before a storage grant, and the peak
 * number of requests a device had in hand at once, so a test can check a
 * concurrency limit where it matters: at the device.
 */
export const labSources = ['bmc', 'switch', 'san', 'host', 'boot', 'fault', 'vm'] as const;
export type LabSource = (typeof labSources)[number];

export interface LabEvent {
  /** Strictly increasing across every simulator of one lab. */
  readonly seq: number;
  readonly at: number;
  readonly source: LabSource;
  readonly action: string;
  readonly host?: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface RecordOptions {
  host?: string | undefined;
  detail?: Record<string, unknown>;
  /** Count only: for high-rate actions such as heartbeats that would flood the log. */
  countOnly?: boolean;
}

export interface EventFilter {
  source?: LabSource;
  action?: string;
  host?: string;
  sinceSeq?: number;
}

const ANY_HOST = '*';
/** The counters' action under which in-flight peaks appear. */
const PEAK = 'in-flight-peak';

export class LabRecorder {
  private seq = 0;
  private readonly log: LabEvent[] = [];
  private readonly counts = new Map<string, number>();
  /** Requests in hand now and their high-water marks, by `source|device` and `source|*` (all devices together). */
  private readonly inFlightNow = new Map<string, number>();
  private readonly peaks = new Map<string, number>();

  /** @param maxEvents the log keeps the newest this many events; counters are never trimmed. */
  constructor(private readonly maxEvents = 200_000) {}

  record(source: LabSource, action: string, options: RecordOptions = {}): void {
    this.bump(`${source}|${action}|${ANY_HOST}`);
    if (options.host !== undefined) this.bump(`${source}|${action}|${options.host}`);
    if (options.countOnly) return;
    const event: LabEvent = {
      seq: ++this.seq,
      at: Date.now(),
      source,
      action,
      ...(options.host !== undefined && { host: options.host }),
      ...(options.detail !== undefined && { detail: options.detail }),
    };
    this.log.push(event);
    if (this.log.length > this.maxEvents) this.log.splice(0, this.log.length - this.maxEvents);
  }

  /** How often `source` did `action`, for one host or (without a host) in total. */
  count(source: LabSource, action: string, host?: string): number {
    return this.counts.get(`${source}|${action}|${host ?? ANY_HOST}`) ?? 0;
  }

  events(filter: EventFilter = {}): LabEvent[] {
    return this.log.filter(
      (e) =>
        (filter.source === undefined || e.source === filter.source) &&
        (filter.action === undefined || e.action === filter.action) &&
        (filter.host === undefined || e.host === filter.host) &&
        (filter.sinceSeq === undefined || e.seq > filter.sinceSeq),
    );
  }

  /**
   * A device (e.g. a BMC endpoint, by its address) starts handling a request;
   * call the returned function once it has answered (or dropped) it.
   */
  inFlight(source: LabSource, device: string): () => void {
    const keys = [`${source}|${device}`, `${source}|${ANY_HOST}`];
    for (const key of keys) {
      const n = (this.inFlightNow.get(key) ?? 0) + 1;
      this.inFlightNow.set(key, n);
      if (n > (this.peaks.get(key) ?? 0)) this.peaks.set(key, n);
    }
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      for (const key of keys) this.inFlightNow.set(key, (this.inFlightNow.get(key) ?? 1) - 1);
    };
  }

  /** The most requests one device (or, without one, all of `source`'s devices together) had in hand at once. */
  peakInFlight(source: LabSource, device?: string): number {
    return this.peaks.get(`${source}|${device ?? ANY_HOST}`) ?? 0;
  }

  /** Starts the peaks afresh from what is in hand now, e.g. before a test's burst. */
  resetPeaks(): void {
    this.peaks.clear();
    for (const [key, n] of this.inFlightNow) if (n > 0) this.peaks.set(key, n);
  }

  /**
   * Every counter as `source action host → n`, `*` standing for all hosts,
   * and every in-flight peak as `source in-flight-peak device → n`, `*`
   * standing for all the source's devices together.
   */
  counters(): Record<string, number> {
    return Object.fromEntries([
      ...[...this.counts].map(([key, n]): [string, number] => [key.replaceAll('|', ' '), n]),
      ...[...this.peaks].map(([key, n]): [string, number] => [key.replace('|', ` ${PEAK} `), n]),
    ]);
  }

  private bump(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}
