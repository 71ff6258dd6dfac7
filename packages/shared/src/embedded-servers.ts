/**
 * Runs nats-server (JetStream) and redis-server as child processes on
 * loopback. `firebreak up` uses this when no NATS_URL/REDIS_URL is given, and
 * the test harness uses it when no Docker engine is reachable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchScheduled } from './batch-scheduling.ts';

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
}

async function startProcess(spec: ProcessSpec, options: EmbeddedServerOptions, ownedDir?: string): Promise<EmbeddedServer> {
  const ownDir = ownedDir !== undefined || options.dataDir === undefined;
  const dir = ownedDir ?? options.dataDir ?? (await mkdtemp(join(tmpdir(), `fb-${spec.debianPackage}-`)));
  const port = options.port ?? (await freePort());
  const timeoutMs = options.readyTimeoutMs ?? 15_000;
  // Own process group: a terminal's Ctrl-C goes to our parent, which stops the
  // services first and the servers last, instead of to everything at once.
  const args = spec.args(port, dir);
  const launch = options.batchScheduling === true ? batchScheduled(spec.command, args) : { command: spec.command, args };
  const child = spawn(launch.command, launch.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...spec.env } });
  live.add(child);
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
  const restart = async (): Promise<EmbeddedServer> => {
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
  // Once ready, the server's chatter is not ours to buffer.
  child.stdout?.removeAllListeners('data').resume();
  child.stderr?.removeAllListeners('data').resume();
  return { url: `${spec.scheme}://127.0.0.1:${port}`, port, pid: child.pid, stop, kill, restart };
}

export function startNatsServer(options: EmbeddedServerOptions = {}): Promise<EmbeddedServer> {
  return startProcess(
    {
      command: process.env.FB_NATS_SERVER_BIN ?? 'nats-server',
      debianPackage: 'nats-server',
      args: (port, dir) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir],
      readyLine: /Server is ready/,
      scheme: 'nats',
      // The embedded server shares a small machine with every service and the lab. Go's scheduler on
      // several threads hands each message between them, about two extra context switches per message
      // that cost more than the parallelism gives here (services/executor/bench: nats-server CPU per
      // command 245 → 145 µs). A GOMAXPROCS of the caller's own wins; a production NATS is sized apart.
      env: { GOMAXPROCS: process.env.GOMAXPROCS ?? '1' },
    },
    options,
  );
}

export function startRedisServer(options: EmbeddedServerOptions = {}): Promise<EmbeddedServer> {
  return startProcess(
    {
      command: process.env.FB_REDIS_SERVER_BIN ?? 'redis-server',
      debianPackage: 'redis-server',
      // Append-only file in the data dir: leases, fencing counters, incident snapshots and the fleet ledger
      // survive a crash of redis-server. Each reply is sent after its write reached the file (the OS's
      // cache), so a killed server loses nothing it acknowledged; fsync once a second bounds a power loss.
      args: (port, dir) => ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'],
      readyLine: /Ready to accept connections/,
      scheme: 'redis',
    },
    options,
  );
}
