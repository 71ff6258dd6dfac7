/**
 * The real nats-server run with deploy/nats/nats.conf, on a free loopback
 * port with a temp JetStream store, and random passwords in its environment
 * exactly as compose and Kubernetes provide them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectBus, freePort, type Bus } from '@firebreak/shared';

export const natsConf = fileURLToPath(new URL('../nats/nats.conf', import.meta.url));

export const natsUsers = ['admin', 'detector', 'planner', 'executor', 'operator', 'host-agent'] as const;
export type NatsUser = (typeof natsUsers)[number];

/** `host-agent` → `NATS_HOST_AGENT_PASSWORD`, the variable nats.conf reads. */
export function passwordVariable(user: NatsUser): string {
  return `NATS_${user.toUpperCase().replaceAll('-', '_')}_PASSWORD`;
}

/** Letters and digits, starting with a letter: what deploy/README.md tells operators to generate. */
export function randomPassword(): string {
  return `fb${randomBytes(24).toString('hex')}`;
}

export interface SecuredNats {
  readonly url: string;
  readonly passwords: Readonly<Record<NatsUser, string>>;
  /** Everything the server printed so far. */
  output(): string;
  connectAs(user: NatsUser, name?: string): Promise<Bus>;
  stop(): Promise<void>;
}

export interface ServerRun {
  code: number | null;
  output: string;
}

function spawnNats(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const child = spawn(process.env.FB_NATS_SERVER_BIN ?? 'nats-server', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-65_536);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { child, output: () => output };
}

/** Runs the server with the config and the given environment only until it exits (a config it refuses). */
export async function runNatsUntilExit(env: Readonly<Record<string, string>>, timeoutMs = 15_000): Promise<ServerRun> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'fb-deploy-nats-'));
  const { child, output } = spawnNats(['-c', natsConf, '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { PATH: process.env.PATH, ...env });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server still running after ${timeoutMs} ms:\n${output()}`)), timeoutMs);
      child.once('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    return { code, output: output() };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

export async function startSecuredNats(readyTimeoutMs = 30_000): Promise<SecuredNats> {
  const passwords = Object.fromEntries(natsUsers.map((user) => [user, randomPassword()])) as Record<NatsUser, string>;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const user of natsUsers) env[passwordVariable(user)] = passwords[user];

  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'fb-deploy-nats-'));
  const { child, output } = spawnNats(['-c', natsConf, '-a', '127.0.0.1', '-p', String(port), '-sd', dir], env);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server not ready after ${readyTimeoutMs} ms:\n${output()}`)), readyTimeoutMs);
      const poll = setInterval(() => {
        if (!/Server is ready/.test(output())) return;
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      }, 20);
      child.once('error', (err) => reject(new Error(`cannot start nats-server: ${err.message}; install it with: apt-get install nats-server`)));
      child.once('exit', (code) => {
        clearInterval(poll);
        clearTimeout(timer);
        reject(new Error(`nats-server exited with code ${code} before it was ready:\n${output()}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const url = `nats://127.0.0.1:${port}`;
  return {
    url,
    passwords,
    output,
    connectAs: (user, name = `deploy-test-${user}`) => connectBus({ url, name, user, password: passwords[user] }),
    stop,
  };
}
