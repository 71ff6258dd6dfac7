/**
 * Starts real NATS (JetStream) and Redis servers for tests: as child processes
 * on free loopback ports with temp dirs, or as containers when a Docker engine
 * is reachable. Never touches servers already running on the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server and removes its data; safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

interface ProcessSpec {
  name: string;
  command: string;
  args: (port: number, dir: string) => string[];
  readyLine: RegExp;
  scheme: string;
}

async function startProcess(spec: ProcessSpec, timeoutMs = 15_000): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), `fb-${spec.name}-`));
  const port = await freePort();
  const child = spawn(spec.command, spec.args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (spec.readyLine.test(output)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) =>
      reject(new Error(`cannot start ${spec.command}: ${err.message}. Install it (apt-get install ${spec.name === 'nats' ? 'nats-server' : 'redis-server'}).`)),
    );
    child.once('exit', (code) => reject(new Error(`${spec.command} exited with ${code} before it was ready:\n${output}`)));
  });
  const timer = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`${spec.command} not ready after ${timeoutMs} ms:\n${output}`)), timeoutMs).unref(),
  );
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
    }
    live.delete(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([ready, timer]);
    while (!(await portAccepts(port))) await new Promise((r) => setTimeout(r, 20));
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `${spec.scheme}://127.0.0.1:${port}`, port, stop };
}

export function startNatsProcess(): Promise<TestServer> {
  return startProcess({
    name: 'nats',
    command: process.env.FB_NATS_SERVER_BIN ?? 'nats-server',
    args: (port, dir) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, '-m', '0'],
    readyLine: /Server is ready/,
    scheme: 'nats',
  });
}

export function startRedisProcess(): Promise<TestServer> {
  return startProcess({
    name: 'redis',
    command: process.env.FB_REDIS_SERVER_BIN ?? 'redis-server',
    args: (port, dir) => ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no'],
    readyLine: /Ready to accept connections/,
    scheme: 'redis',
  });
}

/** A Docker engine is worth trying only when one is configured or its socket exists. */
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
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await container.stop();
    },
  };
}

async function startEither(kind: 'nats' | 'redis'): Promise<TestServer> {
  if (dockerConfigured()) {
    try {
      return kind === 'nats'
        ? await startContainer('nats:2.9', 4222, ['-js'], 'nats')
        : await startContainer('redis:7', 6379, ['redis-server', '--save', '', '--appendonly', 'no'], 'redis');
    } catch {
      // No usable engine after all: fall back to a local process.
    }
  }
  return kind === 'nats' ? startNatsProcess() : startRedisProcess();
}

export const startNats = (): Promise<TestServer> => startEither('nats');
export const startRedis = (): Promise<TestServer> => startEither('redis');
