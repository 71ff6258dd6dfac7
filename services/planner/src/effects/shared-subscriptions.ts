/**
 * One core NATS subscription per key, shared by every waiter on that key and
 * stopped when the last one leaves: hundreds of commands of one incident, or
 * every VM on one hypervisor, cost one subscription instead of one each.
 */
import type { BusLogger, CoreSubscription } from '@firebreak/shared';

export type Deliver<T> = (message: T, subject: string) => void;

/** Opens the subscription for a key; every message goes to `deliver`. */
export type Open<T> = (deliver: Deliver<T>) => Promise<CoreSubscription>;

export interface Membership {
  /** Resolves once the server has the interest, so nothing published afterwards is missed. */
  readonly ready: Promise<void>;
  /** Never throws. Waits for the unsubscribe when this was the last member and the subscription was up. */
  leave(): Promise<void>;
}

interface Entry<T> {
  readonly listeners: Set<Deliver<T>>;
  readonly ready: Promise<void>;
  subscription: CoreSubscription | undefined;
  stopping: boolean;
}

export class SharedSubscriptions<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(private readonly logger: BusLogger) {}

  /** Listeners registered here get messages at once; `ready` says when none can be missed any more. */
  join(key: string, open: Open<T>, listener: Deliver<T>): Membership {
    const entry = this.entries.get(key) ?? this.create(key, open);
    entry.listeners.add(listener);
    let left = false;
    return {
      ready: entry.ready,
      leave: async () => {
        if (left) return;
        left = true;
        entry.listeners.delete(listener);
        if (entry.listeners.size > 0) return;
        if (this.entries.get(key) === entry) this.entries.delete(key);
        await this.stop(key, entry);
      },
    };
  }

  /** Keys with a live (or opening) subscription. */
  get size(): number {
    return this.entries.size;
  }

  async closeAll(): Promise<void> {
    const entries = [...this.entries];
    this.entries.clear();
    await Promise.all(
      entries.map(([key, entry]) => {
        entry.listeners.clear();
        return this.stop(key, entry);
      }),
    );
  }

  private create(key: string, open: Open<T>): Entry<T> {
    const listeners = new Set<Deliver<T>>();
    const deliver: Deliver<T> = (message, subject) => {
      for (const listener of listeners) listener(message, subject);
    };
    const entry: Entry<T> = {
      listeners,
      subscription: undefined,
      stopping: false,
      ready: open(deliver).then(
        (subscription) => {
          entry.subscription = subscription;
        },
        (err: unknown) => {
          // The next joiner tries again rather than inheriting a dead entry.
          if (this.entries.get(key) === entry) this.entries.delete(key);
          throw err;
        },
      ),
    };
    // Members await `ready`; this branch only keeps a failure nobody awaited from being reported as unhandled.
    entry.ready.catch(() => {});
    this.entries.set(key, entry);
    return entry;
  }

  private async stop(key: string, entry: Entry<T>): Promise<void> {
    if (entry.stopping) return;
    entry.stopping = true;
    if (entry.subscription === undefined) {
      // Still opening (e.g. flushing during a reconnect): do not hold the leaver up; unsubscribe once it is up.
      void entry.ready.then(() => this.unsubscribe(key, entry), () => {});
      return;
    }
    await this.unsubscribe(key, entry);
  }

  private async unsubscribe(key: string, entry: Entry<T>): Promise<void> {
    try {
      await entry.subscription?.stop();
    } catch (err) {
      this.logger.warn({ key, err }, 'could not unsubscribe; the connection is probably closing');
    }
  }
}
