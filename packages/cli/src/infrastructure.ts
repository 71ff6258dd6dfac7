/** NATS and Redis for `up` and `lab`: the given URLs, or embedded servers started here. */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startNatsServer, startRedisServer, type EmbeddedServer } from '@firebreak/shared';
import { stateDir } from './lab-state.ts';

export interface Infrastructure {
  natsUrl: string;
  redisUrl: string;
  stop(): Promise<void>;
}

export async function startInfrastructure(urls: { natsUrl?: string | undefined; redisUrl?: string | undefined }): Promise<Infrastructure> {
  const owned: EmbeddedServer[] = [];
  const stop = async (): Promise<void> => {
    for (const server of owned.reverse()) await server.stop();
  };
  try {
    let natsUrl = urls.natsUrl;
    let redisUrl = urls.redisUrl;
    if (!natsUrl) {
      // Beside every service and the lab on this machine: see batch-scheduling.ts.
      const nats = await startNatsServer({ batchScheduling: true });
      owned.push(nats);
      natsUrl = nats.url;
      console.log(`firebreak: started nats-server (JetStream) at ${natsUrl}`);
    }
    if (!redisUrl) {
      // Its append-only file lives in the state dir, so a redis-server that crashes and is started again on
      // that dir keeps leases, fencing counters, snapshots and the ledger. Each run simulates a new data
      // center, so it starts from an empty one: yesterday's ledger would describe another world.
      const dataDir = join(stateDir(), 'redis');
      await rm(dataDir, { recursive: true, force: true });
      await mkdir(dataDir, { recursive: true });
      const redis = await startRedisServer({ batchScheduling: true, dataDir });
      owned.push(redis);
      redisUrl = redis.url;
      console.log(`firebreak: started redis-server at ${redisUrl} (data in ${dataDir})`);
    }
    return { natsUrl, redisUrl, stop };
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
