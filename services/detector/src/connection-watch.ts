/**
 * The detector's own connection to NATS, as far as hearing goes: heartbeats
 * are core NATS messages, neither stored nor replayed, so while the
 * connection is down the detector hears no host at all.
 */
import { Events, type NatsConnection } from 'nats';

export interface ConnectionEvents {
  disconnected?(): void;
  reconnected(): void;
}

export interface ConnectionWatch {
  stop(): void;
}

export function watchConnection(nc: Pick<NatsConnection, 'status'>, on: ConnectionEvents): ConnectionWatch {
  const statuses = nc.status();
  void (async () => {
    try {
      for await (const status of statuses) {
        if (status.type === Events.Disconnect) on.disconnected?.();
        else if (status.type === Events.Reconnect) on.reconnected();
      }
    } catch {
      // The connection closed under us: there is nothing more to watch.
    }
  })();
  return { stop: () => (statuses as { stop?: () => void }).stop?.() };
}
