/** NATS and Redis for `up` and `lab`: the given URLs, or embedded servers started here. */
import { startNatsServer, startRedisServer, type EmbeddedServer } from '@firebreak/shared';

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
      const redis = await startRedisServer({ batchScheduling: true });
      owned.push(redis);
      redisUrl = redis.url;
      console.log(`firebreak: started redis-server at ${redisUrl}`);
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
