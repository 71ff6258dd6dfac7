/**
 * The real services, started as the Dockerfile starts them, each under its
 * own user of deploy/nats/nats.conf: they come up, a host that stops
 * heartbeating goes detector → planner → executor, nobody hits a permission
 * the config does not grant, and no password reaches a log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, startRedisServer, subjects, type AuthenticatedNatsServer, type EmbeddedServer, type NatsUser } from '@firebreak/shared';
import { freeUdpPort, sampleHeartbeat, sampleInventory, waitFor } from '@firebreak/shared/testing';

const root = fileURLToPath(new URL('../..', import.meta.url));
const READY_MS = 90_000;
const FLOW_MS = 90_000;

interface Proc {
  readonly name: string;
  readonly lines: string[];
  /** The exit code once it exited by itself or was stopped. */
  readonly exit: Promise<number | null>;
  waitForLine(match: RegExp, timeoutMs: number): Promise<void>;
  stop(): Promise<number | null>;
}

/** `node --import tsx <entry>`, the Dockerfile's command, with only the environment given (no inherited NATS_*, OTEL_*). */
function startProcess(name: string, entry: string, env: Record<string, string>): Proc {
  const base = Object.fromEntries(['PATH', 'HOME', 'TMPDIR'].flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k] as string]])));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(root, entry)], { cwd: root, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', (line) => lines.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    name,
    lines,
    exit: exited,
    waitForLine: (match, timeoutMs) =>
      waitFor(`${name} to log ${match}`, () => {
        if (!running() && !lines.some((l) => match.test(l))) throw new Error(`${name} exited (${child.exitCode}) before logging ${match}:\n${lines.slice(-20).join('\n')}`);
        return lines.some((l) => match.test(l));
      }, timeoutMs).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n--- ${name}\n${lines.slice(-20).join('\n')}`, { cause: err });
      }),
    stop: async () => {
      if (running()) {
        child.kill('SIGTERM');
        setTimeout(() => running() && child.kill('SIGKILL'), 30_000).unref();
      }
      return exited;
    },
  };
}

let nats: AuthenticatedNatsServer;
let redis: EmbeddedServer;
let dir: string;
const procs: Proc[] = [];
let agent: NatsConnection | undefined;
let operator: NatsConnection | undefined;

before(async () => {
  [nats, redis] = await Promise.all([startNatsServer({ auth: true, readyTimeoutMs: 30_000 }), startRedisServer()]);
  dir = await mkdtemp(join(tmpdir(), 'fb-deploy-services-'));
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await agent?.close();
  await operator?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function natsEnv(user: NatsUser): Record<string, string> {
  return { NATS_URL: nats.url, NATS_USER: user, NATS_PASSWORD: nats.passwords[user], LOG_LEVEL: 'info' };
}

test('deploy nats - the services run under their own users: a silent host goes detector → planner → executor', async () => {
  const inventoryPath = join(dir, 'inventory.json');
  await writeFile(inventoryPath, JSON.stringify(sampleInventory()));

  const job = startProcess('ensure-streams', 'deploy/bin/ensure-streams.ts', natsEnv('admin'));
  procs.push(job);
  assert.equal(await job.exit, 0, job.lines.join('\n'));

  // The switches' SNMP communities, by the inventory's env: references; the BMC credentials file is missing on purpose.
  const common = { REDIS_URL: redis.url, FB_INVENTORY: inventoryPath, FB_SITE: 'site1', TOR_R1_COMMUNITY: '{"community":"public"}', TOR_R2_COMMUNITY: '{"community":"public"}' };
  const detector = startProcess('detector', 'services/detector/src/main.ts', {
    ...natsEnv('detector'),
    ...common,
    SERVICE_INSTANCE_ID: 'detector-1',
    FB_TRAP_PORT: String(await freeUdpPort()),
    FB_HB_INTERVAL_MS: '250',
    FB_HB_MISSED: '4',
    FB_BMC_TIMEOUT_MS: '500',
    FB_BMC_POLL_INTERVAL_MS: '0',
  });
  const planner = startProcess('planner', 'services/planner/src/main.ts', {
    ...natsEnv('planner'),
    ...common,
    SERVICE_INSTANCE_ID: 'planner-1',
    FB_PLANNER_LEASE_MS: '3000',
    FB_BMC_FENCE_TIMEOUT_MS: '2000',
    // Also how long an executor may take to stop: it finishes the command in hand (deploy/README.md, termination grace).
    FB_STEP_TIMEOUT_MS: '5000',
    FB_RETRY_BASE_MS: '200',
  });
  const executor = startProcess('executor', 'services/executor/src/main.ts', {
    ...natsEnv('executor'),
    ...common,
    SERVICE_INSTANCE_ID: 'executor-1',
    FB_DEVICE_TIMEOUT_MS: '500',
  });
  procs.push(detector, planner, executor);
  await Promise.all([
    detector.waitForLine(/"msg":"ready"/, READY_MS),
    executor.waitForLine(/"msg":"ready"/, READY_MS),
    planner.waitForLine(/planning for the site/, READY_MS),
  ]);

  operator = await connect({ servers: nats.url, user: 'operator', pass: nats.passwords.operator, inboxPrefix: '_INBOX.operator' });
  const seen: string[] = [];
  operator.subscribe('fb.>', { callback: (_err, msg) => void seen.push(msg.subject) });
  await operator.flush();

  // r2-h1 heartbeats as its host agent would, then goes silent; its BMC cannot be reached.
  agent = await connect({ servers: nats.url, user: 'host-agent', pass: nats.passwords['host-agent'] });
  const beat = sampleHeartbeat();
  const beatSubject = subjects.heartbeat(beat.site, beat.rack, beat.host);
  for (let seq = 1; seq <= 6; seq++) {
    agent.publish(beatSubject, new TextEncoder().encode(JSON.stringify({ ...beat, seq, sentAt: Date.now() })));
    await new Promise((r) => setTimeout(r, 250));
  }
  await agent.flush();

  const reached = (prefix: string) => () => seen.some((s) => s.startsWith(prefix));
  const logs = (): string => [detector, planner, executor].map((p) => `--- ${p.name}\n${p.lines.slice(-15).join('\n')}`).join('\n');
  try {
    await waitFor('the detector\'s verdict', reached(subjects.hostEvent('failed')), FLOW_MS);
    await waitFor('the planner\'s incident progress', reached('fb.incident.'), FLOW_MS);
    await waitFor('a command from the planner', reached('fb.cmd.'), FLOW_MS);
    await waitFor('a result from the executor', reached('fb.res.'), FLOW_MS);
  } catch (err) {
    throw new Error(`${(err as Error).message}; seen: ${[...new Set(seen)].join(', ')}\n${logs()}`, { cause: err });
  }

  for (const proc of [detector, planner, executor]) assert.equal(await proc.stop(), 0, `${proc.name} did not stop cleanly:\n${proc.lines.slice(-10).join('\n')}`);
  for (const proc of [job, detector, planner, executor]) {
    const text = proc.lines.join('\n');
    const serverSaid = nats.output().split('\n').filter((l) => /violation/i.test(l)).join('\n');
    assert.doesNotMatch(text, /permissions?[ _]violation/i, `${proc.name} hit a permission nats.conf does not grant; the server says:\n${serverSaid}`);
    for (const [user, password] of Object.entries(nats.passwords)) assert.equal(text.includes(password), false, `${proc.name} logged the ${user} password`);
  }
});
