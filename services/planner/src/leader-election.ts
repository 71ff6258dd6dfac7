/**
 * One active planner per site: a Redis lease, renewed at a third of its TTL.
 * The token handed out with the lease only grows, and rides on every command
 * so executors refuse a deposed leader's late commands.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeaseStore, Logger } from '@firebreak/shared';

export interface LeaderElectionOptions {
  leases: LeaseStore;
  site: string;
  owner: string;
  ttlMs: number;
  logger: Logger;
  /** Called with the lease's fencing token on winning; returns how to stand down. */
  onElected(token: number): Promise<() => Promise<void>>;
}

export class LeaderElection {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private standDown: (() => Promise<void>) | undefined;
  token: number | undefined;

  constructor(private readonly options: LeaderElectionOptions) {}

  get key(): string {
    return `planner-${this.options.site}`;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.resign();
    await this.options.leases.release(this.key, this.options.owner).catch(() => false);
  }

  private async run(): Promise<void> {
    const { leases, owner, ttlMs, logger } = this.options;
    while (!this.abort.signal.aborted) {
      try {
        if (this.token === undefined) {
          const won = await leases.acquire(this.key, owner, ttlMs);
          if (won.acquired) {
            this.token = won.token;
            logger.info({ site: this.options.site, token: won.token }, 'elected planner for the site');
            this.standDown = await this.options.onElected(won.token);
          }
        } else if (!(await leases.renew(this.key, owner, ttlMs))) {
          logger.warn({ site: this.options.site }, 'lost the planner lease; standing down');
          await this.resign();
        }
      } catch (err) {
        logger.warn({ err }, 'planner lease check failed');
      }
      await sleep(Math.max(50, Math.floor(ttlMs / 3)), undefined, { signal: this.abort.signal }).catch(() => {});
    }
  }

  private async resign(): Promise<void> {
    const standDown = this.standDown;
    this.standDown = undefined;
    this.token = undefined;
    await standDown?.();
  }
}
