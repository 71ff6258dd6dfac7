/**
 * What `firebreak up` shows while it runs. On a terminal: a panel redrawn
 * twice a second (services, hosts by rack, open incidents with a bar per
 * server, recent events, the tail of the service logs) on the alternate
 * screen, so the terminal is left as it was. Anywhere else (pipes, CI, tests):
 * plain lines, one per service change and per incident progress change,
 * never an escape code. Service logs always go to a file; `--logs` prints
 * them as well (and then no panel is drawn).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { topics, type Bus, type CoreSubscription, type Inventory, type IncidentProgress } from '@firebreak/shared';
import { HostStates } from './host-states.ts';
import { clock, incidentLine, isFinal, renderIncident } from './incident-view.ts';
import { renderLogLine } from './log-view.ts';

export type ViewMode = 'panel' | 'lines';

export interface LiveViewOptions {
  inventory: Inventory;
  mode: ViewMode;
  /** Print every service log line (lines mode only; the panel shows the tail). */
  printLogs: boolean;
  logFile: string;
  out?: NodeJS.WriteStream;
  /** A host without a heartbeat for this long is no longer counted as up. */
  staleAfterMs?: number;
}

export type HostCountKey = 'up' | 'failed' | 'suspect' | 'spare' | 'silent';
export type RackCounts = Record<HostCountKey, number>;

export type ServiceState = 'starting' | 'ready' | 'leading' | 'stopped' | 'exited';

const REDRAW_MS = 500;
const LOG_TAIL = 200;
const NOTE_TAIL = 6;
const CLOSED_SHOWN = 3;

export class LiveView {
  readonly hostStates: HostStates;
  private readonly lastHeartbeat = new Map<string, number>();
  private readonly incidents = new Map<string, IncidentProgress>();
  private readonly lastLine = new Map<string, string>();
  private readonly services = new Map<string, ServiceState>();
  private readonly logTail: string[] = [];
  private readonly notes: string[] = [];
  private readonly log: WriteStream;
  private readonly out: NodeJS.WriteStream;
  private readonly staleAfterMs: number;
  private readonly progressListeners = new Set<(p: IncidentProgress) => void>();
  private subscriptions: CoreSubscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: LiveViewOptions) {
    this.hostStates = new HostStates(options.inventory);
    this.out = options.out ?? process.stdout;
    this.staleAfterMs = options.staleAfterMs ?? 3_000;
    this.log = createWriteStream(options.logFile, { flags: 'w' });
  }

  get mode(): ViewMode {
    return this.options.mode;
  }

  /** Listens to heartbeats, detector verdicts and incident progress; draws the panel from now on. */
  async start(bus: Bus): Promise<void> {
    // Core subscriptions see JetStream subjects too: the verdicts and progress as they are stored.
    const verdict = (message: unknown, ctx: { subject: string }): void => this.hostStates.apply(ctx.subject, message);
    this.subscriptions = await Promise.all([
      bus.subscribeCore(topics.heartbeats, (hb) => void this.lastHeartbeat.set(hb.host, Date.now())),
      bus.subscribeCore(topics.hostFailed, verdict),
      bus.subscribeCore(topics.hostSuspect, verdict),
      bus.subscribeCore(topics.hostRecovered, verdict),
      bus.subscribeCore(topics.domainFailed, verdict),
      bus.subscribeCore(topics.incidents, (p) => this.onProgress(p)),
    ]);
    if (this.options.mode === 'panel') {
      this.out.write('\x1b[?1049h\x1b[?25l');
      this.timer = setInterval(() => this.draw(), REDRAW_MS);
      this.draw();
    }
  }

  /** Leaves the alternate screen and closes the log file; the caller prints what must stay visible. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.options.mode === 'panel' && !this.stopped) this.out.write('\x1b[?25h\x1b[?1049l');
    this.stopped = true;
    await Promise.all(this.subscriptions.map((s) => s.stop().catch(() => {})));
    this.subscriptions = [];
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }

  onIncidentProgress(listener: (p: IncidentProgress) => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  /** Every incident seen, newest progress each. */
  allIncidents(): IncidentProgress[] {
    return [...this.incidents.values()];
  }

  heartbeatingHosts(): number {
    const now = Date.now();
    return [...this.lastHeartbeat.values()].filter((at) => now - at < this.staleAfterMs).length;
  }

  serviceStates(): ReadonlyMap<string, ServiceState> {
    return this.services;
  }

  /** Something the operator should see: a line of its own, or the panel's events list. */
  note(text: string): void {
    const line = `${clock(Date.now())} ${text}`;
    this.log.write(`${line}\n`);
    if (this.options.mode === 'lines') this.out.write(`firebreak: ${text}\n`);
    else {
      this.notes.push(line);
      if (this.notes.length > NOTE_TAIL) this.notes.shift();
    }
  }

  /** One line of a service's output (pino JSON or anything else). */
  serviceLog(service: string, raw: string): void {
    const line = renderLogLine(service, raw);
    this.log.write(`${line}\n`);
    if (this.options.mode === 'lines' && this.options.printLogs) this.out.write(`${line}\n`);
    else if (this.options.mode === 'panel') {
      this.logTail.push(line);
      if (this.logTail.length > LOG_TAIL) this.logTail.shift();
    }
    const msg = parseMsg(raw);
    if (msg === 'ready') this.setService(service, 'ready');
    else if (msg === 'planning for the site') this.setService(service, 'leading');
    else if (msg === 'stopped') this.setService(service, 'stopped');
  }

  serviceStarting(service: string): void {
    this.services.set(service, 'starting');
  }

  serviceExited(service: string, how: string): void {
    this.services.set(service, 'exited');
    this.note(`${service} exited (${how})`);
  }

  /** Host counts per rack, in rack order. */
  rackCounts(now = Date.now()): Map<string, RackCounts> {
    const counts = new Map<string, RackCounts>(this.options.inventory.racks.map((r) => [r.id, { up: 0, failed: 0, suspect: 0, spare: 0, silent: 0 }]));
    for (const host of this.options.inventory.hosts) {
      const c = counts.get(host.rack);
      if (c) c[this.hostState(host.id, host.role, now)]++;
    }
    return counts;
  }

  private hostState(host: string, role: string, now: number): HostCountKey {
    const heartbeat = this.lastHeartbeat.get(host);
    const verdict = this.hostStates.get(host);
    // A verdict holds until the host heartbeats again after it.
    if (verdict && verdict.state !== 'recovered' && (heartbeat === undefined || heartbeat <= verdict.since)) return verdict.state;
    if (heartbeat !== undefined && now - heartbeat < this.staleAfterMs) return 'up';
    return role === 'spare' ? 'spare' : 'silent';
  }

  private setService(service: string, state: ServiceState): void {
    const was = this.services.get(service);
    if (was === state || (was === 'leading' && state === 'ready')) return;
    this.services.set(service, state);
    if (this.options.mode === 'lines' && !this.options.printLogs) this.out.write(`firebreak: ${service} ${state === 'leading' ? 'leads the site' : state}\n`);
  }

  private onProgress(p: IncidentProgress): void {
    const held = this.incidents.get(p.incidentId);
    if (held !== undefined && held.at > p.at) return;
    this.incidents.set(p.incidentId, p);
    const line = incidentLine(p);
    // The same state again (a resumed planner republishing) is not news.
    const key = line.slice(line.indexOf(' ') + 1);
    if (this.lastLine.get(p.incidentId) !== key) {
      this.lastLine.set(p.incidentId, key);
      this.log.write(`${line}\n`);
      if (this.options.mode === 'lines') this.out.write(`${line}\n`);
    }
    for (const listener of this.progressListeners) listener(p);
  }

  /** The panel's lines, for a screen `columns` wide and `rows` high. */
  panel(columns: number, rows: number, now = Date.now()): string[] {
    const inv = this.options.inventory;
    const lines: string[] = [];
    lines.push(`Firebreak  ${inv.hosts.length} hosts in ${inv.racks.length} racks, ${inv.servers.length} servers   ${clock(now)}   Ctrl-C stops`);
    lines.push(`services: ${[...this.services].map(([name, state]) => `${name} ${state}`).join('  ')}`);
    lines.push('');
    lines.push(`${'rack'.padEnd(8)}${['up', 'failed', 'suspect', 'spare', 'silent'].map((k) => k.padStart(8)).join('')}`);
    for (const [rack, c] of this.rackCounts(now)) {
      lines.push(`${rack.padEnd(8)}${[c.up, c.failed, c.suspect, c.spare, c.silent].map((n) => String(n).padStart(8)).join('')}`);
    }
    lines.push('');
    const all = [...this.incidents.values()].sort((a, b) => a.openedAt - b.openedAt);
    const open = all.filter((p) => !isFinal(p));
    const closed = all.filter((p) => isFinal(p)).slice(-CLOSED_SHOWN);
    lines.push(open.length === 0 ? 'incidents: none open' : `incidents: ${open.length} open`);
    for (const p of [...open, ...closed]) lines.push(...renderIncident(p, now).map((l) => `  ${l}`));
    if (this.notes.length > 0) {
      lines.push('', 'events:');
      for (const n of this.notes) lines.push(`  ${n}`);
    }
    lines.push('', `logs (all of them in ${this.options.logFile}):`);
    const room = Math.max(0, rows - lines.length - 1);
    lines.push(...this.logTail.slice(-room));
    return lines.slice(0, Math.max(1, rows - 1)).map((l) => (l.length > columns ? l.slice(0, Math.max(0, columns - 1)) : l));
  }

  private draw(): void {
    if (this.stopped) return;
    const lines = this.panel(this.out.columns || 100, this.out.rows || 40);
    this.out.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J`);
  }
}

function parseMsg(raw: string): string | undefined {
  if (!raw.startsWith('{')) return undefined;
  try {
    const msg = (JSON.parse(raw) as { msg?: unknown }).msg;
    return typeof msg === 'string' ? msg : undefined;
  } catch {
    return undefined;
  }
}
