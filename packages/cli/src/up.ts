/**
 * `firebreak up`: the whole system on one machine. Starts embedded NATS and
 * Redis unless URLs are given, then each service as its own process, and stops
 * everything in reverse order on Ctrl-C or when a service dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startNatsServer, startRedisServer, type EmbeddedServer } from '@firebreak/shared';
import { renderLogLine } from './log-view.ts';

export interface UpOptions {
  natsUrl?: string | undefined;
  redisUrl?: string | undefined;
}

const services = ['detector', 'planner', 'executor'] as const;

function startService(name: string, env: NodeJS.ProcessEnv): ChildProcess {
  const entry = fileURLToPath(import.meta.resolve(`@firebreak/${name}/main`));
  // Own process group, so Ctrl-C reaches only `up`, which stops services before the servers they need.
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => console.log(renderLogLine(name, line)));
  }
  return child;
}

export async function up(options: UpOptions): Promise<number> {
  const owned: EmbeddedServer[] = [];
  const children = new Map<string, ChildProcess>();
  let stopping = false;

  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      [...children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
          }),
      ),
    );
    for (const server of owned.reverse()) await server.stop();
  };

  try {
    let natsUrl = options.natsUrl;
    let redisUrl = options.redisUrl;
    if (!natsUrl) {
      const nats = await startNatsServer();
      owned.push(nats);
      natsUrl = nats.url;
      console.log(`firebreak: started nats-server (JetStream) at ${natsUrl}`);
    }
    if (!redisUrl) {
      const redis = await startRedisServer();
      owned.push(redis);
      redisUrl = redis.url;
      console.log(`firebreak: started redis-server at ${redisUrl}`);
    }
    const env = { ...process.env, NATS_URL: natsUrl, REDIS_URL: redisUrl };
    for (const name of services) children.set(name, startService(name, env));
    process.once('exit', () => {
      for (const child of children.values()) child.kill('SIGKILL');
    });
  } catch (err) {
    await stopAll();
    console.error(`firebreak: ${(err as Error).message}`);
    return 2;
  }

  return new Promise<number>((resolve) => {
    const finish = (code: number): void => {
      void stopAll().then(() => resolve(code));
    };
    process.once('SIGINT', () => finish(0));
    process.once('SIGTERM', () => finish(0));
    for (const [name, child] of children) {
      child.once('exit', (code, signal) => {
        if (stopping) return;
        console.error(`firebreak: ${name} exited (${signal ?? `code ${code}`}); stopping everything`);
        finish(1);
      });
    }
    console.log('firebreak: running; press Ctrl-C to stop');
  });
}
