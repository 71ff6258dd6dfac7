/**
 * NATS and Redis for `up` and `lab`: the given URLs, or embedded servers
 * started here. Embedded ones require a login as deployed ones do: NATS runs
 * deploy/nats/nats.conf (one user per service, each with only its subjects),
 * Redis a password; both generated on every start.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startNatsServer, startRedisServer, type AuthenticatedNatsServer, type EmbeddedServer, type NatsUser } from '@firebreak/shared';
import { splitUrlCredentials, stateDir, type LabCredentials } from './lab-state.ts';

/** NATS_USER / NATS_PASSWORD for one process; both absent on a server without users. */
export interface NatsIdentity {
  user?: string | undefined;
  password?: string | undefined;
}

export interface Infrastructure {
  /** Without credentials: safe to print and to record in lab.json. */
  natsUrl: string;
  redisUrl: string;
  /** REDIS_URL for a client: with the password when Redis requires one. Never print it. */
  redisClientUrl: string;
  /** For credentials.json: the passwords of the servers started here, and a given Redis URL's. */
  credentials: LabCredentials;
  /**
   * Who a process acting as `user` logs in as: that user of nats.conf on the
   * NATS started here; on a given NATS, whoever NATS_USER / NATS_PASSWORD say
   * (as each service would be deployed: its own environment decides).
   */
  natsIdentity(user: NatsUser): NatsIdentity;
  stop(): Promise<void>;
}

export async function startInfrastructure(urls: { natsUrl?: string | undefined; redisUrl?: string | undefined }): Promise<Infrastructure> {
  const owned: EmbeddedServer[] = [];
  const stop = async (): Promise<void> => {
    for (const server of owned.reverse()) await server.stop();
  };
  try {
    let nats: AuthenticatedNatsServer | undefined;
    let natsUrl = urls.natsUrl;
    if (!natsUrl) {
      // Beside every service and the lab on this machine: see batch-scheduling.ts.
      nats = await startNatsServer({ auth: true, batchScheduling: true });
      owned.push(nats);
      natsUrl = nats.url;
      // The services' own users may only check that the streams exist, as in a deployment.
      await nats.createStreams();
      console.log(`firebreak: started nats-server (JetStream) at ${natsUrl}, users and permissions of deploy/nats/nats.conf`);
    }
    let redisUrl: string;
    let redisClientUrl: string;
    let redisCredentials: LabCredentials['redis'];
    if (urls.redisUrl) {
      redisClientUrl = urls.redisUrl;
      ({ url: redisUrl, redis: redisCredentials } = splitUrlCredentials(urls.redisUrl));
    } else {
      // Its append-only file lives in the state dir, so a redis-server that crashes and is started again on
      // that dir keeps leases, fencing counters, snapshots and the ledger. Each run simulates a new data
      // center, so it starts from an empty one: yesterday's ledger would describe another world.
      const dataDir = join(stateDir(), 'redis');
      await rm(dataDir, { recursive: true, force: true });
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const redis = await startRedisServer({ auth: true, batchScheduling: true, dataDir });
      owned.push(redis);
      redisUrl = redis.url;
      redisClientUrl = redis.authUrl;
      redisCredentials = { password: redis.password };
      console.log(`firebreak: started redis-server at ${redisUrl} (data in ${dataDir}), password required`);
    }
    const fromEnvironment: NatsIdentity = { user: process.env.NATS_USER || undefined, password: process.env.NATS_PASSWORD || undefined };
    return {
      natsUrl,
      redisUrl,
      redisClientUrl,
      credentials: {
        ...(nats !== undefined && { nats: { ...nats.passwords } }),
        ...(redisCredentials !== undefined && { redis: redisCredentials }),
      },
      natsIdentity: (user) => (nats === undefined ? fromEnvironment : nats.credentialsFor(user)),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves on the first Ctrl-C or SIGTERM. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
