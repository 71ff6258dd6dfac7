/**
 * `firebreak up`: the whole system on one machine against the simulated data
 * center. NATS and Redis (embedded unless URLs are given), the lab, then each
 * service as its own process; everything stops in reverse order on Ctrl-C or
 * when a service dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '@firebreak/shared';
import { printLab, startLabWithInfrastructure, type LabCommandOptions } from './lab.ts';
import { renderLogLine } from './log-view.ts';

const services = ['boot-service', 'detector', 'planner', 'executor'] as const;

function startService(name: string, env: NodeJS.ProcessEnv): ChildProcess {
  const entry = fileURLToPath(import.meta.resolve(`@firebreak/${name}/main`));
  // Own process group, so Ctrl-C reaches only `up`, which stops services before the servers they need.
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => console.log(renderLogLine(name, line)));
  }
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  });
}

export async function up(options: LabCommandOptions): Promise<number> {
  // The lab's switches send their link traps to the detector.
  const trapPort = await freePort();
  // Recovered hosts PXE-boot from the boot service the executor configures.
  const bootListen = `127.0.0.1:${await freePort()}`;
  const bootUrl = `http://${bootListen}`;
  const running = await startLabWithInfrastructure({
    ...options,
    bootServiceUrl: options.bootServiceUrl ?? bootUrl,
    trapReceivers: [...(options.trapReceivers ?? []), `127.0.0.1:${trapPort}`],
  });
  printLab(running.lab);
  const d = running.lab.describe();
  const env = {
    ...process.env,
    NATS_URL: running.infra.natsUrl,
    REDIS_URL: running.infra.redisUrl,
    FB_INVENTORY: d.inventoryPath,
    FB_TRAP_PORT: String(trapPort),
    FB_BOOT_DIR: await mkdtemp(join(tmpdir(), 'firebreak-boot-')),
    FB_BOOT_LISTEN: bootListen,
    FB_BOOT_SERVICE_URL: bootUrl,
  };
  const children = new Map<string, ChildProcess>();
  for (const name of services) children.set(name, startService(name, env));
  process.once('exit', () => {
    for (const child of children.values()) child.kill('SIGKILL');
  });

  let stopping = false;
  const code = await new Promise<number>((resolve) => {
    process.once('SIGINT', () => resolve(0));
    process.once('SIGTERM', () => resolve(0));
    for (const [name, child] of children) {
      child.once('exit', (exitCode, signal) => {
        if (stopping) return;
        console.error(`firebreak: ${name} exited (${signal ?? `code ${exitCode}`}); stopping everything`);
        resolve(1);
      });
    }
    console.log('firebreak: running; press Ctrl-C to stop');
  });
  stopping = true;
  await Promise.all([...children.values()].map(stopChild));
  await running.stop();
  return code;
}
