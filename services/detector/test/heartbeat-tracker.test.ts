import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mulberry32, subjects, type Heartbeat } from '@firebreak/shared';
import {
  HeartbeatTracker,
  defaultHeartbeatMode,
  type ExpiredInfo,
  type HearingInfo,
  type HeartbeatMode,
  type ResumedInfo,
  type TrackedHost,
} from '../src/heartbeat/heartbeat-tracker.ts';

/** Epoch-sized times, so the wheel's tick arithmetic runs on real magnitudes. */
const T0 = 1_700_000_000_000;
const SLOT_MS = 10;
const PHI: HeartbeatMode = { kind: 'phi', intervalMs: 1_000, threshold: 8, minStdMs: 100, windowSize: 100 };

const encoder = new TextEncoder();

function makeHosts(racks: number, perRack: number): TrackedHost[] {
  const hosts: TrackedHost[] = [];
  for (let r = 0; r < racks; r++) {
    for (let h = 0; h < perRack; h++) hosts.push({ id: `r${r}-h${h}`, site: 'site1', rack: `r${r}` });
  }
  return hosts;
}

function payload(beat: Heartbeat): Uint8Array {
  return encoder.encode(JSON.stringify(beat));
}

/** A tracker on a fake clock, its callbacks recorded, and host agents that beat on demand. */
class Harness {
  now = T0;
  readonly expired: ExpiredInfo[] = [];
  readonly resumed: ResumedInfo[] = [];
  readonly hearing: HearingInfo[] = [];
  readonly unknownSubjects: string[] = [];
  readonly tracker: HeartbeatTracker;
  private readonly seqs = new Map<string, number>();
  private lastTick = T0;

  constructor(
    readonly hosts: TrackedHost[],
    mode: HeartbeatMode = defaultHeartbeatMode,
  ) {
    this.tracker = new HeartbeatTracker(hosts, {
      mode,
      clock: () => this.now,
      slotMs: SLOT_MS,
      onExpired: (info) => this.expired.push(info),
      onResumed: (info) => this.resumed.push(info),
      onHearing: (info) => this.hearing.push(info),
      onUnknownHost: (subject) => this.unknownSubjects.push(subject),
    });
  }

  /** The host's agent sends its next heartbeat now; it arrives at once. */
  beat(host: TrackedHost, overrides: Partial<Heartbeat> = {}): ReturnType<HeartbeatTracker['observe']> {
    const seq = (this.seqs.get(host.id) ?? 0) + 1;
    this.seqs.set(host.id, seq);
    const beat: Heartbeat = { host: host.id, site: host.site, rack: host.rack, server: `srv-${host.id}`, seq, sentAt: this.now, ...overrides };
    return this.tracker.observe(subjects.heartbeat(host.site, host.rack, host.id), payload(beat));
  }

  /** Moves the clock, ticking the tracker every slot as its timer would. */
  advanceTo(t: number): void {
    while (this.lastTick + SLOT_MS <= t) {
      this.lastTick += SLOT_MS;
      this.now = this.lastTick;
      this.tracker.tick();
    }
    this.now = t;
  }

  /**
   * Every host beats at 1 Hz from a random phase, each beat up to ±20% of
   * the period off its schedule, until `untilMs` after T0.
   */
  runJittered(untilMs: number, seed: number, silencedAfter: (host: number) => number = () => Number.POSITIVE_INFINITY): void {
    const random = mulberry32(seed);
    const due: number[][] = [];
    const schedule = (host: number, nominal: number): void => {
      const at = Math.round(nominal + (random() * 2 - 1) * 200);
      if (at < untilMs && at < silencedAfter(host)) (due[at] ??= []).push(host, nominal);
    };
    this.hosts.forEach((_, i) => schedule(i, 200 + Math.floor(random() * 1_000)));
    for (let t = 0; t < untilMs; t++) {
      this.advanceTo(T0 + t);
      const now = due[t];
      if (now === undefined) continue;
      for (let k = 0; k < now.length; k += 2) {
        const host = now[k] as number;
        assert.equal(this.beat(this.hosts[host] as TrackedHost), 'ok');
        schedule(host, (now[k + 1] as number) + 1_000);
      }
      due[t] = [];
    }
    this.advanceTo(T0 + untilMs);
  }
}

test('detector heartbeat-tracker - expires a silent host after interval × missed, within one slot, not before', () => {
  const [host] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([host]);
  h.advanceTo(T0 + 5);
  h.beat(host);
  h.advanceTo(T0 + 5 + 2_999);
  assert.equal(h.expired.length, 0, 'not before 3 s of silence');
  assert.equal(h.tracker.isExpired(host.id), false);
  h.advanceTo(T0 + 5 + 3_000 + SLOT_MS);
  assert.equal(h.expired.length, 1);
  const info = h.expired[0] as ExpiredInfo;
  assert.ok(info.silenceMs >= 3_000 && info.silenceMs <= 3_000 + SLOT_MS, `silence ${info.silenceMs}`);
  assert.deepEqual(
    { ...info, silenceMs: 0 },
    { host: host.id, lastHeartbeatAt: T0 + 5, lastSeq: 1, receivedAt: T0 + 5, silenceMs: 0, missed: 3, server: `srv-${host.id}` },
  );
  assert.equal(h.tracker.isExpired(host.id), true);
});

test('detector heartbeat-tracker - one onExpired per outage and one onResumed with downForMs when beats return', () => {
  const [host] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([host]);
  h.beat(host);
  h.advanceTo(T0 + 20_000);
  assert.equal(h.expired.length, 1, 'a long outage is reported once');
  h.beat(host);
  h.beat(host);
  assert.deepEqual(h.resumed, [{ host: host.id, downForMs: 20_000, seq: 2, server: `srv-${host.id}` }]);
  assert.equal(h.tracker.isExpired(host.id), false);
  h.advanceTo(T0 + 30_000);
  assert.equal(h.expired.length, 2, 'a second outage is a second expiry');
  assert.deepEqual(h.tracker.stats(), {
    tracked: 1, armed: 1, expired: 1, heartbeats: 3, stale: 0, unknown: 0, invalid: 0, unknownSubjects: 0,
  });
});

test('detector heartbeat-tracker - hosts that never heartbeat (powered-off spares) never expire', () => {
  const hosts = makeHosts(2, 5);
  const h = new Harness(hosts);
  h.beat(hosts[0] as TrackedHost);
  h.advanceTo(T0 + 60_000);
  assert.deepEqual(h.expired.map((e) => e.host), [hosts[0]?.id]);
  assert.equal(h.tracker.stats().armed, 1);
  assert.equal(h.tracker.isExpired('r1-h4'), false);
});

test('detector heartbeat-tracker - 1,000 hosts at 1 Hz with 20% jitter for 60 s: no expiry, fixed and phi', () => {
  for (const mode of [defaultHeartbeatMode, PHI]) {
    const h = new Harness(makeHosts(25, 40), mode);
    h.runJittered(60_000, 7);
    assert.equal(h.expired.length, 0, `${mode.kind}: ${h.expired.length} false expiries`);
    const stats = h.tracker.stats();
    assert.equal(stats.armed, 1_000);
    assert.ok(stats.heartbeats > 58_000, `${stats.heartbeats} heartbeats`);
  }
});

test('detector heartbeat-tracker - a stopped rack among jittered hosts expires within interval × missed + slot', () => {
  const hosts = makeHosts(25, 40);
  const h = new Harness(hosts);
  const stopAt = 20_000;
  h.runJittered(30_000, 11, (i) => ((hosts[i] as TrackedHost).rack === 'r3' ? stopAt : Number.POSITIVE_INFINITY));
  assert.deepEqual(h.expired.map((e) => e.host).sort(), hosts.filter((x) => x.rack === 'r3').map((x) => x.id).sort());
  for (const e of h.expired) assert.ok(e.silenceMs >= 3_000 && e.silenceMs <= 3_000 + SLOT_MS, `${e.host}: ${e.silenceMs}`);
});

test('detector heartbeat-tracker - phi: a stopped steady host expires sooner than fixed mode would, and later than one period', () => {
  const [host] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([host], PHI);
  for (let t = 0; t <= 30_000; t += 1_000) {
    h.advanceTo(T0 + t);
    h.beat(host);
  }
  h.advanceTo(T0 + 40_000);
  assert.equal(h.expired.length, 1);
  const info = h.expired[0] as ExpiredInfo;
  // mean 1000 ms, deviation at its 100 ms floor: phi = 8 about 5.2 deviations out.
  assert.ok(info.silenceMs > 1_400 && info.silenceMs < 1_700, `silence ${info.silenceMs}`);
  assert.ok(info.phi !== undefined && info.phi >= 8 && info.phi < 12, `phi ${info.phi}`);
});

test('detector heartbeat-tracker - phi: a host with irregular heartbeats gets a later deadline than a steady one', () => {
  const [steady, irregular] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const h = new Harness([steady, irregular], PHI);
  const random = mulberry32(3);
  let next = 0;
  for (let t = 0; t <= 30_000; t++) {
    h.advanceTo(T0 + t);
    if (t % 1_000 === 0) h.beat(steady);
    if (t >= next) {
      h.beat(irregular);
      next = t + 400 + Math.floor(random() * 1_200);
    }
  }
  h.advanceTo(T0 + 60_000);
  // Deadlines count from each host's own last beat.
  const silence = new Map(h.expired.map((e) => [e.host, e.silenceMs]));
  const steadyAfter = silence.get(steady.id) as number;
  const irregularAfter = silence.get(irregular.id) as number;
  assert.ok(steadyAfter < 1_700, `steady host expired ${steadyAfter} ms after its last beat`);
  assert.ok(irregularAfter > steadyAfter + 1_000, `irregular ${irregularAfter} ms vs steady ${steadyAfter} ms`);
  assert.ok(irregularAfter < 5_000, 'still bounded');
});

test('detector heartbeat-tracker - phi: maxSilenceMs caps the deadline of a wildly irregular host', () => {
  const [host] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([host], { ...PHI, maxSilenceMs: 2_500 });
  // Gaps of 100 and 1,900 ms: mean 1 s, deviation 900 ms, so phi alone would wait about 5.7 s.
  for (let t = 0; t <= 20_000; t += 2_000) {
    for (const at of [t, t + 100]) {
      h.advanceTo(T0 + at);
      h.beat(host);
    }
  }
  assert.equal(h.expired.length, 0);
  h.advanceTo(T0 + 40_000);
  assert.equal(h.expired.length, 1);
  const silence = (h.expired[0] as ExpiredInfo).silenceMs;
  assert.ok(silence >= 2_500 && silence <= 2_500 + SLOT_MS, `silence ${silence}`);
});

test('detector heartbeat-tracker - invalid JSON, schema-invalid and subject-mismatched heartbeats are counted and dropped', () => {
  const [a, b] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const h = new Harness([a, b]);
  const subjectA = subjects.heartbeat(a.site, a.rack, a.id);
  const good: Heartbeat = { host: a.id, site: a.site, rack: a.rack, server: null, seq: 1, sentAt: T0 };
  assert.equal(h.tracker.observe(subjectA, encoder.encode('{"host":')), 'invalid');
  assert.equal(h.tracker.observe(subjectA, new Uint8Array([0xff, 0xfe, 0x00])), 'invalid');
  assert.equal(h.tracker.observe(subjectA, payload({ ...good, seq: -1 })), 'invalid');
  assert.equal(h.tracker.observe(subjectA, encoder.encode(JSON.stringify({ ...good, sentAt: undefined }))), 'invalid');
  assert.equal(h.tracker.observe(subjectA, encoder.encode('null')), 'invalid');
  assert.equal(h.tracker.observe(subjectA, payload({ ...good, host: b.id })), 'invalid', "b's body on a's subject");
  assert.equal(h.tracker.observe(subjectA, payload({ ...good, rack: 'r9' })), 'invalid');
  assert.equal(h.tracker.observe(subjectA, payload({ ...good, site: 'site2' })), 'invalid');
  const stats = h.tracker.stats();
  assert.equal(stats.invalid, 8);
  assert.equal(stats.armed, 0, 'no invalid heartbeat arms a host');
  assert.equal(h.tracker.silenceMs(a.id), Number.POSITIVE_INFINITY);
  assert.equal(h.tracker.observe(subjectA, payload(good)), 'ok', 'detection goes on');
});

test('detector heartbeat-tracker - heartbeats from unknown subjects are counted, each subject reported once', () => {
  const [a] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([a]);
  const stray = { host: 'ghost', site: 'site1', rack: 'r0', server: null, seq: 1, sentAt: T0 };
  const ghost = subjects.heartbeat('site1', 'r0', 'ghost');
  const other = subjects.heartbeat('site9', 'r0', a.id);
  assert.equal(h.tracker.observe(ghost, payload(stray)), 'unknown');
  assert.equal(h.tracker.observe(ghost, payload({ ...stray, seq: 2 })), 'unknown');
  assert.equal(h.tracker.observe(other, encoder.encode('garbage')), 'unknown');
  assert.deepEqual(h.unknownSubjects, [ghost, other]);
  const stats = h.tracker.stats();
  assert.equal(stats.unknown, 3);
  assert.equal(stats.unknownSubjects, 2);
  assert.equal(stats.invalid, 0);
});

test('detector heartbeat-tracker - silenceMs counts from the last arrival, Infinity before the first', () => {
  const [a, spare] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const h = new Harness([a, spare]);
  assert.equal(h.tracker.silenceMs(a.id), Number.POSITIVE_INFINITY);
  h.advanceTo(T0 + 100);
  h.beat(a);
  h.advanceTo(T0 + 350);
  assert.equal(h.tracker.silenceMs(a.id), 250);
  assert.equal(h.tracker.silenceMs(a.id, T0 + 1_100), 1_000);
  assert.equal(h.tracker.silenceMs(spare.id), Number.POSITIVE_INFINITY);
  assert.equal(h.tracker.silenceMs('not-in-inventory'), Number.POSITIVE_INFINITY);
  assert.equal(h.tracker.isArmed(a.id), true);
  assert.equal(h.tracker.isArmed(spare.id), false);
  assert.equal(h.tracker.lastHeartbeatAt(a.id), T0 + 100, "the host's own sentAt");
  assert.ok(Number.isNaN(h.tracker.lastHeartbeatAt(spare.id)));
});

test('detector heartbeat-tracker - a stale or duplicated heartbeat neither refreshes nor resurrects; a restarted agent (seq 0) does', () => {
  const [a] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([a]);
  for (let t = 0; t <= 4_000; t += 1_000) {
    h.advanceTo(T0 + t);
    h.beat(a, { seq: 100 + t / 1_000, sentAt: T0 + t });
  }
  // A duplicate of the last beat, arriving late, must not push the deadline out.
  h.advanceTo(T0 + 6_000);
  assert.equal(h.beat(a, { seq: 104, sentAt: T0 + 4_000 }), 'ok');
  h.advanceTo(T0 + 7_000 + SLOT_MS);
  assert.equal(h.expired.length, 1);
  assert.equal((h.expired[0] as ExpiredInfo).lastSeq, 104);
  // A reordered older beat arriving during the outage.
  assert.equal(h.beat(a, { seq: 102, sentAt: T0 + 2_000 }), 'ok');
  assert.equal(h.tracker.isExpired(a.id), true, 'an old beat does not resurrect the host');
  assert.equal(h.resumed.length, 0);
  assert.equal(h.tracker.stats().stale, 2);
  // The agent restarted: its seq starts over, its clock has moved on.
  h.advanceTo(T0 + 9_000);
  h.beat(a, { seq: 0, sentAt: T0 + 9_000 });
  assert.equal(h.tracker.isExpired(a.id), false);
  assert.deepEqual(h.resumed.map((r) => [r.seq, r.downForMs]), [[0, 5_000]]);
  h.advanceTo(T0 + 10_000);
  h.beat(a, { seq: 1, sentAt: T0 + 10_000 });
  assert.equal(h.tracker.silenceMs(a.id), 0, 'the new boot keeps counting from its own seq');
});

test('detector heartbeat-tracker - after a stalled event loop one tick expires the overdue host once', () => {
  const [a] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([a]);
  h.beat(a);
  h.now = T0 + 60_000;
  h.tracker.tick();
  h.tracker.tick(T0 + 60_005);
  assert.equal(h.expired.length, 1);
  assert.equal((h.expired[0] as ExpiredInfo).missed, 60);
});

test('detector heartbeat-tracker - start() drives expiry with one real timer, stop() ends it', async () => {
  const [a, b] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const expired: string[] = [];
  const tracker = new HeartbeatTracker([a, b], {
    // Wide margins (a 300 ms window, beats every 50 ms): the suite runs beside others on two cores.
    mode: { kind: 'fixed', intervalMs: 100, missed: 3 },
    onExpired: (info) => expired.push(info.host),
    onResumed: () => undefined,
  });
  const beat = (host: TrackedHost, seq: number): void => {
    const body: Heartbeat = { host: host.id, site: host.site, rack: host.rack, server: null, seq, sentAt: Date.now() };
    tracker.observe(subjects.heartbeat(host.site, host.rack, host.id), payload(body));
  };
  tracker.start();
  try {
    beat(a, 1);
    beat(b, 1);
    for (let seq = 2; seq < 12; seq++) {
      await sleep(50);
      beat(b, seq);
    }
    assert.deepEqual(expired, [a.id]);
  } finally {
    tracker.stop();
  }
  await sleep(400);
  assert.deepEqual(expired, [a.id], 'no expiry once stopped');
});

test('detector heartbeat-tracker - refuses a bad mode and a host listed twice', () => {
  const noop = (): void => undefined;
  const hosts = makeHosts(1, 1);
  assert.throws(() => new HeartbeatTracker(hosts, { mode: { kind: 'fixed', intervalMs: 1_000, missed: 0 }, onExpired: noop, onResumed: noop }), RangeError);
  assert.throws(() => new HeartbeatTracker(hosts, { mode: { ...PHI, threshold: 0 } as HeartbeatMode, onExpired: noop, onResumed: noop }), RangeError);
  assert.throws(() => new HeartbeatTracker([...hosts, ...hosts], { mode: defaultHeartbeatMode, onExpired: noop, onResumed: noop }), /twice/);
});

test('detector heartbeat-tracker - an expected host that is never heard from expires after twice the usual silence; a heard one keeps its normal deadline', () => {
  const [dead, alive, spare] = makeHosts(1, 3) as [TrackedHost, TrackedHost, TrackedHost];
  const h = new Harness([dead, alive, spare]);
  h.tracker.expect([dead.id, alive.id]);
  assert.equal(h.tracker.isArmed(dead.id), true, 'armed before any heartbeat');
  assert.equal(h.tracker.isArmed(spare.id), false, 'a host not expected stays idle');
  h.advanceTo(T0 + 500);
  h.beat(alive);
  h.advanceTo(T0 + 500 + 3_000 + SLOT_MS);
  assert.deepEqual(h.expired.map((e) => [e.host, e.lastHeartbeatAt]), [[alive.id, T0 + 500]], 'the heard host expires on its normal 3 s deadline');
  h.advanceTo(T0 + 5_999);
  assert.equal(h.expired.length, 1, 'the expected host gets 6 s (2 × 3 s) to be heard from');
  h.advanceTo(T0 + 6_000 + SLOT_MS);
  assert.deepEqual(
    h.expired.slice(1).map((e) => ({ host: e.host, lastHeartbeatAt: e.lastHeartbeatAt, receivedAt: e.receivedAt })),
    [{ host: dead.id, lastHeartbeatAt: Number.NaN, receivedAt: T0 }],
    'never heard: no last heartbeat, the wait began at start',
  );
  assert.equal(h.tracker.isExpired(spare.id), false);
});

test('detector heartbeat-tracker - serverOf is the last server heard: a hypervisor\'s own beats do not hide its VMs, a drill rehearsal is no server, disarm forgets', () => {
  const h = new Harness(makeHosts(1, 3));
  const [hypervisor, drillHost, idle] = h.hosts as [TrackedHost, TrackedHost, TrackedHost];
  h.beat(hypervisor, { server: null });
  h.beat(hypervisor, { server: 'vm-db-01' });
  h.beat(hypervisor, { server: null });
  assert.equal(h.tracker.serverOf(hypervisor.id), 'vm-db-01');
  h.beat(drillHost, { server: 'db-02', drill: true });
  assert.equal(h.tracker.serverOf(drillHost.id), null);
  h.beat(idle, { server: null });
  assert.equal(h.tracker.serverOf(idle.id), null);
  h.tracker.disarm(hypervisor.id);
  assert.equal(h.tracker.isArmed(hypervisor.id), false);
  assert.equal(h.tracker.serverOf(hypervisor.id), null);
  h.advanceTo(T0 + 10_000);
  assert.deepEqual(h.expired.map((e) => e.host).sort(), [drillHost.id, idle.id], 'a disarmed host does not expire');
});

test('detector heartbeat-tracker - deaf (NATS down): nobody expires; after the reconnect each host has a full horizon from the first heartbeat, and one that died meanwhile expires one horizon later', () => {
  const [a, b, dead] = makeHosts(1, 3) as [TrackedHost, TrackedHost, TrackedHost];
  const h = new Harness([a, b, dead]);
  for (let t = 0; t <= 2_000; t += 1_000) {
    h.advanceTo(T0 + t);
    for (const host of [a, b, dead]) h.beat(host);
  }
  h.advanceTo(T0 + 2_500);
  h.tracker.deafen();
  assert.equal(h.tracker.isDeaf(), true);
  h.advanceTo(T0 + 20_000);
  assert.equal(h.expired.length, 0, 'silence while deaf is not evidence');
  h.tracker.reconnected();
  h.advanceTo(T0 + 21_000);
  assert.equal(h.expired.length, 0, 'reconnected, but the hosts are not back on the bus yet');
  assert.equal(h.tracker.isDeaf(), true);
  h.advanceTo(T0 + 21_500);
  h.beat(a);
  assert.equal(h.tracker.isDeaf(), false);
  assert.deepEqual(h.hearing, [{ deafForMs: 19_000, resumedBy: 'heartbeat', graceMs: 3_000 }]);
  // b's agent reconnects later than a's, well within the horizon; dead never does.
  for (let t = 22_000; t <= 30_000; t += 1_000) {
    h.advanceTo(T0 + t);
    h.beat(a);
    h.beat(b);
    if (t === 24_000) assert.equal(h.expired.length, 0, 'the dead host still has its grace');
  }
  assert.deepEqual(
    h.expired.map((e) => ({ host: e.host, lastHeartbeatAt: e.lastHeartbeatAt })),
    [{ host: dead.id, lastHeartbeatAt: T0 + 2_000 }],
  );
  const expiredAt = (h.expired[0] as ExpiredInfo).receivedAt + (h.expired[0] as ExpiredInfo).silenceMs;
  assert.ok(expiredAt >= T0 + 24_500 && expiredAt <= T0 + 24_500 + SLOT_MS, `expired ${expiredAt - T0} ms after T0, not a horizon after hearing resumed`);
  assert.deepEqual(h.resumed, [], 'a and b never expired');
});

test('detector heartbeat-tracker - reconnected but nothing heard: silence is judged again one horizon later, and silent hosts expire a horizon after that', () => {
  const [a, b] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const h = new Harness([a, b]);
  h.beat(a);
  h.beat(b);
  h.advanceTo(T0 + 500);
  h.tracker.deafen();
  h.advanceTo(T0 + 5_000);
  h.tracker.reconnected();
  h.advanceTo(T0 + 7_990);
  assert.equal(h.tracker.isDeaf(), true);
  h.advanceTo(T0 + 8_000);
  assert.deepEqual(h.hearing, [{ deafForMs: 7_500, resumedBy: 'timeout', graceMs: 3_000 }]);
  h.advanceTo(T0 + 10_990);
  assert.equal(h.expired.length, 0);
  h.advanceTo(T0 + 11_000 + SLOT_MS);
  assert.deepEqual(h.expired.map((e) => e.host).sort(), [a.id, b.id]);
});

test('detector heartbeat-tracker - a reconnect that fails again keeps the tracker deaf, counted from the first disconnect', () => {
  const [a, b] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const h = new Harness([a, b]);
  h.beat(a);
  h.beat(b);
  h.advanceTo(T0 + 1_000);
  h.tracker.deafen();
  h.advanceTo(T0 + 2_000);
  h.tracker.reconnected();
  h.advanceTo(T0 + 2_100);
  h.tracker.deafen();
  h.advanceTo(T0 + 30_000);
  assert.deepEqual([h.expired, h.hearing], [[], []], 'no timeout runs from a reconnect that was lost again');
  h.tracker.reconnected();
  h.beat(b);
  assert.deepEqual(h.hearing, [{ deafForMs: 29_000, resumedBy: 'heartbeat', graceMs: 3_000 }]);
  for (let t = 31_000; t <= 33_000; t += 1_000) {
    h.advanceTo(T0 + t - 1);
    assert.equal(h.expired.length, 0);
    h.advanceTo(T0 + t);
    h.beat(b);
  }
  h.advanceTo(T0 + 33_000 + SLOT_MS);
  assert.deepEqual(h.expired.map((e) => e.host), [a.id], 'a horizon after hearing resumed');
});

test('detector heartbeat-tracker - silenceMs does not count time spent deaf', () => {
  const [a, b] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const h = new Harness([a, b]);
  h.beat(a);
  h.beat(b);
  h.advanceTo(T0 + 1_000);
  h.tracker.deafen();
  h.advanceTo(T0 + 9_000);
  assert.equal(h.tracker.silenceMs(a.id), 1_000, 'frozen while deaf');
  h.tracker.reconnected();
  h.advanceTo(T0 + 9_200);
  h.beat(b);
  h.advanceTo(T0 + 9_700);
  assert.equal(h.tracker.silenceMs(a.id), 500, 'counted again from when hearing resumed');
  assert.equal(h.tracker.silenceMs(b.id), 500);
});

test('detector heartbeat-tracker - a host expired before the outage stays expired through it and resumes on its next beat', () => {
  const [a, dead] = makeHosts(1, 2) as [TrackedHost, TrackedHost];
  const h = new Harness([a, dead]);
  h.beat(a);
  h.beat(dead);
  for (let t = 1_000; t <= 4_000; t += 1_000) {
    h.advanceTo(T0 + t);
    h.beat(a);
  }
  assert.deepEqual(h.expired.map((e) => e.host), [dead.id]);
  h.tracker.deafen();
  h.advanceTo(T0 + 8_000);
  h.tracker.reconnected();
  assert.equal(h.tracker.isExpired(dead.id), true);
  h.advanceTo(T0 + 8_100);
  h.beat(dead);
  assert.equal(h.tracker.isDeaf(), false);
  assert.deepEqual(h.resumed.map((r) => [r.host, r.downForMs]), [[dead.id, 8_100]]);
  assert.equal(h.tracker.stats().expired, 0);
});

test('detector heartbeat-tracker - phi: a gap the tracker was deaf for is not an inter-arrival time', () => {
  const [host] = makeHosts(1, 1) as [TrackedHost];
  const h = new Harness([host], PHI);
  for (let t = 0; t <= 30_000; t += 1_000) {
    h.advanceTo(T0 + t);
    h.beat(host);
  }
  h.advanceTo(T0 + 30_100);
  h.tracker.deafen();
  h.advanceTo(T0 + 34_900);
  h.tracker.reconnected();
  for (let t = 35_000; t <= 40_000; t += 1_000) {
    h.advanceTo(T0 + t);
    h.beat(host);
  }
  h.advanceTo(T0 + 50_000);
  assert.equal(h.expired.length, 1);
  // With the 5 s gap taken as a sample the deviation would be ~700 ms and the deadline ~4 s.
  const silence = (h.expired[0] as ExpiredInfo).silenceMs;
  assert.ok(silence > 1_400 && silence < 1_700, `silence ${silence}`);
});
