/**
 * `firebreak up`: the whole system on one machine against the simulated data
 * center. NATS and Redis (embedded unless URLs are given), the lab, then each
 * service as its own process, with a live view of hosts and incidents;
 * everything stops in reverse order on Ctrl-C, when a service dies, or when
 * the demo is over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { batchScheduled, connectBus, freePort, freeUdpPort, type Bus, type NatsUser } from '@firebreak/shared';
import { executorNodeFlags } from '@firebreak/executor/node-flags';
import { runDemo, type DemoOutcome } from './demo.ts';
import { labSizes, printCredentials, printLab, startLabWithInfrastructure, type LabCommandOptions } from './lab.ts';
import { stateDir } from './lab-state.ts';
import { LiveView } from './live-view.ts';

export const upUsage = `  up   [--demo] [--logs] [--size ${labSizes.join('|')}] [--seed N] [--nats-url URL] [--redis-url URL]
      the detector, planner and executor against the simulated data center,
      with a live view of hosts and incidents (service logs go to a file; --logs
      prints them instead); starts nats-server and redis-server as child
      processes unless URLs are given (or NATS_URL / REDIS_URL are set), with
      deploy/nats/nats.conf's users (each service its own) and a Redis
      password, generated into .firebreak/credentials.json (mode 600).
      --demo burns a rack once everything runs, shows the recovery, prints the
      incident report and exits 0 if every server came back, 1 if not`;

/** Each service and the NATS user it runs as (nats.conf); the boot service serves files and uses neither NATS nor Redis. */
const services = [
  ['boot-service', undefined],
  ['detector', 'detector'],
  ['planner', 'planner'],
  ['executor', 'executor'],
] as const satisfies readonly (readonly [string, NatsUser | undefined])[];

export interface UpOptions extends LabCommandOptions {
  /** Burn a rack once everything runs, follow the recovery, report, and exit. */
  demo?: boolean;
  /** Print the service logs instead of drawing the panel. */
  logs?: boolean;
}

// Resolved from here, not from the working directory: `firebreak up` runs from anywhere.
const tsxLoader = import.meta.resolve('tsx');

function startService(name: string, env: NodeJS.ProcessEnv, view: LiveView): ChildProcess {
  const entry = fileURLToPath(import.meta.resolve(`@firebreak/${name}/main`));
  // Own process group, so Ctrl-C reaches only `up`, which stops services before the servers they need.
  // SCHED_BATCH: the services share this machine with NATS, Redis and the lab (batch-scheduling.ts).
  const flags = name === 'executor' ? executorNodeFlags : [];
  const launch = batchScheduled(process.execPath, [...flags, '--import', tsxLoader, entry], env);
  const child = spawn(launch.command, launch.args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  view.serviceStarting(name);
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => view.serviceLog(name, line));
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

export async function up(options: UpOptions): Promise<number> {
  const running = await startLabWithInfrastructure(options);
  // Chosen once the lab holds its ports (hundreds in a big lab), so none is handed out twice.
  // The lab's switches send their link traps to the detector.
  const trapPort = await freeUdpPort();
  // Recovered hosts PXE-boot from the boot service the executor configures.
  const bootListen = `127.0.0.1:${await freePort()}`;
  const bootUrl = `http://${bootListen}`;
  running.lab.configure({ bootServiceUrl: options.bootServiceUrl ?? bootUrl, trapReceivers: [...(options.trapReceivers ?? []), `127.0.0.1:${trapPort}`] });
  printLab(running.lab);
  printCredentials(running.infra);
  const d = running.lab.describe();

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NATS_URL: running.infra.natsUrl,
    REDIS_URL: running.infra.redisClientUrl,
    FB_INVENTORY: d.inventoryPath,
    FB_TRAP_PORT: String(trapPort),
    FB_BOOT_DIR: await mkdtemp(join(tmpdir(), 'firebreak-boot-')),
    FB_BOOT_LISTEN: bootListen,
    FB_BOOT_SERVICE_URL: bootUrl,
  };
  /** What a service gets: its own NATS login, or no connection details at all when it needs none. */
  const serviceEnv = (user: NatsUser | undefined): NodeJS.ProcessEnv => {
    if (user === undefined) return { ...env, NATS_URL: '', NATS_USER: '', NATS_PASSWORD: '', REDIS_URL: '' };
    const identity = running.infra.natsIdentity(user);
    return { ...env, NATS_USER: identity.user ?? '', NATS_PASSWORD: identity.password ?? '' };
  };

  const dir = stateDir();
  await mkdir(dir, { recursive: true });
  const logFile = join(dir, 'up.log');
  const panel = Boolean(process.stdout.isTTY) && !options.logs;
  console.log(`firebreak: service logs in ${logFile}${options.logs ? ' (and below)' : ''}`);
  const view = new LiveView({ inventory: running.lab.inventory, mode: panel ? 'panel' : 'lines', printLogs: Boolean(options.logs), logFile });
  let bus: Bus | undefined;
  const children = new Map<string, ChildProcess>();
  const killAll = (): void => {
    for (const child of children.values()) child.kill('SIGKILL');
  };
  process.once('exit', killAll);

  let stopping = false;
  const stop = new AbortController();
  let code: number;
  let demo: Promise<DemoOutcome> | undefined;
  try {
    // The live view only watches, as people do: operator.
    bus = await connectBus({ url: running.infra.natsUrl, name: 'firebreak-up', ...running.infra.natsIdentity('operator') });
    await view.start(bus);
    for (const [name, user] of services) children.set(name, startService(name, serviceEnv(user), view));

    code = await new Promise<number>((resolve) => {
      const onSignal = (): void => resolve(options.demo ? 1 : 0);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      for (const [name, child] of children) {
        child.once('exit', (exitCode, signal) => {
          if (stopping) return;
          view.serviceExited(name, signal ?? `code ${exitCode}`);
          if (view.mode === 'panel') view.note('stopping everything');
          else console.error(`firebreak: ${name} exited (${signal ?? `code ${exitCode}`}); stopping everything`);
          resolve(1);
        });
      }
      if (options.demo) {
        demo = runDemo({ inventory: running.lab.inventory, view, burnRack: (rack) => running.lab.faults.burnRack(rack), signal: stop.signal });
        void demo.then((outcome) => resolve(outcome.code));
      } else if (view.mode === 'lines') {
        console.log('firebreak: running; press Ctrl-C to stop (firebreak status and firebreak burn rack r2 work from another terminal)');
      }
    });
  } finally {
    stopping = true;
    stop.abort();
    const outcome = await demo;
    if (outcome && view.mode === 'lines') console.log(outcome.summary.join('\n'));
    if (children.size > 0) view.note('stopping the services, the lab, NATS and Redis');
    await Promise.all([...children.values()].map(stopChild));
    await view.stop();
    if (view.mode === 'panel') {
      // The panel lived on the alternate screen: leave what happened on the normal one.
      for (const p of view.allIncidents()) console.log(`incident ${p.incidentId}: ${p.phase}${p.message ? ` (${p.message})` : ''}`);
      if (outcome) console.log(outcome.summary.join('\n'));
    }
    await bus?.close().catch(() => {});
    await running.stop();
    process.off('exit', killAll);
  }
  return code;
}
