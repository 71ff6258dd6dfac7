/**
 * The executor's throughput and added latency against the issue's target
 * (≥ 2,000 commands/s on this machine):
 *   - a lab with zero-latency BMCs runs in a child process (its own core),
 *     nats-server and redis-server as child processes;
 *   - all of them on this one machine as `firebreak up` runs them: under
 *     SCHED_BATCH (packages/shared/src/batch-scheduling.ts), which the
 *     output confirms per process; FB_SCHED_BATCH=0 measures the default
 *     policy;
 *   - the executors run as the real service processes (src/main.ts: durable
 *     pull consumers, fencing check, idempotency records, per-device limits,
 *     results on JetStream), two by default: the smallest deployment that
 *     survives losing one, and one process is a single thread that would
 *     leave the second core to the others; `--executors 1` measures one;
 *   - this process floods them with power commands and collects the
 *     results, spending as little CPU as it can (it shares the two cores);
 *   - throughput = commands / (first publish → last result);
 *   - latency under that flood (published → result received), p50/p99;
 *   - added latency per command, unloaded: one command at a time, end to end,
 *     minus the median of the same device call made directly through the
 *     driver — what the bus, the fencing check, the idempotency records and
 *     the result cost on top of talking to the device.
 * Each run uses fresh command ids; the figures are medians over the runs.
 *
 *   npm run bench -w @firebreak/executor -- [--runs 5] [--commands 6000] [--size row] [--executors 2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  batchScheduled,
  connectBus,
  createStore,
  isBatchScheduled,
  plannerLeaseKey,
  ensureStreams,
  loadInventoryFile,
  startNatsServer,
  startRedisServer,
  headers,
  subjects,
  topics,
  type CommandResult,
  type PowerCommand,
} from '@firebreak/shared';
import { headers as natsHeaders } from 'nats';
import { startLab } from '@firebreak/lab';
import { executorNodeFlags, InventoryCommandDrivers } from '../src/index.ts';

const TARGET_PER_SECOND = 2_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const self = fileURLToPath(import.meta.url);

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    commands: { type: 'string', default: '6000' },
    size: { type: 'string', default: 'row' },
    executors: { type: 'string', default: '2' },
    'lab-child': { type: 'string' },
  },
});

if (values['lab-child'] !== undefined) {
  // Child mode: the lab alone, announcing its inventory on stdout.
  const lab = await startLab({ natsUrl: values['lab-child'], size: values.size as 'row', powerDelayMs: 0, heartbeatPeriodMs: 60_000 });
  process.stdout.write(`${JSON.stringify({ inventoryPath: lab.describe().inventoryPath })}\n`);
  process.on('SIGTERM', () => void lab.stop().then(() => process.exit(0)));
} else {
  await main();
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))] as number;
}

function median(values: number[]): number {
  return percentile(values, 0.5);
}

/** CPU time (user + system) a process has used so far, in ms, from /proc; 0 where /proc is missing. */
function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15, in clock ticks (100 Hz).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** Context switches (voluntary + involuntary) a process's threads have made so far, from /proc; 0 where /proc is missing. */
function switchesOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return readdirSync(`/proc/${pid}/task`).reduce((sum, task) => {
      const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      return sum + [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    }, 0);
  } catch {
    return 0;
  }
}

async function startLabChild(natsUrl: string): Promise<{ child: ChildProcess; inventoryPath: string }> {
  // FB_BENCH_LAB_ARGS: extra node flags for the lab, e.g. --cpu-prof.
  const labArgs = process.env.FB_BENCH_LAB_ARGS?.split(' ').filter(Boolean) ?? [];
  const lab = batchScheduled(process.execPath, [...process.execArgv, ...labArgs, self, '--lab-child', natsUrl, '--size', values.size]);
  const child = spawn(lab.command, lab.args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const inventoryPath = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { inventoryPath: string }).inventoryPath);
    });
    child.once('exit', (code) => reject(new Error(`the lab child exited with ${code}`)));
  });
  return { child, inventoryPath };
}

async function main(): Promise<void> {
  const [runs, count, executorCount] = (['runs', 'commands', 'executors'] as const).map((name) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 1) {
      console.error(`--${name} must be a whole number ≥ 1, got "${values[name]}"`);
      process.exit(2);
    }
    return n;
  }) as [number, number, number];
  // One machine, as under `firebreak up`: the servers, the lab and the executors under SCHED_BATCH unless FB_SCHED_BATCH=0.
  const [nats, redis] = await Promise.all([startNatsServer({ batchScheduling: true }), startRedisServer({ batchScheduling: true })]);
  const { child, inventoryPath } = await startLabChild(nats.url);
  const inventory = await loadInventoryFile(inventoryPath);
  const bus = await connectBus({ url: nats.url, name: 'executor-bench' });
  await ensureStreams(bus.jsm);
  // FB_BENCH_EXECUTOR_ARGS: extra node flags for the executors, e.g. --cpu-prof to profile them.
  const executor = batchScheduled(process.execPath, [...process.execArgv, ...executorNodeFlags, ...(process.env.FB_BENCH_EXECUTOR_ARGS?.split(' ').filter(Boolean) ?? []), fileURLToPath(new URL('../src/main.ts', import.meta.url))]);
  const executors = Array.from({ length: executorCount }, (_, i) =>
    spawn(executor.command, executor.args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, NATS_URL: nats.url, REDIS_URL: redis.url, FB_INVENTORY: inventoryPath, LOG_LEVEL: 'warn', SERVICE_INSTANCE_ID: `bench-${i + 1}` },
    }),
  );

  const hosts = inventory.hosts.map((h) => h.id);
  const published = new Map<string, number>();
  const seen: number[] = [];
  let failed = 0;
  let onResult: (() => void) | undefined;
  const results = await bus.nc.subscribe(subjects.resultsAll, {
    callback: (_err, msg) => {
      // The bus validated it on the way out; the load generator only reads two fields, so it spends no CPU the executor needs.
      const result = JSON.parse(decoder.decode(msg.data)) as Pick<CommandResult, 'commandId' | 'outcome'>;
      const sentAt = published.get(result.commandId);
      if (sentAt === undefined) return;
      const now = performance.timeOrigin + performance.now();
      if (result.outcome !== 'succeeded') failed++;
      seen.push(now - sentAt);
      onResult?.();
    },
  });

  console.log(`executor bench: ${count} power status commands over ${hosts.length} hosts (${values.size}), ${executorCount} executor process(es), ${runs} runs, zero-latency BMCs`);
  const site = inventory.hosts[0]?.site ?? 'site1';
  // The load generator stands in for the site's planner, so it holds the lease executors obey.
  const store = createStore(redis.url);
  const lease = await store.leaderLeases.acquire(plannerLeaseKey(site), 'bench-planner', 3_600_000);
  await store.close();
  if (!lease.acquired) throw new Error('the bench could not take the planner lease');
  const command = (run: number, i: number): PowerCommand => {
    const now = Date.now();
    return {
      kind: 'power',
      action: 'status',
      host: hosts[i % hosts.length] as string,
      commandId: `bench-${randomUUID()}`,
      incidentId: `bench-${run}`,
      site,
      fencingToken: lease.token,
      issuer: 'bench-planner',
      issuedAt: now,
      deadline: now + 120_000,
      attempt: 1,
      drill: false,
    };
  };
  // The load generator stands in for the planner and should take as little of the shared CPU as it can: commands are valid by
  // construction (checked once here) and go out as bytes on core NATS, still stored by FB_CMDS and deduplicated by their
  // Nats-Msg-Id, without the bus's per-message validation, span and stream acknowledgement.
  topics.command('power').schema.parse(command(0, 0));
  const send = (cmd: PowerCommand): void => {
    published.set(cmd.commandId, performance.timeOrigin + performance.now());
    const hdrs = natsHeaders();
    hdrs.set(headers.msgId, cmd.commandId);
    bus.nc.publish(subjects.command('power'), encoder.encode(JSON.stringify(cmd)), { headers: hdrs });
  };
  const collect = (n: number): Promise<void> => new Promise<void>((resolve) => (onResult = () => seen.length >= n && resolve()));

  // CPU per command, whole system and executor alone: a machine-independent figure beside commands/s on a shared two-core machine.
  const processes = { lab: child.pid, 'nats-server': nats.pid, 'redis-server': redis.pid };
  // What the figures measured, read back from /proc rather than assumed.
  const policies = Object.entries({ executor: executors[0]?.pid, ...processes }).map(([name, pid]) => `${name} ${isBatchScheduled(pid) ? 'SCHED_BATCH' : 'default'}`);
  console.log(`  scheduling: ${policies.join(', ')}, load generator default (FB_SCHED_BATCH=0: all default)`);
  const cpuNow = (): Record<string, number> => ({
    executor: executors.reduce((sum, e) => sum + cpuMsOf(e.pid), 0),
    ...Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuMsOf(pid)])),
    bench: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  });
  const cpuPerCommand: Record<string, number>[] = [];
  // Context switches per command: each is a process woken for a message, the cost batching saves.
  const switchesNow = (): Record<string, number> => ({
    executor: executors.reduce((sum, e) => sum + switchesOf(e.pid), 0),
    ...Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, switchesOf(pid)])),
    bench: switchesOf(process.pid),
  });
  const switchesPerCommand: Record<string, number>[] = [];
  const rates: number[] = [];
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (let run = 0; run <= runs; run++) {
    published.clear();
    seen.length = 0;
    failed = 0;
    const done = collect(count);
    const cpuBefore = cpuNow();
    const switchesBefore = switchesNow();
    const started = performance.now();
    for (let i = 0; i < count; i++) send(command(run, i));
    await bus.nc.flush();
    await done;
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpuNow();
    const switchesAfter = switchesNow();
    if (run > 0) switchesPerCommand.push(Object.fromEntries(Object.entries(switchesAfter).map(([name, n]) => [name, (n - (switchesBefore[name] ?? 0)) / count])));
    if (run > 0) cpuPerCommand.push(Object.fromEntries(Object.entries(cpuAfter).map(([name, ms]) => [name, ((ms - (cpuBefore[name] ?? 0)) * 1000) / count])));
    if (failed > 0) throw new Error(`${failed} of ${count} commands failed: the figures would measure errors`);
    const rate = count / seconds;
    console.log(
      `  ${(run === 0 ? 'warm-up' : `run ${run}`).padEnd(8)} ${rate.toFixed(0).padStart(6)} commands/s   latency p50 ${percentile(seen, 0.5).toFixed(1)} ms p99 ${percentile(seen, 0.99).toFixed(1)} ms`,
    );
    if (run === 0) continue;
    rates.push(rate);
    p50s.push(percentile(seen, 0.5));
    p99s.push(percentile(seen, 0.99));
  }

  // Unloaded: the same call straight through the driver, then through the executor.
  const SINGLES = 300;
  const direct = new InventoryCommandDrivers(inventory);
  const directMs: number[] = [];
  // Every host's BMC session and TLS connection made before timing, as the executor's are.
  for (const host of hosts) await direct.execute({ ...command(0, 0), host }, AbortSignal.timeout(10_000));
  for (let i = 0; i < SINGLES; i++) {
    const t = performance.now();
    await direct.execute(command(0, i), AbortSignal.timeout(10_000));
    directMs.push(performance.now() - t);
  }
  await direct.close();
  const deviceMs = median(directMs);
  published.clear();
  seen.length = 0;
  for (let i = 0; i < SINGLES; i++) {
    const one = collect(i + 1);
    send(command(0, i));
    await one;
  }
  const added = seen.map((ms) => ms - deviceMs);
  const rate = median(rates);
  console.log(`  unloaded: device call p50 ${deviceMs.toFixed(2)} ms; end to end p50 ${percentile(seen, 0.5).toFixed(2)} ms; added p50 ${percentile(added, 0.5).toFixed(2)} ms p99 ${percentile(added, 0.99).toFixed(2)} ms (${SINGLES} commands one at a time)`);
  console.log(
    `median of ${runs}: ${rate.toFixed(0)} commands/s (target ≥ ${TARGET_PER_SECOND}: ${rate >= TARGET_PER_SECOND ? 'met' : 'NOT met'}), ` +
      `flood latency p50 ${median(p50s).toFixed(1)} ms p99 ${median(p99s).toFixed(1)} ms; added per command p50 ${percentile(added, 0.5).toFixed(2)} ms p99 ${percentile(added, 0.99).toFixed(2)} ms`,
  );

  const perProcess = (samples: Record<string, number>[], digits: number): { total: string; line: string } => ({
    total: median(samples.map((c) => Object.values(c).reduce((a, b) => a + b, 0))).toFixed(digits),
    line: Object.keys(samples[0] ?? {})
      .map((name) => `${name} ${median(samples.map((c) => c[name] ?? 0)).toFixed(digits)}`)
      .join(', '),
  });
  const cpu = perProcess(cpuPerCommand, 0);
  console.log(`CPU per command, µs (median of ${runs}): ${cpu.total} in all = ${cpu.line}; two cores give at most ${((2 * 1e6) / Number(cpu.total)).toFixed(0)} commands/s at that cost`);
  const switches = perProcess(switchesPerCommand, 1);
  console.log(`context switches per command (median of ${runs}): ${switches.total} in all = ${switches.line}`);

  results.unsubscribe();
  const exited = executors.map((e) => new Promise((resolve) => e.once('exit', resolve)));
  for (const e of executors) e.kill('SIGTERM');
  await Promise.all(exited);
  await bus.close();
  child.kill('SIGTERM');
  await Promise.all([nats.stop(), redis.stop()]);
}
