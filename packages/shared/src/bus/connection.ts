/**
 * Connecting to NATS the way every Firebreak process should: reconnect
 * forever (a DR orchestrator must outlive a NATS restart), and say so in the
 * logs when the connection drops or comes back.
 */
import { connect, DebugEvents, Events, type NatsConnection } from 'nats';
import { Bus, silentLogger, type BusLogger } from './bus.ts';

export interface ConnectBusOptions {
  /** One URL, or several separated by commas as in `NATS_URL`. */
  url: string;
  /** Client name shown by the server (`nats server report connections`). */
  name: string;
  logger?: BusLogger;
}

async function connectNats(options: ConnectBusOptions): Promise<NatsConnection> {
  const logger = options.logger ?? silentLogger;
  const nc = await connect({
    servers: options.url.split(',').map((s) => s.trim()),
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    // Spreads a fleet's reconnects after a server restart instead of a stampede.
    reconnectJitter: 500,
    // Notice a half-open TCP connection within ~30 s rather than the 4-minute default.
    pingInterval: 10_000,
    maxPingOut: 3,
  });
  void watchStatus(nc, options.name, logger);
  return nc;
}

async function watchStatus(nc: NatsConnection, name: string, logger: BusLogger): Promise<void> {
  for await (const status of nc.status()) {
    const fields = { nats: name, data: status.data };
    switch (status.type) {
      case Events.Disconnect:
        logger.warn(fields, 'nats disconnected; reconnecting');
        break;
      case Events.Reconnect:
        logger.info(fields, 'nats reconnected');
        break;
      case Events.LDM:
        logger.warn(fields, 'nats server entering lame duck mode; will move to another server');
        break;
      case Events.Error:
        logger.error(fields, 'nats async error');
        break;
      case DebugEvents.StaleConnection:
        logger.warn(fields, 'nats connection stale (pings unanswered)');
        break;
      default:
        break;
    }
  }
  const err = await nc.closed();
  if (err) logger.error({ nats: name, err }, 'nats connection closed with an error');
  else logger.info({ nats: name }, 'nats connection closed');
}

/** Connects and opens JetStream; the returned bus owns the connection (`close()` drains it). */
export async function connectBus(options: ConnectBusOptions): Promise<Bus> {
  const nc = await connectNats(options);
  try {
    return await Bus.open(nc, options.logger ?? silentLogger);
  } catch (err) {
    await nc.close();
    throw err;
  }
}
