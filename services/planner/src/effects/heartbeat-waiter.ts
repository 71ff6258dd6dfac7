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
    });
  }

  async close(): Promise<void> {
    await this.subscriptions.closeAll();
  }
}
