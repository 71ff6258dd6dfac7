/**
 * One active planner per site: a Redis lease, renewed at a third of its TTL.
 * The token handed out with the lease only grows, and rides on every command
 * so executors refuse a deposed leader's late commands.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { plannerLeaseKey, type LeaseStore, type Logger, type TokenFloor } from '@firebreak/shared';
import { raceAbort } from './effects/until-aborted.ts';

export interface LeaderElectionOptions {
  leases: LeaseStore;
  site: string;
  owner: string;
  ttlMs: number;
  logger: Logger;
  /** Where the highest token handed out is kept apart from Redis; without it, tokens are as Redis hands them out. */
  floor?: Pick<TokenFloor, 'read' | 'record'>;
  /** Called with the lease's fencing token on winning; returns how to stand down. */
  onElected(token: number): Promise<() => Promise<void>>;
}

export class LeaderElection {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private standDown: (() => Promise<void>) | undefined;
  /** The lease is surely ours until then: a TTL from when the last acquire or renewal that succeeded was sent. */
  private heldUntil = 0;
  token: number | undefined;

  constructor(private readonly options: LeaderElectionOptions) {}

  get key(): string {
    return plannerLeaseKey(this.options.site);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.resign();
    // Best effort: a lease that cannot be given back expires by itself.
    await this.bounded(() => this.options.leases.release(this.key, this.options.owner), this.interval, false).catch(() => false);
  }

  private get interval(): number {
    return Math.max(50, Math.floor(this.options.ttlMs / 3));
  }

  /**
   * A leader that has not renewed by then stands down: half an interval
   * before its lease can expire and pass to another planner (the lease's TTL
   * runs from when Redis saw the renewal, later than when it was sent).
   */
  private get confirmBy(): number {
    return this.heldUntil - Math.floor(this.interval / 2);
  }

  private async run(): Promise<void> {
    const { leases, owner, ttlMs, logger } = this.options;
    while (!this.abort.signal.aborted) {
      const sentAt = Date.now();
      try {
        if (this.token === undefined) {
          const won = await this.bounded(() => leases.acquire(this.key, owner, ttlMs), this.interval);
          if (won.acquired) {
            this.heldUntil = sentAt + ttlMs;
            const token = await this.bounded(() => this.aboveFloor(won.token), this.confirmBy - Date.now());
            if (token !== undefined) {
              this.token = token;
              logger.info({ site: this.options.site, fencingToken: token }, 'elected planner for the site');
              this.standDown = await this.options.onElected(token);
            }
          }
        } else if (await this.bounded(() => leases.renew(this.key, owner, ttlMs), this.confirmBy - sentAt)) {
          this.heldUntil = sentAt + ttlMs;
        } else {
          logger.warn({ site: this.options.site }, 'lost the planner lease; standing down');
          await this.resign();
        }
      } catch (err) {
        if (this.abort.signal.aborted) break;
        logger.warn({ err }, 'planner lease check failed');
      }
      if (this.token !== undefined && Date.now() >= this.confirmBy) {
        // Redis does not answer (a partition, a hung connection): the lease goes to another planner when it expires.
        logger.warn({ site: this.options.site }, 'could not renew the planner lease in time; standing down');
        await this.resign();
      }
      // A leader retrying a failed renewal tries once more at the deadline rather than a full interval later.
      const wait = this.token === undefined ? this.interval : Math.min(this.interval, this.confirmBy - Date.now());
      await sleep(Math.max(0, wait), undefined, { signal: this.abort.signal }).catch(() => {});
    }
  }

  /**
   * The token to act with: the lease's, lifted above the highest one recorded
   * apart from Redis (should Redis have lost its data), and recorded there
   * before it is used. Undefined when the lease was lost meanwhile.
   */
  private async aboveFloor(granted: number): Promise<number | undefined> {
    const { floor, leases, owner, site, logger } = this.options;
    if (floor === undefined) return granted;
    for (;;) {
      const recorded = await floor.read(site);
      let token: number | undefined = granted;
      if (recorded !== undefined && granted <= recorded.token) {
        token = await leases.raiseAbove(this.key, owner, recorded.token);
        if (token === undefined) return undefined;
        logger.warn({ site, granted, floor: recorded.token, fencingToken: token }, 'Redis handed out a fencing token at or below one used before (it lost its data?); raised above it');
      }
      try {
        await floor.record(site, token, owner, recorded);
        return token;
      } catch (err) {
        // Another planner recorded in between: read again, and stay above what it recorded.
        if ((err as Error).name !== 'TokenFloorConflictError') throw err;
        granted = token;
      }
    }
  }

  /** A lease call that has not answered within `ms` (or, unless told otherwise, by stop()) counts as failed: the loop keeps its own time. */
  private bounded<T>(call: () => Promise<T>, ms: number, abortable = true): Promise<T> {
    if (ms <= 0) return Promise.reject(new Error('no time left to check the planner lease'));
    const timeout = AbortSignal.timeout(ms);
    return raceAbort(call(), abortable ? AbortSignal.any([timeout, this.abort.signal]) : timeout);
  }

  private async resign(): Promise<void> {
    const standDown = this.standDown;
    this.standDown = undefined;
    this.token = undefined;
    await standDown?.();
  }
}
