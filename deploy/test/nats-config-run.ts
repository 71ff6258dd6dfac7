/**
 * deploy/nats/nats.conf run by the real nats-server with a partial
 * environment, to see what it refuses. A running server with every user's
 * password is `startNatsServer({ auth: true })` from @firebreak/shared, which
 * `firebreak up` runs too.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, natsConfPath } from '@firebreak/shared';

export interface ServerRun {
  code: number | null;
  output: string;
}

/** Runs the server with the config and the given environment only until it exits (a config it refuses). */
export async function runNatsUntilExit(env: Readonly<Record<string, string>>, timeoutMs = 15_000): Promise<ServerRun> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'fb-deploy-nats-'));
  const child = spawn(process.env.FB_NATS_SERVER_BIN ?? 'nats-server', ['-c', natsConfPath, '-a', '127.0.0.1', '-p', String(port), '-sd', dir], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-65_536);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server still running after ${timeoutMs} ms:\n${output}`)), timeoutMs);
      child.once('error', (err) => reject(new Error(`cannot start nats-server: ${err.message}; install it with: apt-get install nats-server`)));
      child.once('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    return { code, output };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}
