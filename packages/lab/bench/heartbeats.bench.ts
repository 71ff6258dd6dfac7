/**
 * 10,000 simulated hosts heartbeating at 1 Hz from one process: how many
 * heartbeats go out and arrive per second, what share of one core that
 * costs, and how late sends are against the timer wheel's schedule.
 *
 *   npx tsx packages/lab/bench/heartbeats.bench.ts [--hosts 10000] [--seconds 20] [--warmup 3] [--runs 3]
 *
 * A separate process counts what arrives on `fb.hb.>`, so the receiving side
 * does not show up in the simulator's CPU share.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connectBus, Inventory, subjects, type InventoryInput } from '@firebreak/shared';
import { startNats } from '@firebreak/shared/testing';
import { startHostSimulator } from '../src/hosts/host-simulator.ts';
import { LabRecorder } from '../src/recorder.ts';
import { World } from '../src/world.ts';

const HOSTS_PER_RACK = 40;
const RACKS_PER_SITE = 125;

interface RunResult {
  sentPerSec: number;
  receivedPerSec: number;
  cpuPercent: number;
  jitterP50Ms: number;
  jitterP99Ms: number;
  jitterMaxMs: number;
}

type CounterRequest = { type: 'count' } | { type: 'stop' };
type CounterReply = { type: 'ready' } | { type: 'count'; received: number };

/** Child-process mode: count every heartbeat that arrives and answer the parent's `count` requests. */
async function countHeartbeats(url: string): Promise<void> {
  const bus = await connectBus({ url, name: 'bench-heartbeat-counter' });
  let received = 0;
  // Counting only: the raw connection skips per-message validation.
  bus.nc.subscribe(subjects.heartbeatAll, { callback: () => void received++ });
  await bus.nc.flush();
  const reply = (msg: CounterReply) => process.send?.(msg);
  process.on('message', (msg: CounterRequest) => {
    if (msg.type === 'count') reply({ type: 'count', received });
    else void bus.close().then(() => process.exit(0));
  });
  reply({ type: 'ready' });
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Production hosts, each running its own server, 40 to a rack, with a switch per rack. */
function benchInventory(hostCount: number): Inventory {
  const racks = Math.ceil(hostCount / HOSTS_PER_RACK);
  const rackIds = Array.from({ length: racks }, (_, r) => `r${r + 1}`);
  const siteOf = (r: number) => `dc${Math.floor(r / RACKS_PER_SITE) + 1}`;
  const vlans = Array.from({ length: 10 }, (_, i) => ({ id: 100 + i, name: `app${i}`, fabric: 'net-a' }));
  const draft: InventoryInput = {
    version: 1,
    racks: rackIds.map((id, r) => ({ id, site: siteOf(r) })),
    switches: rackIds.map((id, r) => ({ id: `tor-${id}`, fabric: 'net-a', address: `127.0.0.1:${20_000 + r}`, credentialsRef: 'env:LAB_SWITCH' })),
    vlans,
    images: [{ id: 'rhel9', arch: 'x86_64', url: 'http://127.0.0.1:1/rhel9.ipxe' }],
    hosts: Array.from({ length: hostCount }, (_, i) => {
      const r = Math.floor(i / HOSTS_PER_RACK);
      return {
        id: `h${String(i + 1).padStart(5, '0')}`,
        site: siteOf(r),
        rack: rackIds[r] ?? 'r1',
        arch: 'x86_64' as const,
        cpus: 16,
        memoryGiB: 64,
        nics: [{ mac: `52:54:00:${hex(i >> 16)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`, switch: `tor-${rackIds[r]}`, port: (i % HOSTS_PER_RACK) + 1 }],
        bmc: { address: `127.0.0.1:${30_000 + r}`, credentialsRef: 'env:LAB_BMC' },
        role: 'production' as const,
      };
    }),
    servers: Array.from({ length: hostCount }, (_, i) => ({
      id: `srv${String(i + 1).padStart(5, '0')}`,
      image: 'rhel9',
      vlans: [100 + (i % 10)],
      cpus: 8,
      memoryGiB: 32,
      arch: 'x86_64' as const,
      priority: i % 4,
    })),
    assignments: Array.from({ length: hostCount }, (_, i) => ({
      server: `srv${String(i + 1).padStart(5, '0')}`,
      mode: 'bare-metal' as const,
      host: `h${String(i + 1).padStart(5, '0')}`,
    })),
  };
  return Inventory.parse(draft);
}

class Counter {
  private constructor(private readonly child: ChildProcess) {}

  static async start(url: string): Promise<Counter> {
    const child = fork(process.argv[1] ?? '', ['--count-heartbeats', url], { stdio: 'inherit' });
    const counter = new Counter(child);
    await counter.next('ready');
    return counter;
  }

  async count(): Promise<number> {
    const answer = this.next('count');
    this.child.send({ type: 'count' } satisfies CounterRequest);
    const reply = await answer;
    return reply.type === 'count' ? reply.received : 0;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    const exited = once(this.child, 'exit');
    this.child.send({ type: 'stop' } satisfies CounterRequest);
    await Promise.race([exited, sleep(2_000).then(() => this.child.kill())]);
  }

  private next(type: CounterReply['type']): Promise<CounterReply> {
    return new Promise((resolve, reject) => {
      const onMessage = (msg: CounterReply) => {
        if (msg.type !== type) return;
        this.child.off('exit', onExit);
        this.child.off('message', onMessage);
        resolve(msg);
      };
      const onExit = (code: number | null) => reject(new Error(`heartbeat counter exited (${code}) before answering "${type}"`));
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

async function bench(options: { hosts: number; seconds: number; warmup: number; runs: number }): Promise<void> {
  const inventory = benchInventory(options.hosts);
  const nats = await startNats();
  const counter = await Counter.start(nats.url).catch(async (err: unknown) => {
    await nats.stop();
    throw err;
  });
  const bus = await connectBus({ url: nats.url, name: 'bench-heartbeats' });
  const results: RunResult[] = [];
  try {
    for (let run = 1; run <= options.runs; run++) {
      const world = new World(inventory, new LabRecorder());
      const hosts = startHostSimulator(world, { bus, periodMs: 1_000 });
      try {
        await sleep(options.warmup * 1_000);
        hosts.resetStats();
        const received0 = await counter.count();
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await sleep(options.seconds * 1_000);
        const cpu = process.cpuUsage(cpu0);
        const wallMs = performance.now() - t0;
        const stats = hosts.stats();
        const received = (await counter.count()) - received0;
        const result: RunResult = {
          sentPerSec: stats.sent / (wallMs / 1_000),
          receivedPerSec: received / (wallMs / 1_000),
          cpuPercent: ((cpu.user + cpu.system) / 1_000 / wallMs) * 100,
          jitterP50Ms: stats.lateness.p50Ms,
          jitterP99Ms: stats.lateness.p99Ms,
          jitterMaxMs: stats.lateness.maxMs,
        };
        results.push(result);
        console.error(`run ${run}/${options.runs}: ${result.sentPerSec.toFixed(0)} sent/s, ${result.cpuPercent.toFixed(1)}% CPU`);
      } finally {
        hosts.stop();
      }
    }
  } finally {
    await bus.close();
    await counter.stop();
    await nats.stop();
  }

  const summary: RunResult = {
    sentPerSec: median(results.map((r) => r.sentPerSec)),
    receivedPerSec: median(results.map((r) => r.receivedPerSec)),
    cpuPercent: median(results.map((r) => r.cpuPercent)),
    jitterP50Ms: median(results.map((r) => r.jitterP50Ms)),
    jitterP99Ms: median(results.map((r) => r.jitterP99Ms)),
    jitterMaxMs: median(results.map((r) => r.jitterMaxMs)),
  };
  const row = (label: string, r: RunResult) =>
    [
      label.padEnd(8),
      r.sentPerSec.toFixed(0).padStart(9),
      r.receivedPerSec.toFixed(0).padStart(11),
      r.cpuPercent.toFixed(1).padStart(9),
      r.jitterP50Ms.toFixed(2).padStart(10),
      r.jitterP99Ms.toFixed(2).padStart(10),
      r.jitterMaxMs.toFixed(2).padStart(10),
    ].join(' ');
  console.log(`heartbeats: ${options.hosts} hosts at 1 Hz, ${options.seconds} s per run after ${options.warmup} s warm-up, node ${process.version}`);
  console.log(['run'.padEnd(8), 'sent/s'.padStart(9), 'received/s'.padStart(11), 'CPU %'.padStart(9), 'p50 ms'.padStart(10), 'p99 ms'.padStart(10), 'max ms'.padStart(10)].join(' '));
  results.forEach((r, i) => console.log(row(String(i + 1), r)));
  if (results.length > 1) console.log(row('median', summary));
  const round = (n: number) => Math.round(n * 100) / 100;
  console.log(
    JSON.stringify({
      bench: 'heartbeats',
      hosts: options.hosts,
      periodMs: 1_000,
      seconds: options.seconds,
      runs: results.length,
      ...Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, round(v)])),
      perRun: results.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)]))),
    }),
  );
}

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    'count-heartbeats': { type: 'string' },
  },
});

const positive = (name: string, raw: string): number => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"`);
  return n;
};

if (values['count-heartbeats'] !== undefined) {
  await countHeartbeats(values['count-heartbeats']);
} else {
  await bench({
    hosts: Math.round(positive('hosts', values.hosts)),
    seconds: positive('seconds', values.seconds),
    warmup: positive('warmup', values.warmup),
    runs: Math.round(positive('runs', values.runs)),
  });
}
