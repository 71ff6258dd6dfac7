/**
 * The detector's own connection to NATS drops (issue #15): for as long as it
 * is down no heartbeat reaches the detector from any host. A fake connection
 * stands in for NATS, so the outage starts and ends exactly when the test
 * says, and BMCs that do not answer (as under a real storm of probes) turn
 * every silence the detector misjudges into a failure verdict.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Events, type Status } from 'nats';
import { pino } from 'pino';
import { freePort, Inventory, subjects, type Bus, type Heartbeat, type Topic } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { generateTopology } from '@firebreak/lab';
import { startDetector } from '../src/index.ts';

const INTERVAL_MS = 200;
const MISSED = 3;
const HORIZON_MS = INTERVAL_MS * MISSED;

/** Just what the detector uses of a NATS connection and a bus; publishing fails while "down". */
class FakeNats {
  down = false;
  readonly published: { subject: string; body: { host?: string; hosts?: string[] }; at: number }[] = [];
  private readonly feeds = new Set<(s: Status) => void>();
  private readonly callbacks: ((err: null, msg: { subject: string; data: Uint8Array }) => void)[] = [];

  readonly nc = {
    status: (): AsyncIterable<Status> & { stop(): void } => {
      const queued: Status[] = [];
      let wake: (() => void) | undefined;
      let stopped = false;
      const feed = (s: Status): void => {
        queued.push(s);
        wake?.();
      };
      this.feeds.add(feed);
      return {
        stop: () => {
          stopped = true;
          this.feeds.delete(feed);
          wake?.();
        },
        async *[Symbol.asyncIterator]() {
          while (!stopped) {
            const next = queued.shift();
            if (next !== undefined) yield next;
            else await new Promise<void>((resolve) => (wake = resolve));
          }
        },
      };
    },
    subscribe: (_subject: string, opts: { callback: FakeNats['callbacks'][number] }) => {
      this.callbacks.push(opts.callback);
      return { unsubscribe: () => undefined };
    },
  };

  readonly bus = {
    nc: this.nc,
    publish: async (topic: Topic<never>, message: FakeNats['published'][number]['body']) => {
      if (this.down) throw new Error('disconnected');
      this.published.push({ subject: topic.subject, body: message, at: Date.now() });
      return { duplicate: false };
    },
  } as unknown as Bus;

  setDown(down: boolean): void {
    this.down = down;
    for (const feed of this.feeds) feed({ type: down ? Events.Disconnect : Events.Reconnect, data: 'fake' });
  }

  deliver(subject: string, data: Uint8Array): void {
    if (this.down) return;
    for (const cb of this.callbacks) cb(null, { subject, data });
  }
}

test('detector nats-outage - no verdict for hosts silent only because NATS was down; a host that died meanwhile is failed a horizon after heartbeats return', { timeout: 30_000 }, async () => {
  const generated = Inventory.parse(generateTopology({ size: 'tiny', seed: 1 }));
  // Nothing listens here: every BMC probe fails, so any host judged silent is failed.
  const deadBmc = `127.0.0.1:${await freePort()}`;
  const inventory = { ...generated, hosts: generated.hosts.map((h) => ({ ...h, bmc: { ...h.bmc, address: deadBmc } })) };
  const running = new Map((inventory.assignments ?? []).map((a) => [a.mode === 'bare-metal' ? a.host : a.hypervisor, a.server]));
  const hosts = inventory.hosts.filter((h) => running.has(h.id));
  const victim = hosts[0];
  assert.ok(victim && hosts.length > 3);

  const nats = new FakeNats();
  const logs: { level: number; msg: string; deafForMs?: number; resumedBy?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) });
  const detector = await startDetector({
    inventory,
    bus: nats.bus,
    logger,
    detectorId: 'd1',
    heartbeat: { kind: 'fixed', intervalMs: INTERVAL_MS, missed: MISSED },
    bmcTimeoutMs: 200,
    bmcPollIntervalMs: 0,
    bmcPollConcurrency: 4,
    correlation: { windowMs: 50, minHosts: 3, minFraction: 0.5 },
    recoverHoldMs: 400,
    verdictBackoff: { initialMs: 50, maxMs: 200 },
  });
  const encoder = new TextEncoder();
  let seq = 0;
  const silent = new Set<string>();
  const beats = setInterval(() => {
    seq++;
    for (const h of hosts) {
      if (silent.has(h.id)) continue;
      const beat: Heartbeat = { host: h.id, site: h.site, rack: h.rack, server: running.get(h.id) ?? null, seq, sentAt: Date.now() };
      nats.deliver(subjects.heartbeat(h.site, h.rack, h.id), encoder.encode(JSON.stringify(beat)));
    }
  }, INTERVAL_MS / 2);
  try {
    await sleep(1_000);
    nats.setDown(true);
    // The victim dies during the outage; the detector could not have heard it either way.
    silent.add(victim.id);
    await sleep(4 * HORIZON_MS);
    nats.setDown(false);
    // The hosts' own connections come back a little after the detector's.
    for (const h of hosts) silent.add(h.id);
    await sleep(HORIZON_MS / 2);
    const heardAgainAt = Date.now();
    for (const h of hosts) if (h !== victim) silent.delete(h.id);

    await waitFor(`host.failed for ${victim.id}`, () => nats.published.length > 0, 5_000);
    await sleep(4 * HORIZON_MS);
    assert.deepEqual(
      nats.published.map((p) => `${p.subject} ${p.body.host ?? p.body.hosts?.join(',') ?? ''}`),
      [`${subjects.hostEvent('failed')} ${victim.id}`],
      'only the host that really died',
    );
    const failedAfterMs = (nats.published[0]?.at ?? 0) - heardAgainAt;
    assert.ok(failedAfterMs >= HORIZON_MS - 50, `failed ${failedAfterMs} ms after heartbeats returned, before its grace ran out`);

    const deaf = logs.filter((l) => l.msg.startsWith('stopped judging heartbeat silence'));
    const resumed = logs.filter((l) => l.msg.startsWith('resumed judging heartbeat silence'));
    assert.equal(deaf.length, 1);
    assert.equal(deaf[0]?.level, 40, 'warn');
    assert.equal(resumed.length, 1);
    assert.equal(resumed[0]?.level, 30, 'info');
    assert.equal(resumed[0]?.resumedBy, 'heartbeat');
    assert.ok((resumed[0]?.deafForMs ?? 0) >= 4 * HORIZON_MS, `deaf for ${resumed[0]?.deafForMs} ms`);
    assert.equal(detector.stats()['deaf'], false);
  } finally {
    clearInterval(beats);
    await detector.stop();
  }
});
