/**
 * Real NATS (JetStream) and Redis for tests: containers when a Docker engine
 * is reachable, otherwise child processes on free loopback ports with temp
 * dirs. Never touches servers already running on the machine.
 */
import { existsSync } from 'node:fs';
import { startNatsServer, startRedisServer, type EmbeddedServer } from '../embedded-servers.ts';

export type TestServer = EmbeddedServer;

/** Worth trying only when an engine is configured or its socket exists. */
function dockerConfigured(): boolean {
  if (process.env.FB_TEST_SERVERS === 'process') return false;
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

async function startContainer(image: string, port: number, cmd: string[], scheme: string): Promise<TestServer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(image)
    .withCommand(cmd)
    .withExposedPorts(port)
    .withWaitStrategy(Wait.forListeningPorts())
    .start();
  const mapped = container.getMappedPort(port);
  let stopped = false;
  return {
    url: `${scheme}://${container.getHost()}:${mapped}`,
    port: mapped,
    // In a container: not a process of this machine to read.
    pid: undefined,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await container.stop();
    },
    kill: async () => {
      throw new Error('kill() is for process servers: set FB_TEST_SERVERS=process for crash tests');
    },
    restart: async () => {
      throw new Error('restart() is for process servers: set FB_TEST_SERVERS=process for crash tests');
    },
  };
}

export async function startNats(): Promise<TestServer> {
  if (dockerConfigured()) {
    try {
      return await startContainer('nats:2.9', 4222, ['-js'], 'nats');
    } catch {
      // The socket exists but no engine answers: fall back to a process.
    }
  }
  return startNatsServer();
}

export async function startRedis(): Promise<TestServer> {
  if (dockerConfigured()) {
    try {
      return await startContainer('redis:7', 6379, ['redis-server', '--save', '', '--appendonly', 'yes'], 'redis');
    } catch {
      // As above.
    }
  }
  return startRedisServer();
}
