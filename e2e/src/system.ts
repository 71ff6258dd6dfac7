/**
 * The whole of Firebreak for an end-to-end test: real nats-server and
 * redis-server child processes, authenticated as `firebreak up` runs them
 * (deploy/nats/nats.conf's users and permissions, a Redis password), the lab (in this process, so a test can read
 * its ordered event log and device state), the boot service, detector,
 * planner and executor each as its own process, and an observer on the bus.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startNatsServer, startRedisServer, type AuthenticatedNatsServer, type AuthenticatedRedisServer, type Bus, type NatsUser } from '@firebreak/shared';
import { freeUdpPort } from '@firebreak/shared/testing';
import { startLab, type Lab, type LabOptions } from '@firebreak/lab';
import { BusObserver } from './bus-observer.ts';
import { startServiceProcess, type ServiceName, type ServiceProcess } from './service-process.ts';

export interface SystemOptions {
  size?: LabOptions['size'];
  seed?: number;
  /** Executor processes sharing the command queue; default 1. */
  executors?: number;
  /** Planner processes: 2 runs a standby beside the leader, as a deployment does; default 1. */
  planners?: number;
  /** Extra environment for every service (detector windows, timeouts, OTEL_*). */
  env?: Record<string, string>;
  /** Watch every heartbeat (default): tests check where servers run; a benchmark reads the incident report instead. */
  observeHeartbeats?: boolean;
  /** Lab timings; default fast devices so a test waits on Firebreak, not on simulated BMCs. */
  lab?: Pick<LabOptions, 'powerDelayMs' | 'bootDelayMs' | 'heartbeatPeriodMs'>;
}

export interface RunningSystem {
  readonly lab: Lab;
  readonly bus: Bus;
  readonly observer: BusObserver;
  readonly natsUrl: string;
  /** With the password: for the test's own store clients; never print it. */
  readonly redisUrl: string;
  readonly bootUrl: string;
  /** By label: boot-service, detector, planner, executor-1 … */
  readonly services: Map<string, ServiceProcess>;
  /** A bus logged in as one of nats.conf's users (the system's own bus is the operator's). */
  connectAs(user: NatsUser, name?: string): Promise<Bus>;
  /** Starts (again) a service under a label, with the system's environment. */
  startService(service: ServiceName, label?: string): ServiceProcess;
  /** SIGKILLs redis-server, waits `downMs`, and starts it again on its port and data (its append-only file). */
  crashRedis(downMs: number): Promise<void>;
  /** SIGKILLs nats-server, waits `downMs`, and starts it again on its port and JetStream store. */
  crashNats(downMs: number): Promise<void>;
  /** Log lines of every service, for a failure message. */
  logs(lastLines?: number): string;
  stop(): Promise<void>;
}

/**
 * Detection and recovery windows short enough for a test, long enough for a
 * loaded two-core machine: heartbeats every 250 ms, a host failed after 4
 * missed, a dead BMC given 2 s before fabric fencing.
 */
export const fastSettings = {
  FB_HB_INTERVAL_MS: '250',
  FB_HB_MISSED: '4',
  FB_BMC_TIMEOUT_MS: '500',
  FB_BMC_FENCE_TIMEOUT_MS: '2000',
  FB_STEP_TIMEOUT_MS: '20000',
  FB_HEARTBEAT_TIMEOUT_MS: '30000',
  FB_RETRY_BASE_MS: '200',
  FB_PLANNER_LEASE_MS: '3000',
  LOG_LEVEL: 'info',
} as const;

export async function startSystem(options: SystemOptions = {}): Promise<RunningSystem> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    let nats: AuthenticatedNatsServer = await startNatsServer({ auth: true });
    stops.push(() => nats.stop());
    const crashNats = async (downMs: number): Promise<void> => {
      await nats.kill();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      nats = await nats.restart();
    };
    // The streams exist before any service starts, as deploy's streams job makes sure: only admin may create them.
    await nats.createStreams();
    let redis: AuthenticatedRedisServer = await startRedisServer({ auth: true });
    stops.push(() => redis.stop());
    const crashRedis = async (downMs: number): Promise<void> => {
      await redis.kill();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      redis = await redis.restart();
    };

    const bootDir = await mkdtemp(join(tmpdir(), 'fb-e2e-boot-'));
    stops.push(() => rm(bootDir, { recursive: true, force: true }));
    const lab = await startLab({
      natsUrl: nats.url,
      natsUser: 'host-agent',
      natsPassword: nats.passwords['host-agent'],
      size: options.size ?? 'tiny',
      seed: options.seed ?? 1,
      powerDelayMs: 50,
      bootDelayMs: 300,
      heartbeatPeriodMs: 250,
      ...options.lab,
    });
    // Ports chosen once the lab holds its hundreds: a port picked earlier could be handed to one of them.
    const bootListen = `127.0.0.1:${await freePort()}`;
    const bootUrl = `http://${bootListen}`;
    const trapPort = await freeUdpPort();
    lab.configure({ bootServiceUrl: bootUrl, trapReceivers: [`127.0.0.1:${trapPort}`] });
    stops.push(() => lab.stop());

    const bus = await nats.connectAs('operator', 'firebreak-e2e');
    stops.push(() => bus.close());
    const observeHeartbeats = options.observeHeartbeats ?? true;
    const observer = await BusObserver.start(bus, { heartbeats: observeHeartbeats });
    stops.push(() => observer.stop());

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NATS_URL: nats.url,
      REDIS_URL: redis.authUrl,
      FB_INVENTORY: lab.inventoryPath,
      FB_TRAP_PORT: String(trapPort),
      FB_BOOT_DIR: bootDir,
      FB_BOOT_LISTEN: bootListen,
      FB_BOOT_SERVICE_URL: bootUrl,
      ...fastSettings,
      ...options.env,
    };
    const services = new Map<string, ServiceProcess>();
    const startService = (service: ServiceName, label: string = service): ServiceProcess => {
      // Each service as its own NATS user, as `firebreak up` and deploy/ run them; the boot service uses no bus.
      const login = service === 'boot-service' ? {} : { NATS_USER: nats.credentialsFor(service).user, NATS_PASSWORD: nats.credentialsFor(service).password };
      const proc = startServiceProcess(service, label, { ...env, ...login, SERVICE_INSTANCE_ID: label });
      services.set(label, proc);
      return proc;
    };
    stops.push(async () => {
      await Promise.all([...services.values()].map((s) => s.stop()));
    });

    startService('boot-service');
    startService('detector');
    startService('planner');
    for (let i = 2; i <= (options.planners ?? 1); i++) startService('planner', `planner-${i}`);
    for (let i = 1; i <= (options.executors ?? 1); i++) startService('executor', `executor-${i}`);

    const logs = (lastLines = 40): string =>
      [...services.values()].map((s) => `--- ${s.name}\n${s.lines.slice(-lastLines).join('\n')}`).join('\n');

    // Ready: a planner leads, every executor consumes, the detector has seen the fleet.
    const ready = 60_000;
    const planners = [...services.entries()].filter(([k]) => k.startsWith('planner')).map(([, s]) => s);
    await Promise.all([
      Promise.any(planners.map((p) => p.waitForLog((l) => l.includes('planning for the site'), ready))),
      ...[...services.entries()].filter(([k]) => k.startsWith('executor')).map(([, s]) => s.waitForLog((l) => l.includes(`"msg":"ready"`), ready)),
      services.get('detector')?.waitForLog((l) => l.includes(`"msg":"ready"`), ready),
      ...(observeHeartbeats ? [observer.waitForHeartbeats(lab.inventory.hosts.filter((h) => h.role !== 'spare').length, ready)] : []),
    ]).catch((err: unknown) => {
      throw new Error(`the system did not come up: ${(err as Error).message}\n${logs()}`, { cause: err });
    });

    const connectAs = (user: NatsUser, name?: string): Promise<Bus> => nats.connectAs(user, name);
    return { lab, bus, observer, natsUrl: nats.url, redisUrl: redis.authUrl, bootUrl, connectAs, services, startService, crashRedis, crashNats, logs, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
