/**
 * What the lab's simulators did, for tests and operators: a counter per
 * (source, action, host) and an ordered event log across all simulators, so a
 * test can check that a fence came before a storage grant.
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

export class LabRecorder {
  private seq = 0;
  private readonly log: LabEvent[] = [];
  private readonly counts = new Map<string, number>();

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

  /** Every counter as `source action host → n`, `*` standing for all hosts. */
  counters(): Record<string, number> {
    return Object.fromEntries([...this.counts].map(([key, n]) => [key.replaceAll('|', ' '), n]));
  }

  private bump(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}
