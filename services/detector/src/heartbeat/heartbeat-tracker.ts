/**
 * The detector's hot path: every inventory host's last heartbeat, and the
 * moment its silence becomes an outage. Per-host state lives in typed arrays
 * indexed by host number, a heartbeat is looked up by its raw subject in one
 * map, and deadlines sit on one expiry wheel driven by one timer, so 10,000
 * hosts cost neither 10,000 timers nor a scan per tick.
 *
 * A host is armed by its first valid heartbeat (a powered-off spare never
 * expires), or from the start when it is expected to run (see `expect`),
 * expires once per outage, and resumes on its next fresh heartbeat.
 *
 * Silence counts only while the tracker can hear: heartbeats are core NATS
 * messages, so while the detector's own connection is down every host is
 * silent to it, whatever the host is doing (see `deafen` and `reconnected`).
 */
import { subjects } from '@firebreak/shared';
import { ExpiryWheel } from './expiry-wheel.ts';
import { parseHeartbeat } from './heartbeat-payload.ts';
import { PhiAccrualEstimator } from './phi-accrual.ts';

export interface TrackedHost {
  readonly id: string;
  readonly site: string;
  readonly rack: string;
}

export type HeartbeatMode =
  /** Expired after `missed` periods of silence. */
  | { kind: 'fixed'; intervalMs: number; missed: number }
  /** Expired when phi reaches `threshold` (see phi-accrual.ts), or after `maxSilenceMs` of silence. */
  | { kind: 'phi'; intervalMs: number; threshold: number; minStdMs: number; windowSize: number; maxSilenceMs?: number };

export const defaultHeartbeatMode = { kind: 'fixed', intervalMs: 1_000, missed: 3 } as const satisfies HeartbeatMode;

/** The longest silence before an armed, heard host expires. */
export function expiryHorizonMs(mode: HeartbeatMode): number {
  // Typical phi timeouts are 1.5-3 periods; longer ones just wait a revolution.
  return mode.kind === 'fixed' ? mode.intervalMs * mode.missed : (mode.maxSilenceMs ?? 4 * mode.intervalMs);
}

export interface ExpiredInfo {
  host: string;
  /** The host's own sentAt of its last heartbeat. */
  lastHeartbeatAt: number;
  lastSeq: number;
  /** When the last heartbeat arrived, on the tracker's clock. */
  receivedAt: number;
  silenceMs: number;
  /** Whole heartbeat periods missed. */
  missed: number;
  /** Suspicion when it expired (phi mode only). */
  phi?: number;
  server: string | null;
}

export interface ResumedInfo {
  host: string;
  /** Silence from the last heartbeat before the outage to the one that ended it. */
  downForMs: number;
  seq: number;
  server: string | null;
}

export interface HearingInfo {
  /** From losing the connection to judging silence again. */
  deafForMs: number;
  /** `heartbeat`: one arrived after the reconnect; `timeout`: none did within a horizon of it. */
  resumedBy: 'heartbeat' | 'timeout';
  /** Silence every armed host is now allowed before it expires: one full expiry horizon. */
  graceMs: number;
}

export interface HeartbeatTrackerOptions {
  mode: HeartbeatMode;
  /**
   * Milliseconds; must not step. Default: a monotonic clock aligned with the
   * epoch at start-up, so an NTP step of the wall clock neither expires every
   * host at once nor stalls expiry.
   */
  clock?: () => number;
  /** Wheel slot and timer period: expiries fire up to this late. Default 10 ms. */
  slotMs?: number;
  onExpired(info: ExpiredInfo): void;
  onResumed(info: ResumedInfo): void;
  /** Silence is judged again after the tracker was deaf. */
  onHearing?(info: HearingInfo): void;
  /** Called once per distinct unknown subject (up to a bound, against floods). */
  onUnknownHost?(subject: string): void;
}

export interface HeartbeatTrackerStats {
  /** Inventory hosts. */
  tracked: number;
  /** Hosts that have heartbeated at least once, expired ones included. */
  armed: number;
  /** Armed hosts currently in an outage. */
  expired: number;
  /** Valid heartbeats accepted. */
  heartbeats: number;
  /** Valid heartbeats dropped as duplicates or older than one already seen. */
  stale: number;
  unknown: number;
  invalid: number;
  /** Distinct unknown subjects reported. */
  unknownSubjects: number;
}

export type ObserveResult = 'ok' | 'unknown' | 'invalid';

const IDLE = 0;
const ALIVE = 1;
const EXPIRED = 2;

const DEFAULT_SLOT_MS = 10;
const monotonicClock = (): number => performance.timeOrigin + performance.now();
/** Distinct unknown subjects remembered; past this a flood of new names is counted but not reported. */
const MAX_UNKNOWN_SUBJECTS = 10_000;

export class HeartbeatTracker {
  private readonly hosts: readonly TrackedHost[];
  private readonly bySubject = new Map<string, number>();
  private readonly byId = new Map<string, number>();
  private readonly state: Uint8Array;
  private readonly receivedAt: Float64Array;
  private readonly sentAt: Float64Array;
  private readonly seq: Float64Array;
  private readonly servers: (string | null)[];
  private readonly wheel: ExpiryWheel;
  /** Phi mode only. */
  private readonly phi: PhiAccrualEstimator | undefined;
  private readonly fixedTimeoutMs: number;
  /** Silence after which any host is expired, whatever its history. */
  private readonly horizonMs: number;
  private readonly intervalMs: number;
  private readonly clock: () => number;
  private readonly options: HeartbeatTrackerOptions;
  private readonly unknownSeen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** The time the running tick expires hosts at. */
  private tickNow = 0;
  /** When the connection was lost; NaN while silence is judged. */
  private deafSince = Number.NaN;
  /** When the connection came back, while no heartbeat has yet been heard on it; NaN otherwise. */
  private reconnectedAt = Number.NaN;
  /** Since when silence has been judged without a break. */
  private listeningSince = Number.NEGATIVE_INFINITY;
  private armed = 0;
  private expired = 0;
  private heartbeats = 0;
  private stale = 0;
  private unknown = 0;
  private invalid = 0;

  constructor(hosts: readonly TrackedHost[], options: HeartbeatTrackerOptions) {
    const { mode } = options;
    const count = hosts.length;
    this.options = options;
    this.clock = options.clock ?? monotonicClock;
    this.hosts = hosts.slice();
    this.intervalMs = mode.intervalMs;
    if (mode.kind === 'fixed') {
      if (!(mode.intervalMs > 0) || !Number.isInteger(mode.missed) || mode.missed < 1) {
        throw new RangeError(`heartbeat tracker: fixed mode needs intervalMs > 0 and a whole missed ≥ 1, got ${mode.intervalMs} × ${mode.missed}`);
      }
      this.fixedTimeoutMs = mode.intervalMs * mode.missed;
      this.phi = undefined;
    } else {
      this.fixedTimeoutMs = Number.NaN;
      this.phi = new PhiAccrualEstimator(count, mode);
    }
    this.horizonMs = expiryHorizonMs(mode);
    this.wheel = new ExpiryWheel(count, { slotMs: options.slotMs ?? DEFAULT_SLOT_MS, horizonMs: this.horizonMs });
    this.state = new Uint8Array(count);
    this.receivedAt = new Float64Array(count);
    this.sentAt = new Float64Array(count);
    this.seq = new Float64Array(count);
    this.servers = new Array<string | null>(count).fill(null);
    for (let i = 0; i < count; i++) {
      const host = this.hosts[i] as TrackedHost;
      const subject = subjects.heartbeat(host.site, host.rack, host.id);
      if (this.byId.has(host.id)) throw new Error(`heartbeat tracker: host ${host.id} is listed twice`);
      this.bySubject.set(subject, i);
      this.byId.set(host.id, i);
    }
  }

  /** Hot path: the raw NATS subject and payload of one heartbeat. Bad input is counted, never thrown. */
  observe(subject: string, data: Uint8Array): ObserveResult {
    const i = this.bySubject.get(subject);
    if (i === undefined) {
      this.unknownSubject(subject);
      return 'unknown';
    }
    const beat = parseHeartbeat(data);
    const host = this.hosts[i] as TrackedHost;
    if (beat === undefined || beat.host !== host.id || beat.rack !== host.rack || beat.site !== host.site) {
      this.invalid++;
      return 'invalid';
    }
    const state = this.state[i] as number;
    const heardBefore = !Number.isNaN(this.sentAt[i] as number);
    // Older than what we have: a reordered or duplicated beat must not refresh (or resurrect) the host.
    // A restarted agent counts from 0 again, so a lower seq with a newer sentAt is a new boot, not stale.
    if (state !== IDLE && beat.seq <= (this.seq[i] as number) && beat.sentAt <= (this.sentAt[i] as number)) {
      this.stale++;
      return 'ok';
    }
    this.heartbeats++;
    const now = this.clock();
    // The hosts' own connections come back at their own pace: the first heartbeat says they are.
    if (!Number.isNaN(this.reconnectedAt)) this.hear(now, 'heartbeat');
    const previous = this.receivedAt[i] as number;
    this.receivedAt[i] = now;
    this.sentAt[i] = beat.sentAt;
    this.seq[i] = beat.seq;
    // A drill's rehearsal is not the server: its host going dark fails nobody.
    const server = beat.drill === true ? null : beat.server;
    // The last server heard from the host since it was armed: a hypervisor's own
    // beats (no server) interleave with its VMs' and must not hide them.
    // Keep the string already held when it is unchanged, so steady hosts retain nothing new.
    if (server !== null && this.servers[i] !== server) this.servers[i] = server;
    // Only a gap between two beats of one live stretch is an inter-arrival time; an outage is not,
    // nor a gap the tracker was deaf for. An expected host's first beat ends a wait, not an interval.
    if (this.phi !== undefined && state === ALIVE && heardBefore && previous >= this.listeningSince && !this.isDeaf()) {
      this.phi.observe(i, now - previous);
    }
    this.wheel.schedule(i, now + this.timeoutMs(i));
    if (state === ALIVE) return 'ok';
    this.state[i] = ALIVE;
    if (state === IDLE) {
      this.armed++;
      return 'ok';
    }
    this.expired--;
    this.options.onResumed({ host: host.id, downForMs: Math.max(0, Math.round(now - previous)), seq: beat.seq, server });
    return 'ok';
  }

  /**
   * Arms hosts that must be heartbeating (they run a server) before their
   * first heartbeat arrives, so a detector started during an outage still
   * notices them. Each has twice the usual silence to be heard from; until
   * then its last heartbeat is unknown (NaN).
   */
  expect(hostIds: Iterable<string>): void {
    const now = this.clock();
    for (const id of hostIds) {
      const i = this.byId.get(id);
      if (i === undefined || this.state[i] !== IDLE) continue;
      this.state[i] = ALIVE;
      this.armed++;
      this.receivedAt[i] = now;
      this.sentAt[i] = Number.NaN;
      this.seq[i] = -1;
      this.wheel.schedule(i, now + 2 * this.horizonMs);
    }
  }

  /**
   * Stops expecting heartbeats from a host (an idle machine switched off on
   * purpose): idle again until it is next heard from, which arms it afresh.
   */
  disarm(hostId: string): void {
    const i = this.byId.get(hostId);
    if (i === undefined || this.state[i] === IDLE) return;
    if (this.state[i] === EXPIRED) this.expired--;
    this.armed--;
    this.state[i] = IDLE;
    this.servers[i] = null;
    this.wheel.cancel(i);
  }

  /** Expires every host whose deadline is ≤ now, unless deaf. start() calls it every slotMs. */
  tick(now: number = this.clock()): void {
    this.tickNow = now;
    if (this.isDeaf()) {
      // Reconnected, yet nobody speaks: after a horizon, silence is taken at its word again.
      if (Number.isNaN(this.reconnectedAt) || now < this.reconnectedAt + this.horizonMs) return;
      this.hear(now, 'timeout');
    }
    this.wheel.advance(now, this.expire);
  }

  /**
   * The tracker can no longer hear heartbeats: the detector's connection to
   * NATS is down, so every host is silent to it, alive or not. No host
   * expires until heartbeats are heard again; hosts that expired before stay
   * expired. Calling it again while deaf (a failed reconnect) changes nothing
   * but cancels a pending `reconnected`.
   */
  deafen(now: number = this.clock()): void {
    this.reconnectedAt = Number.NaN;
    if (!this.isDeaf()) this.deafSince = now;
  }

  /**
   * The connection is back. Silence is judged again from the first heartbeat
   * that arrives (the hosts' connections come back after the detector's, each
   * at its own pace) or, if none does, one expiry horizon from now. From then
   * every armed host has a full horizon to be heard before it can expire, so
   * a host that died during the outage expires one horizon later.
   */
  reconnected(now: number = this.clock()): void {
    if (this.isDeaf() && Number.isNaN(this.reconnectedAt)) this.reconnectedAt = now;
  }

  /** True from `deafen` until silence is judged again. */
  isDeaf(): boolean {
    return !Number.isNaN(this.deafSince);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.tick(), this.wheel.slotMs);
    // The detector's NATS connection keeps the process alive, not this timer.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Milliseconds the tracker has listened for the host without hearing it:
   * since its last heartbeat arrived or, when later, since silence was judged
   * again after a deaf spell, which does not count; Infinity if it never
   * beat (or is unknown).
   */
  silenceMs(hostId: string, now: number = this.clock()): number {
    const i = this.byId.get(hostId);
    if (i === undefined || this.state[i] === IDLE) return Number.POSITIVE_INFINITY;
    const heardFrom = Math.max(this.receivedAt[i] as number, this.listeningSince);
    return Math.max(0, (this.isDeaf() ? this.deafSince : now) - heardFrom);
  }

  /** The host's own sentAt of its last accepted heartbeat; NaN if it never sent one (or is unknown, or only expected). */
  lastHeartbeatAt(hostId: string): number {
    const i = this.byId.get(hostId);
    if (i === undefined || this.state[i] === IDLE) return Number.NaN;
    return this.sentAt[i] as number;
  }

  /** The last server identity the host's heartbeats carried since it was armed; null for none (or never heard). */
  serverOf(hostId: string): string | null {
    const i = this.byId.get(hostId);
    return i === undefined ? null : (this.servers[i] ?? null);
  }

  isExpired(hostId: string): boolean {
    const i = this.byId.get(hostId);
    return i !== undefined && this.state[i] === EXPIRED;
  }

  /** Whether the host has ever heartbeated, i.e. is expected to. */
  isArmed(hostId: string): boolean {
    const i = this.byId.get(hostId);
    return i !== undefined && this.state[i] !== IDLE;
  }

  stats(): HeartbeatTrackerStats {
    return {
      tracked: this.hosts.length,
      armed: this.armed,
      expired: this.expired,
      heartbeats: this.heartbeats,
      stale: this.stale,
      unknown: this.unknown,
      invalid: this.invalid,
      unknownSubjects: this.unknownSeen.size,
    };
  }

  /** Ends a deaf spell: every armed host gets a full horizon from now. */
  private hear(now: number, resumedBy: HearingInfo['resumedBy']): void {
    const deafForMs = Math.max(0, Math.round(now - this.deafSince));
    this.deafSince = Number.NaN;
    this.reconnectedAt = Number.NaN;
    this.listeningSince = now;
    const grace = now + this.horizonMs;
    for (let i = 0; i < this.hosts.length; i++) {
      // Expired hosts stay so; an expected host's longer first wait is kept.
      if (this.state[i] === ALIVE && !(this.wheel.deadlineOf(i) >= grace)) this.wheel.schedule(i, grace);
    }
    this.options.onHearing?.({ deafForMs, resumedBy, graceMs: this.horizonMs });
  }

  private timeoutMs(i: number): number {
    return this.phi === undefined ? this.fixedTimeoutMs : this.phi.timeoutMs(i);
  }

  private readonly expire = (i: number): void => {
    if (this.state[i] !== ALIVE) return;
    this.state[i] = EXPIRED;
    this.expired++;
    const receivedAt = this.receivedAt[i] as number;
    const silenceMs = this.tickNow - receivedAt;
    const info: ExpiredInfo = {
      host: (this.hosts[i] as TrackedHost).id,
      lastHeartbeatAt: this.sentAt[i] as number,
      lastSeq: this.seq[i] as number,
      receivedAt,
      silenceMs,
      missed: Math.floor(silenceMs / this.intervalMs),
      server: this.servers[i] as string | null,
    };
    if (this.phi !== undefined) info.phi = this.phi.phi(i, silenceMs);
    this.options.onExpired(info);
  };

  private unknownSubject(subject: string): void {
    this.unknown++;
    if (this.unknownSeen.size >= MAX_UNKNOWN_SUBJECTS || this.unknownSeen.has(subject)) return;
    this.unknownSeen.add(subject);
    this.options.onUnknownHost?.(subject);
  }
}
