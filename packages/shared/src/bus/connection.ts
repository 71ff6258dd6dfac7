/**
 * Connecting to NATS the way every Firebreak process should: reconnect
 * forever (a DR orchestrator must outlive a NATS restart), and say so in the
 * logs when the connection drops or comes back.
 */
import { connect, DebugEvents, ErrorCode, Events, NatsError, type NatsConnection } from 'nats';
import { ConfigError } from '../errors.ts';
import { assertToken } from '../subjects.ts';
import { Bus, silentLogger, type BusLogger } from './bus.ts';

export interface ConnectBusOptions {
  /** One URL, or several separated by commas as in `NATS_URL`. */
  url: string;
  /** Client name shown by the server (`nats server report connections`). */
  name: string;
  /**
   * `NATS_USER` and `NATS_PASSWORD`: both or neither (nats.js ignores credentials in a URL).
   * With a user, replies come to `_INBOX.<user>.…`, so the server can let each
   * user read its own replies only (deploy/nats/nats.conf).
   */
  user?: string | undefined;
  password?: string | undefined;
  logger?: BusLogger;
  /**
   * Default true: fail unless the server answers JetStream's API. False for a
   * client of core NATS only, such as a host agent, whose user may not ask
   * (deploy/nats/nats.conf); its bus can then only publish and subscribe.
   */
  checkJetStream?: boolean;
}

function credentials(options: ConnectBusOptions): { user: string; pass: string; inboxPrefix: string } | undefined {
  const { user, password } = options;
  if (user === undefined && password === undefined) return undefined;
  if (user === undefined || password === undefined) {
    throw new ConfigError(`NATS_USER and NATS_PASSWORD go together: ${user === undefined ? 'NATS_USER' : 'NATS_PASSWORD'} is missing`);
  }
  return { user, pass: password, inboxPrefix: `_INBOX.${assertToken(user, 'NATS_USER')}` };
}

async function connectNats(options: ConnectBusOptions): Promise<NatsConnection> {
  const logger = options.logger ?? silentLogger;
  const auth = credentials(options);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.url.split(',').map((s) => s.trim()),
      name: options.name,
      ...auth,
      maxReconnectAttempts: -1,
      // Keep reconnecting through a password rotation rather than give up on the second refusal.
      ignoreAuthErrorAbort: true,
      reconnectTimeWait: 1_000,
      // Spreads a fleet's reconnects after a server restart instead of a stampede.
      reconnectJitter: 500,
      // Notice a half-open TCP connection within ~30 s rather than the 4-minute default.
      pingInterval: 10_000,
      maxPingOut: 3,
      // No stack captured per request (every JetStream publish is one): a tenth of the executor's time at load.
      noAsyncTraces: true,
    });
  } catch (err) {
    if (err instanceof NatsError && err.code === ErrorCode.AuthorizationViolation) {
      const who = auth === undefined ? 'a connection without NATS_USER and NATS_PASSWORD' : `user "${auth.user}"`;
      throw new ConfigError(`NATS refused ${who}: set NATS_USER and NATS_PASSWORD to a user of the server's configuration (deploy/nats/nats.conf)`);
    }
    throw err;
  }
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
    return await Bus.open(nc, options.logger ?? silentLogger, { checkJetStream: options.checkJetStream ?? true });
  } catch (err) {
    await nc.close();
    throw err;
  }
}
