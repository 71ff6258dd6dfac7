/**
 * Waits for proof that a recovered server runs: a heartbeat from its new host
 * that carries the server's identity and was sent after the reboot. A
 * heartbeat from whatever the host ran before, or one already in flight when
 * the host was powered on, proves nothing.
 */
import { topics, type BusLogger, type Heartbeat } from '@firebreak/shared';
import type { HeartbeatWanted } from '../incident/effects.ts';
import type { EffectsBus } from './command-gateway.ts';
import { SharedSubscriptions } from './shared-subscriptions.ts';

export function heartbeatMatches(heartbeat: Heartbeat, wanted: HeartbeatWanted): boolean {
  return heartbeat.server === wanted.server && heartbeat.sentAt >= wanted.sentAfter;
}

export class HeartbeatWaiter {
  private readonly subscriptions: SharedSubscriptions<Heartbeat>;
  /** Per heartbeat subject: what each watch (see `watch`) kept, the newest per server identity. */
  private readonly watched = new Map<string, Set<{ wanted: HeartbeatWanted; kept: Heartbeat | undefined }>>();

  constructor(
    private readonly bus: EffectsBus,
    logger: BusLogger,
  ) {
    this.subscriptions = new SharedSubscriptions(logger);
  }

  /** Hosts with a live heartbeat subscription. */
  get subscribed(): number {
    return this.subscriptions.size;
  }

  /**
   * Listens for heartbeats matching `wanted` from now until the signal aborts,
   * keeping the newest, so that a `wait` begun later (once the power-on it
   * follows has been confirmed) still gets one the host sent at boot.
   */
  watch(wanted: HeartbeatWanted, signal: AbortSignal): void {
    if (signal.aborted) return;
    const topic = topics.heartbeat(wanted.site, wanted.rack, wanted.host);
    const watch: { wanted: HeartbeatWanted; kept: Heartbeat | undefined } = { wanted, kept: undefined };
    const watches = this.watched.get(topic.subject) ?? new Set();
    this.watched.set(topic.subject, watches);
    watches.add(watch);
    const membership = this.subscriptions.join(
      topic.subject,
      (deliver) => this.bus.subscribeCore(topic, (heartbeat, ctx) => deliver(heartbeat, ctx.subject)),
      (heartbeat) => {
        if (heartbeatMatches(heartbeat, wanted) && (watch.kept === undefined || heartbeat.sentAt > watch.kept.sentAt)) watch.kept = heartbeat;
      },
    );
    const stop = (): void => {
      watches.delete(watch);
      if (watches.size === 0 && this.watched.get(topic.subject) === watches) this.watched.delete(topic.subject);
      void membership.leave();
    };
    signal.addEventListener('abort', stop, { once: true });
    membership.ready.catch(() => {});
  }

  wait(wanted: HeartbeatWanted, signal: AbortSignal): Promise<number> {
    signal.throwIfAborted();
    const topic = topics.heartbeat(wanted.site, wanted.rack, wanted.host);
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      // Unsubscribe before settling, so a caller that moves on leaves nothing behind.
      const finish = (settleWith: () => void): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        void membership.leave().then(settleWith);
      };
      const onAbort = (): void => finish(() => reject(signal.reason as unknown));
      // Every VM on one hypervisor heartbeats on that host's subject: they share one subscription.
      const membership = this.subscriptions.join(
        topic.subject,
        (deliver) => this.bus.subscribeCore(topic, (heartbeat, ctx) => deliver(heartbeat, ctx.subject)),
        (heartbeat) => {
          if (heartbeatMatches(heartbeat, wanted)) finish(() => resolve(heartbeat.sentAt));
        },
      );
      signal.addEventListener('abort', onAbort, { once: true });
      membership.ready.catch((err: unknown) => finish(() => reject(err)));
      // One a watch kept before this wait began counts as well as one heard from now on.
      for (const watch of this.watched.get(topic.subject) ?? []) {
        const kept = watch.kept;
        if (kept !== undefined && heartbeatMatches(kept, wanted)) finish(() => resolve(kept.sentAt));
      }
    });
  }

  async close(): Promise<void> {
    await this.subscriptions.closeAll();
  }
}
