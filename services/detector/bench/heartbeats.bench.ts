/**
 * The heartbeat tracker's numbers against the detector issue's targets:
 *   1. throughput on one core: pre-encoded heartbeats for 10,000 hosts fed
 *      straight into observe() (zod on every one), and through a real
 *      nats-server with a flooding publisher in another process;
 *   2. memory per tracked host: heap + ArrayBuffer delta of an armed tracker
 *      (needs global.gc: re-runs itself under --expose-gc when missing);
 *   3. detection latency on a fake clock: 10,000 hosts at 1 Hz, random
 *      phases, ±20% jitter, one rack of 40 stopped at T; expiry - T.
 * Each measurement runs several times and reports the median.
 *
 *   npx tsx services/detector/bench/heartbeats.bench.ts [--runs 5] [--seconds 3] [--no-nats]
 *   node --expose-gc --import tsx services/detector/bench/heartbeats.bench.ts
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from 'nats';
import { mulberry32, startNatsServer, subjects, type Heartbeat } from '@firebreak/shared';
import {
  HeartbeatTracker,
  defaultHeartbeatMode,
  type HeartbeatMode,
  type TrackedHost,
} from '../src/heartbeat/heartbeat-tracker.ts';

const HOSTS = 10_000;
const RACK_SIZE = 40;
const T0 = 1_700_000_000_000;
const PHI: HeartbeatMode = { kind: 'phi', intervalMs: 1_000, threshold: 8, minStdMs: 100, windowSize: 100 };
const TARGETS = { heartbeatsPerSecond: 100_000, bytesPerHost: 300, p99Ms: defaultHeartbeatMode.intervalMs * defaultHeartbeatMode.missed + 100 };

const encoder = new TextEncoder();
const noop = (): void => undefined;
const self = fileURLToPath(import.meta.url);

function makeHosts(count: number): TrackedHost[] {
  return Array.from({ length: count }, (_, i) => {
    const rack = `r${Math.floor(i / RACK_SIZE)}`;
    return { id: `${rack}-h${i % RACK_SIZE}`, site: 'site1', rack };
  });
}

/** What a host agent sends. Every section checks the tracker accepted them all, so none measures garbage. */
function encodeBeat(host: TrackedHost, seq: number, sentAt: number): Uint8Array {
  const beat: Heartbeat = { host: host.id, site: host.site, rack: host.rack, server: `srv-${host.id}`, seq, sentAt };
  return encoder.encode(JSON.stringify(beat));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)] as number;
}

// ---------------------------------------------------------------- 1. throughput

interface ThroughputResult {
  heartbeatsPerSecond: number;
}

/**
 * Rounds × hosts distinct payloads with rising seq, fed round by round into a
 * fresh tracker per pass (a replayed payload would be dropped as stale and
 * cost less than a real one). Only the observe loop is timed.
 */
function directThroughput(seconds: number): ThroughputResult {
  const rounds = 20;
  const hosts = makeHosts(HOSTS);
  const subjectOf = hosts.map((h) => subjects.heartbeat(h.site, h.rack, h.id));
  const payloads: Uint8Array[] = [];
  for (let r = 0; r < rounds; r++) for (const host of hosts) payloads.push(encodeBeat(host, r + 1, T0 + r * 1_000));
  let observed = 0;
  let accepted = 0;
  let elapsedMs = 0;
  while (elapsedMs < seconds * 1_000) {
    const tracker = new HeartbeatTracker(hosts, { mode: defaultHeartbeatMode, onExpired: noop, onResumed: noop });
    const start = performance.now();
    for (let r = 0; r < rounds; r++) {
      const base = r * HOSTS;
      for (let i = 0; i < HOSTS; i++) tracker.observe(subjectOf[i] as string, payloads[base + i] as Uint8Array);
    }
    elapsedMs += performance.now() - start;
    observed += rounds * HOSTS;
    accepted += tracker.stats().heartbeats;
  }
  if (accepted !== observed) throw new Error(`throughput bench: only ${accepted} of ${observed} heartbeats accepted`);
  return { heartbeatsPerSecond: (observed / elapsedMs) * 1_000 };
}

interface NatsResult {
  /** Arrival rate at the tracker; bounded by the publisher too when the tracker keeps up. */
  heartbeatsPerSecond: number;
  /** Received per second of the tracker process's own CPU time (client parsing included): its capacity on one core. */
  heartbeatsPerCpuSecond: number;
  published: number;
  received: number;
}

/** Floods heartbeats for HOSTS hosts at the server for `seconds`, then prints how many it sent. */
async function publisher(url: string, seconds: number): Promise<void> {
  const nc = await connect({ servers: url });
  const hosts = makeHosts(HOSTS);
  const subjectOf = hosts.map((h) => subjects.heartbeat(h.site, h.rack, h.id));
  const prefixes = hosts.map((h) => `{"host":"${h.id}","site":"${h.site}","rack":"${h.rack}","server":"srv-${h.id}","seq":`);
  const end = Date.now() + seconds * 1_000;
  let sent = 0;
  for (let seq = 1; Date.now() < end; seq++) {
    const sentAt = Date.now();
    for (let i = 0; i < HOSTS; i++) {
      nc.publish(subjectOf[i] as string, encoder.encode(`${prefixes[i] as string}${seq},"sentAt":${sentAt}}`));
      // Let the socket drain now and then, so the client's buffer does not grow without bound.
      if (++sent % 20_000 === 0) await nc.flush();
    }
  }
  await nc.flush();
  await nc.close();
  process.stdout.write(`${JSON.stringify({ sent })}\n`);
}

/** The tracker subscribed to fb.hb.> on one connection, a publisher process flooding. */
async function natsThroughput(url: string, seconds: number): Promise<NatsResult> {
  const hosts = makeHosts(HOSTS);
  const tracker = new HeartbeatTracker(hosts, { mode: defaultHeartbeatMode, onExpired: noop, onResumed: noop });
  const nc: NatsConnection = await connect({ servers: url });
  let received = 0;
  let first = 0;
  let last = 0;
  nc.subscribe(subjects.heartbeatAll, {
    callback: (_err, msg) => {
      if (received++ === 0) first = performance.now();
      last = performance.now();
      tracker.observe(msg.subject, msg.data);
    },
  });
  await nc.flush();
  const cpuBefore = process.cpuUsage();
  const child = spawn(process.execPath, [...process.execArgv, self, 'publisher', url, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`publisher exited ${code}`)))));
  // Let what is in flight arrive.
  let settled = -1;
  while (settled !== received) {
    settled = received;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const cpu = process.cpuUsage(cpuBefore);
  await nc.close();
  const { sent } = JSON.parse(out) as { sent: number };
  if (tracker.stats().heartbeats !== received) throw new Error(`nats bench: ${tracker.stats().heartbeats} of ${received} heartbeats accepted`);
  return {
    heartbeatsPerSecond: received > 1 ? ((received - 1) / (last - first)) * 1_000 : 0,
    heartbeatsPerCpuSecond: (received / (cpu.user + cpu.system)) * 1e6,
    published: sent,
    received,
  };
}

// ---------------------------------------------------------------- 2. memory

interface MemoryResult {
  hosts: number;
  bytesPerHost: number;
  heapBytesPerHost: number;
  arrayBufferBytesPerHost: number;
}

function measuredBytes(): { heap: number; arrayBuffers: number } {
  const gc = globalThis.gc as () => void;
  for (let i = 0; i < 4; i++) gc();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, arrayBuffers: usage.arrayBuffers };
}

/**
 * The inventory objects and the payloads exist before the first reading and
 * stay referenced after the second, so only what the tracker holds counts:
 * its typed arrays, subject strings, maps, and each host's server string.
 */
function memory(count: number, mode: HeartbeatMode): MemoryResult {
  const hosts = makeHosts(count);
  const subjectOf = hosts.map((h) => subjects.heartbeat(h.site, h.rack, h.id));
  const payloads = hosts.map((h) => encodeBeat(h, 1, T0));
  const before = measuredBytes();
  const tracker = new HeartbeatTracker(hosts, { mode, clock: () => T0, onExpired: noop, onResumed: noop });
  for (let i = 0; i < count; i++) tracker.observe(subjectOf[i] as string, payloads[i] as Uint8Array);
  const after = measuredBytes();
  if (tracker.stats().armed !== count) throw new Error('memory bench: not every host armed');
  const heap = (after.heap - before.heap) / count;
  const arrayBuffers = (after.arrayBuffers - before.arrayBuffers) / count;
  // Keep everything alive past the reading.
  if (subjectOf.length + payloads.length + hosts.length === 0) console.log(tracker);
  return { hosts: count, bytesPerHost: heap + arrayBuffers, heapBytesPerHost: heap, arrayBufferBytesPerHost: arrayBuffers };
}

function memoryRuns(runs: number): MemoryResult[] {
  const results: MemoryResult[] = [];
  for (const [count, mode] of [
    [10_000, defaultHeartbeatMode],
    [100_000, defaultHeartbeatMode],
    [10_000, PHI],
  ] as const) {
    const samples = Array.from({ length: runs }, () => memory(count, mode));
    results.push({
      hosts: count,
      bytesPerHost: median(samples.map((s) => s.bytesPerHost)),
      heapBytesPerHost: median(samples.map((s) => s.heapBytesPerHost)),
      arrayBufferBytesPerHost: median(samples.map((s) => s.arrayBufferBytesPerHost)),
    });
  }
  return results;
}

/** global.gc exists only under --expose-gc: run the memory part in a child that has it. */
async function memoryInChild(runs: number): Promise<MemoryResult[]> {
  const child = spawn(process.execPath, ['--expose-gc', ...process.execArgv, self, 'memory', String(runs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`memory bench exited ${code}`)))));
  return JSON.parse(out) as MemoryResult[];
}

// ---------------------------------------------------------------- 3. detection latency

interface LatencyResult {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  minMs: number;
  detected: number;
  falseExpiries: number;
  /** Silence since each stopped host's own last beat when it expired: the deadline plus the tracker's lateness. */
  silenceP99Ms: number;
}

/**
 * Fake clock in 1 ms steps, the tracker ticked every slot as its timer
 * would; each host beats at nominal k·1000 + phase, off by up to ±20%.
 * Latency is (the tick that expired the host) − (the instant the rack stopped).
 */
function detectionLatency(mode: HeartbeatMode, seed: number): LatencyResult {
  const slotMs = 10;
  const stopAt = 30_000;
  const endAt = stopAt + 10_000;
  const hosts = makeHosts(HOSTS);
  const random = mulberry32(seed);
  const stoppedRack = `r${Math.floor(random() * (HOSTS / RACK_SIZE))}`;
  const stopped = new Set(hosts.filter((h) => h.rack === stoppedRack).map((h) => h.id));
  const subjectOf = hosts.map((h) => subjects.heartbeat(h.site, h.rack, h.id));
  let now = T0;
  const expiredAt = new Map<string, number>();
  const silences: number[] = [];
  let falseExpiries = 0;
  const tracker = new HeartbeatTracker(hosts, {
    mode,
    clock: () => now,
    slotMs,
    onExpired: (info) => {
      if (!stopped.has(info.host)) {
        falseExpiries++;
        return;
      }
      expiredAt.set(info.host, now - (T0 + stopAt));
      silences.push(info.silenceMs);
    },
    onResumed: noop,
  });
  const seqs = new Uint32Array(HOSTS);
  const due: number[][] = [];
  const schedule = (i: number, nominal: number): void => {
    const at = Math.round(nominal + (random() * 2 - 1) * 200);
    if (at >= endAt || ((hosts[i] as TrackedHost).rack === stoppedRack && at >= stopAt)) return;
    (due[at] ??= []).push(i, nominal);
  };
  for (let i = 0; i < HOSTS; i++) schedule(i, 200 + Math.floor(random() * 1_000));
  for (let t = 0; t <= endAt; t++) {
    now = T0 + t;
    if (t % slotMs === 0) tracker.tick();
    const list = due[t];
    if (list === undefined) continue;
    for (let k = 0; k < list.length; k += 2) {
      const i = list[k] as number;
      tracker.observe(subjectOf[i] as string, encodeBeat(hosts[i] as TrackedHost, ++seqs[i]!, now));
      schedule(i, (list[k + 1] as number) + 1_000);
    }
    due[t] = [];
  }
  if (tracker.stats().invalid + tracker.stats().stale > 0) throw new Error('latency bench: a heartbeat was refused');
  const latencies = [...expiredAt.values()].sort((a, b) => a - b);
  return {
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies[latencies.length - 1] as number,
    minMs: latencies[0] as number,
    detected: latencies.length,
    falseExpiries,
    silenceP99Ms: percentile(silences.sort((a, b) => a - b), 0.99),
  };
}

function latencyRuns(mode: HeartbeatMode, runs: number): LatencyResult {
  const samples = Array.from({ length: runs }, (_, run) => detectionLatency(mode, 1_000 + run));
  return {
    p50Ms: median(samples.map((s) => s.p50Ms)),
    p99Ms: median(samples.map((s) => s.p99Ms)),
    maxMs: Math.max(...samples.map((s) => s.maxMs)),
    minMs: Math.min(...samples.map((s) => s.minMs)),
    detected: Math.min(...samples.map((s) => s.detected)),
    falseExpiries: samples.reduce((sum, s) => sum + s.falseExpiries, 0),
    silenceP99Ms: median(samples.map((s) => s.silenceP99Ms)),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const [role, ...rest] = process.argv.slice(2);
  if (role === 'publisher') return publisher(rest[0] as string, Number(rest[1]));
  if (role === 'memory') {
    process.stdout.write(`${JSON.stringify(memoryRuns(Number(rest[0])))}\n`);
    return;
  }
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '5' }, seconds: { type: 'string', default: '3' }, 'no-nats': { type: 'boolean', default: false } },
  });
  const runs = Number(values.runs);
  const seconds = Number(values.seconds);

  const direct = Array.from({ length: runs }, () => directThroughput(seconds));
  const directRate = median(direct.map((d) => d.heartbeatsPerSecond));
  console.error(`direct observe(): ${direct.map((d) => Math.round(d.heartbeatsPerSecond)).join(', ')} heartbeats/s`);

  let nats: NatsResult | undefined;
  if (!values['no-nats']) {
    const server = await startNatsServer();
    try {
      const samples: NatsResult[] = [];
      for (let run = 0; run < Math.min(runs, 3); run++) samples.push(await natsThroughput(server.url, seconds));
      console.error(`through NATS: ${samples.map((s) => `${Math.round(s.heartbeatsPerSecond)}/s (${s.received}/${s.published})`).join(', ')}`);
      nats = samples.sort((a, b) => a.heartbeatsPerSecond - b.heartbeatsPerSecond)[samples.length >> 1] as NatsResult;
    } finally {
      await server.stop();
    }
  }

  console.error('memory per host…');
  const memoryResults = typeof globalThis.gc === 'function' ? memoryRuns(runs) : await memoryInChild(runs);
  console.error('detection latency (simulated 40 s per run)…');
  const fixed = latencyRuns(defaultHeartbeatMode, runs);
  const phi = latencyRuns(PHI, runs);

  const rows = [
    { measure: 'observe() on one core, zod on each', value: `${Math.round(directRate).toLocaleString('en')} heartbeats/s`, target: `≥ ${TARGETS.heartbeatsPerSecond.toLocaleString('en')}/s`, ok: directRate >= TARGETS.heartbeatsPerSecond },
    ...(nats
      ? [{
          measure: 'through nats-server (publisher process)',
          value: `${Math.round(nats.heartbeatsPerSecond).toLocaleString('en')} heartbeats/s, ${Math.round(nats.heartbeatsPerCpuSecond).toLocaleString('en')} per CPU-second`,
          target: `(${nats.received.toLocaleString('en')} of ${nats.published.toLocaleString('en')} received)`,
          // Informational: nats-server, the publisher and the client share the machine's cores.
          ok: undefined,
        }]
      : []),
    ...memoryResults.map((m, i) => ({
      measure: `memory per armed host, ${m.hosts.toLocaleString('en')} hosts${i === 2 ? ', phi' : ''}`,
      value: `${m.bytesPerHost.toFixed(0)} B (heap ${m.heapBytesPerHost.toFixed(0)} + arrays ${m.arrayBufferBytesPerHost.toFixed(0)})`,
      target: `≤ ${TARGETS.bytesPerHost} B`,
      ok: m.bytesPerHost <= TARGETS.bytesPerHost,
    })),
    ...([['fixed 1 s × 3', fixed], ['phi 8', phi]] as const).map(([name, l]) => ({
      measure: `detection latency, rack of 40, ${name}`,
      value: `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms (min ${l.minMs}, max ${l.maxMs}; ${l.detected}/40, ${l.falseExpiries} false; silence p99 ${l.silenceP99Ms} ms)`,
      target: name.startsWith('fixed') ? `p99 ≤ ${TARGETS.p99Ms} ms` : '',
      ok: l.detected === RACK_SIZE && l.falseExpiries === 0 && (!name.startsWith('fixed') || l.p99Ms <= TARGETS.p99Ms),
    })),
  ];
  console.table(rows);
  console.log(
    JSON.stringify({
      bench: 'detector-heartbeats',
      runs,
      node: process.version,
      heartbeatsPerSecond: Math.round(directRate),
      natsHeartbeatsPerSecond: nats && Math.round(nats.heartbeatsPerSecond),
      natsHeartbeatsPerCpuSecond: nats && Math.round(nats.heartbeatsPerCpuSecond),
      natsReceived: nats?.received,
      natsPublished: nats?.published,
      bytesPerHost: Object.fromEntries(memoryResults.map((m, i) => [i === 2 ? `phi${m.hosts}` : String(m.hosts), Math.round(m.bytesPerHost)])),
      detectionLatencyMs: {
        fixed: { p50: fixed.p50Ms, p99: fixed.p99Ms, max: fixed.maxMs, silenceP99: fixed.silenceP99Ms },
        phi: { p50: phi.p50Ms, p99: phi.p99Ms, max: phi.maxMs, silenceP99: phi.silenceP99Ms },
      },
      targets: TARGETS,
      pass: rows.every((r) => r.ok !== false),
    }),
  );
}

await main();
