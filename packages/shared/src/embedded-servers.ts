/**
 * Runs nats-server (JetStream) and redis-server as child processes on
 * loopback. `firebreak up` uses this when no NATS_URL/REDIS_URL is given, and
 * the test harness uses it when no Docker engine is reachable. With `auth`,
 * NATS runs deploy/nats/nats.conf (its users and permissions) and Redis
 * requires a password, each generated per start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchScheduled } from './batch-scheduling.ts';
import { connectBus, ensureStreams, type Bus } from './bus/index.ts';
import { natsConfPath, passwordVariable, randomNatsPasswords, randomPassword, type NatsCredentials, type NatsUser } from './nats-users.ts';

export interface EmbeddedServer {
  readonly url: string;
  readonly port: number;
  /** The server's process id (benchmarks read its CPU time). */
  readonly pid: number | undefined;
  /** Stops the server and removes a temp data dir it made; safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILLs the server, as a crash would; its data dir stays for `restart`. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data dir (after `kill` or `stop`); `stop` on the result stops it. */
  restart(): Promise<EmbeddedServer>;
}

export interface EmbeddedServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Default: a fresh temp dir, removed on stop. A given dir is kept. */
  dataDir?: string;
  readyTimeoutMs?: number;
  /** Run under SCHED_BATCH (batch-scheduling.ts): for servers beside the services on one machine. Default false. */
  batchScheduling?: boolean;
}

/** `startNatsServer({ auth: true })`: deploy/nats/nats.conf with a generated password per user. */
export interface AuthenticatedNatsServer extends EmbeddedServer {
  /** Never print these; `credentialsFor` gives one user's. */
  readonly passwords: Readonly<Record<NatsUser, string>>;
  /** `{ user, password }`, as `connectBus` and NATS_USER / NATS_PASSWORD take them. */
  credentialsFor(user: NatsUser): NatsCredentials;
  connectAs(user: NatsUser, name?: string): Promise<Bus>;
  /** Creates Firebreak's streams as admin, as deploy's streams job does: the services' own users may only check them. */
  createStreams(): Promise<void>;
  /** The tail of what the server printed (its authorization and permissions violations among it). */
  output(): string;
  /** Same port, data dir and passwords. */
  restart(): Promise<AuthenticatedNatsServer>;
}

/** `startRedisServer({ auth: true })`: every client must send the generated password. */
export interface AuthenticatedRedisServer extends EmbeddedServer {
  /** Never print it, nor `authUrl`; `url` carries no password. */
  readonly password: string;
  /** `redis://:<password>@127.0.0.1:<port>`: what REDIS_URL must be. */
  readonly authUrl: string;
  /** Same port, data dir and password. */
  restart(): Promise<AuthenticatedRedisServer>;
}

interface Auth {
  auth: true;
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
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no free port'))));
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
  command: string;
  debianPackage: string;
  args: (port: number, dir: string) => string[];
  readyLine: RegExp;
  scheme: string;
  /** Variables the server gets on top of ours. */
  env?: Readonly<Record<string, string>>;
  /** Written to the server's stdin: configuration that must not show in its command line (`ps`). */
  stdin?: string;
  /** Keep the tail of the server's output after it is ready, for `output()`. */
  keepOutput?: boolean;
}

/** What the server printed, and what a restart must start again. */
interface ProcessServer extends EmbeddedServer {
  output(): string;
  restart(): Promise<ProcessServer>;
}

async function startProcess(spec: ProcessSpec, options: EmbeddedServerOptions, ownedDir?: string): Promise<ProcessServer> {
  const ownDir = ownedDir !== undefined || options.dataDir === undefined;
  const dir = ownedDir ?? options.dataDir ?? (await mkdtemp(join(tmpdir(), `fb-${spec.debianPackage}-`)));
  const port = options.port ?? (await freePort());
  const timeoutMs = options.readyTimeoutMs ?? 15_000;
  // Own process group: a terminal's Ctrl-C goes to our parent, which stops the
  // services first and the servers last, instead of to everything at once.
  const args = spec.args(port, dir);
  const launch = options.batchScheduling === true ? batchScheduled(spec.command, args) : { command: spec.command, args };
  const stdin = spec.stdin === undefined ? 'ignore' : 'pipe';
  const child = spawn(launch.command, launch.args, { stdio: [stdin, 'pipe', 'pipe'], detached: true, env: { ...process.env, ...spec.env } });
  live.add(child);
  // A server that exits at once closes its stdin under us: that error is the exit's to report.
  child.stdin?.on('error', () => {});
  child.stdin?.end(spec.stdin);
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      // Keep only the tail: enough for the ready line and a useful error.
      output = (output + chunk.toString()).slice(-8_192);
      if (spec.readyLine.test(output)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) =>
      reject(new Error(`cannot start ${spec.command}: ${err.message}; install it with: apt-get install ${spec.debianPackage}`)),
    );
    child.once('exit', (code) => reject(new Error(`${spec.command} exited with code ${code} before it was ready:\n${output}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${spec.command} not ready after ${timeoutMs} ms:\n${output}`)), timeoutMs);
  });
  let stopped = false;
  let restarted = false;
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
    }
    live.delete(child);
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await end('SIGTERM');
    // A restarted server's dir belongs to the restart now.
    if (ownDir && !restarted) await rm(dir, { recursive: true, force: true });
  };
  const kill = (): Promise<void> => end('SIGKILL');
  const restart = async (): Promise<ProcessServer> => {
    await end('SIGKILL');
    restarted = true;
    stopped = true;
    return startProcess(spec, { ...options, port }, ownDir ? dir : undefined);
  };
  try {
    await Promise.race([ready, timeout]);
    while (!(await portAccepts(port))) await new Promise((r) => setTimeout(r, 20));
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (spec.keepOutput === true) {
    // Refusals keep coming for as long as the server runs; the tail is enough to read them.
    const keep = (chunk: Buffer): void => void (output = (output + chunk.toString()).slice(-65_536));
    child.stdout?.removeAllListeners('data').on('data', keep);
    child.stderr?.removeAllListeners('data').on('data', keep);
  } else {
    // Once ready, the server's chatter is not ours to buffer.
    child.stdout?.removeAllListeners('data').resume();
    child.stderr?.removeAllListeners('data').resume();
  }
  return { url: `${spec.scheme}://127.0.0.1:${port}`, port, pid: child.pid, stop, kill, restart, output: () => output };
}

/** Without a config file: anyone may do anything, as in most tests. */
const natsArgs = (port: number, dir: string): string[] => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir];

function natsSpec(args: ProcessSpec['args'], env: Readonly<Record<string, string>> = {}, keepOutput = false): ProcessSpec {
  return {
    command: process.env.FB_NATS_SERVER_BIN ?? 'nats-server',
    debianPackage: 'nats-server',
    args,
    readyLine: /Server is ready/,
    scheme: 'nats',
    // The embedded server shares a small machine with every service and the lab. Go's scheduler on
    // several threads hands each message between them, about two extra context switches per message
    // that cost more than the parallelism gives here (services/executor/bench: nats-server CPU per
    // command 245 → 145 µs). A GOMAXPROCS of the caller's own wins; a production NATS is sized apart.
    env: { GOMAXPROCS: process.env.GOMAXPROCS ?? '1', ...env },
    keepOutput,
  };
}

export function startNatsServer(options: EmbeddedServerOptions & Auth): Promise<AuthenticatedNatsServer>;
export function startNatsServer(options?: EmbeddedServerOptions & { auth?: false }): Promise<EmbeddedServer>;
export async function startNatsServer(options: EmbeddedServerOptions & { auth?: boolean } = {}): Promise<EmbeddedServer> {
  if (options.auth !== true) return startProcess(natsSpec(natsArgs), options);
  try {
    await access(natsConfPath);
  } catch {
    throw new Error(`cannot start an authenticated nats-server: ${natsConfPath} is missing (it ships in the repository's deploy/nats)`);
  }
  const passwords = randomNatsPasswords();
  // The passwords reach the server as deploy/ gives them, in its environment: a command line shows in `ps`.
  const env = Object.fromEntries(Object.entries(passwords).map(([user, password]) => [passwordVariable(user as NatsUser), password]));
  // -p and -sd override the config's port and give JetStream its store, as deploy/ runs the same file.
  const spec = natsSpec((port, dir) => ['-c', natsConfPath, ...natsArgs(port, dir)], env, true);
  return authenticatedNats(await startProcess(spec, options), passwords);
}

function authenticatedNats(server: ProcessServer, passwords: Readonly<Record<NatsUser, string>>): AuthenticatedNatsServer {
  const credentialsFor = (user: NatsUser): NatsCredentials => ({ user, password: passwords[user] });
  const connectAs = (user: NatsUser, name = `firebreak-${user}`): Promise<Bus> => connectBus({ url: server.url, name, ...credentialsFor(user) });
  return {
    ...server,
    passwords,
    credentialsFor,
    connectAs,
    createStreams: async () => {
      const admin = await connectAs('admin', 'firebreak-streams');
      try {
        await ensureStreams(admin.jsm);
      } finally {
        await admin.close();
      }
    },
    restart: async () => authenticatedNats(await server.restart(), passwords),
  };
}

function redisSpec(password: string | undefined): ProcessSpec {
  return {
    command: process.env.FB_REDIS_SERVER_BIN ?? 'redis-server',
    debianPackage: 'redis-server',
    // Append-only file in the data dir: leases, fencing counters, incident snapshots and the fleet ledger
    // survive a crash of redis-server. Each reply is sent after its write reached the file (the OS's
    // cache), so a killed server loses nothing it acknowledged; fsync once a second bounds a power loss.
    // With a password, the configuration comes on stdin ("-") so the password never shows in `ps`.
    args: (port, dir) => [
      ...(password === undefined ? [] : ['-']),
      ...['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'],
    ],
    readyLine: /Ready to accept connections/,
    scheme: 'redis',
    ...(password !== undefined && { stdin: `requirepass ${password}\n` }),
  };
}

export function startRedisServer(options: EmbeddedServerOptions & Auth): Promise<AuthenticatedRedisServer>;
export function startRedisServer(options?: EmbeddedServerOptions & { auth?: false }): Promise<EmbeddedServer>;
export async function startRedisServer(options: EmbeddedServerOptions & { auth?: boolean } = {}): Promise<EmbeddedServer> {
  if (options.auth !== true) return startProcess(redisSpec(undefined), options);
  const password = randomPassword();
  return authenticatedRedis(await startProcess(redisSpec(password), options), password);
}

function authenticatedRedis(server: ProcessServer, password: string): AuthenticatedRedisServer {
  return {
    ...server,
    password,
    authUrl: `redis://:${password}@127.0.0.1:${server.port}`,
    restart: async () => authenticatedRedis(await server.restart(), password),
  };
}
