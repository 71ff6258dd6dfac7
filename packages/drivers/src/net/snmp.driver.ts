/**
 * Port VLANs and admin status of one switch over SNMPv2c: Q-BRIDGE-MIB for
 * PVID and the per-VLAN egress/untagged PortLists, IF-MIB for ifAdminStatus.
 * Each method reads the port first and writes only what differs, in one SET
 * PDU, then reads back until the state holds: a switch that accepted a SET
 * has not necessarily applied it.
 *
 * A PortList SET replaces the VLAN's whole list, so changing one port is a
 * read-modify-write of a list other ports share. The driver serialises its
 * own changes (one driver per switch per process); across processes the
 * caller must hold the switch's lock around each call (the executor holds a
 * device lock in Redis). The read-back notices a writer that did neither:
 * an object this step wrote that the switch now reports as someone else's
 * value ends the step at once with a ConcurrentWriteError, rather than after
 * the settle wait.
 */
import { resolveCredentials, type Credentials, type Switch } from '@firebreak/shared';
import { ConcurrentWriteError, DriverError } from '../driver-error.ts';
import { readBack } from '../read-back.ts';
import type { NetCapability, NetDriver, PortSettings, PortState, StepResult, SwitchPort } from '../driver.ts';
import { snmp, type Varbind } from './net-snmp.ts';
import { columns, ifStatus, indexIn, instance } from './oids.ts';
import { hasPort, portsIn, samePorts, withPort } from './port-list.ts';
import { SnmpClient } from './snmp-client.ts';

export interface SnmpNetDriverOptions {
  switch: Switch;
  /** `resolveCredentials(switch.credentialsRef)`; needs a community. */
  credentials: Credentials;
  /** Per SNMP request attempt. Default 2 s. */
  timeoutMs?: number;
  /** Resends after a timeout. Default 1. */
  retries?: number;
  /** Between read-backs while a change lands. Default 200 ms. */
  pollIntervalMs?: number;
  /** Longest wait for a change to read back, when the signal allows that long. Default 10 s. */
  settleWaitMs?: number;
}

const DEFAULT_POLL_MS = 200;
const DEFAULT_SETTLE_MS = 10_000;
const MAX_VLAN = 4094;

/** What the switch says about one port, with the VLAN table it was read from. */
interface Snapshot {
  admin: 'up' | 'down';
  oper: 'up' | 'down';
  pvid: number;
  /** Per VLAN row: its PortLists as the switch reported them. */
  egress: Map<number, Buffer>;
  untagged: Map<number, Buffer>;
}

/** The state an ensure-method asks for; absent parts are left alone. */
interface Target {
  admin?: 'up' | 'down';
  pvid?: number;
  /** Exactly these VLANs on the port; every other VLAN loses it. */
  egress?: ReadonlySet<number>;
  untagged?: ReadonlySet<number>;
  /** Fencing is only done when the link is down, not when the switch accepted the shutdown. */
  operDown?: boolean;
}

const linkState = (value: unknown): 'up' | 'down' => (Number(value) === ifStatus.up ? 'up' : 'down');
const sorted = (vlans: Iterable<number>): number[] => [...vlans].sort((a, b) => a - b);
const list = (vlans: Iterable<number>): string => `[${sorted(vlans).join(', ')}]`;

function membersOf(lists: Map<number, Buffer>, port: number): number[] {
  return sorted([...lists].filter(([, bitmap]) => hasPort(bitmap, port)).map(([vlan]) => vlan));
}

function sameSet(a: readonly number[], b: ReadonlySet<number>): boolean {
  return a.length === b.size && a.every((v) => b.has(v));
}

function describe(s: Snapshot, port: number): string {
  return `admin ${s.admin}, oper ${s.oper}, pvid ${s.pvid}, vlans ${list(membersOf(s.egress, port))}, untagged ${list(membersOf(s.untagged, port))}`;
}

/** One object a step writes, with what the switch reported for it before. */
type Write =
  | { object: 'row'; vlan: number }
  | { object: 'egress'; vlan: number; list: Buffer; was: Buffer | undefined }
  | { object: 'untagged'; vlan: number; list: Buffer; was: Buffer | undefined }
  | { object: 'pvid'; value: number; was: number }
  | { object: 'admin'; value: 'up' | 'down'; was: 'up' | 'down' };

/** The writes that take `s` to `target` on `port`: none when it already holds. */
function plan(s: Snapshot, port: number, target: Target): Write[] {
  const creates: Write[] = [];
  const adds: Write[] = [];
  const removes: Write[] = [];
  if (target.egress && target.untagged) {
    // Untouched VLAN rows keep their width; a new row gets the widest the switch uses.
    const octets = Math.max((port + 7) >> 3, ...[...s.egress.values()].map((b) => b.length));
    for (const vlan of sorted(new Set([...s.egress.keys(), ...target.egress]))) {
      const wantEgress = target.egress.has(vlan);
      const wantUntagged = target.untagged.has(vlan);
      if (!s.egress.has(vlan)) creates.push({ object: 'row', vlan });
      const into = wantEgress ? adds : removes;
      const egress = s.egress.get(vlan);
      if (hasPort(egress, port) !== wantEgress) into.push({ object: 'egress', vlan, list: withPort(egress, port, wantEgress, octets), was: egress });
      const untagged = s.untagged.get(vlan);
      if (hasPort(untagged, port) !== wantUntagged) into.push({ object: 'untagged', vlan, list: withPort(untagged, port, wantUntagged, octets), was: untagged });
    }
    // A PVID the port does not carry (a restore of a trunk's PVID) must still name a VLAN the switch has.
    if (target.pvid !== undefined && target.pvid !== s.pvid && !s.egress.has(target.pvid) && !target.egress.has(target.pvid)) {
      creates.push({ object: 'row', vlan: target.pvid });
    }
  }
  const scalars: Write[] = [];
  if (target.pvid !== undefined && s.pvid !== target.pvid) scalars.push({ object: 'pvid', value: target.pvid, was: s.pvid });
  if (target.admin !== undefined && s.admin !== target.admin) scalars.push({ object: 'admin', value: target.admin, was: s.admin });
  // New rows and memberships before the PVID that may name them, removals last: one PDU, but agents check varbinds in order.
  return [...creates, ...adds, ...scalars, ...removes];
}

function varbindOf(w: Write, port: number): Varbind {
  const { Integer, OctetString, Gauge } = snmp.ObjectType;
  switch (w.object) {
    case 'row':
      return { oid: instance('dot1qVlanStaticRowStatus', w.vlan), type: Integer, value: snmp.RowStatus.createAndGo };
    case 'egress':
      return { oid: instance('dot1qVlanStaticEgressPorts', w.vlan), type: OctetString, value: w.list };
    case 'untagged':
      return { oid: instance('dot1qVlanStaticUntaggedPorts', w.vlan), type: OctetString, value: w.list };
    case 'pvid':
      return { oid: instance('dot1qPvid', port), type: Gauge, value: w.value };
    case 'admin':
      return { oid: instance('ifAdminStatus', port), type: Integer, value: ifStatus[w.value] };
  }
}

/** How the list the switch reports differs from the one written, by port. */
function changesFrom(written: Buffer, now: Buffer | undefined): string {
  const has = new Set(portsIn(now));
  const ours = new Set(portsIn(written));
  const lost = [...ours].filter((p) => !has.has(p));
  const gained = [...has].filter((p) => !ours.has(p));
  return [lost.length > 0 ? `lost port(s) ${list(lost)}` : '', gained.length > 0 ? `gained port(s) ${list(gained)}` : ''].filter((part) => part !== '').join(' and ');
}

/**
 * What another manager changed of `writes`, judged from a read after the
 * SET, or undefined while each written object reads as written or as before
 * (not applied yet). Changed: a PortList (or scalar) that is neither ours nor
 * what it was, i.e. someone wrote their own version over ours; or one back to
 * what it was while another object of the same PDU reads as ours: a SET is
 * applied whole, so ours landed and someone wrote the old value over it.
 */
function overwritten(s: Snapshot, writes: readonly Write[]): string | undefined {
  let landed = false;
  const replaced: string[] = [];
  const reverted: string[] = [];
  for (const w of writes) {
    if (w.object === 'row') continue;
    if (w.object === 'egress' || w.object === 'untagged') {
      const now = (w.object === 'egress' ? s.egress : s.untagged).get(w.vlan);
      const what = `VLAN ${w.vlan}'s ${w.object} list`;
      if (samePorts(now, w.list)) landed = true;
      else if (samePorts(now, w.was)) reverted.push(`${what} is back as before our SET (${changesFrom(w.list, now)})`);
      else replaced.push(`${what} ${changesFrom(w.list, now)} since our SET`);
      continue;
    }
    const now = w.object === 'pvid' ? s.pvid : s.admin;
    if (now === w.value) landed = true;
    else if (now === w.was) reverted.push(`${w.object} is back to ${now}, not the ${w.value} written`);
    else replaced.push(`${w.object} is ${now}, not the ${w.value} written`);
  }
  return replaced.length > 0 || (landed && reverted.length > 0) ? [...replaced, ...reverted].join('; ') : undefined;
}

/** What a snapshot says of the port; VLAN membership only when the snapshot read the VLAN table. */
function observedOf(s: Snapshot, port: number, vlans: boolean): Record<string, unknown> {
  const state: Record<string, unknown> = { admin: s.admin, oper: s.oper, pvid: s.pvid };
  if (vlans) {
    state['vlans'] = membersOf(s.egress, port);
    state['untagged'] = membersOf(s.untagged, port);
  }
  return state;
}

function holds(s: Snapshot, port: number, target: Target): boolean {
  if (target.operDown && s.oper !== 'down') return false;
  if (target.pvid !== undefined && s.pvid !== target.pvid) return false;
  if (target.admin !== undefined && s.admin !== target.admin) return false;
  if (target.egress && !sameSet(membersOf(s.egress, port), target.egress)) return false;
  if (target.untagged && !sameSet(membersOf(s.untagged, port), target.untagged)) return false;
  return true;
}

export class SnmpNetDriver implements NetDriver {
  readonly name = 'snmp';
  readonly capabilities: readonly NetCapability[] = ['access-vlan', 'trunk', 'port-admin', 'read', 'restore'];
  readonly #options: SnmpNetDriverOptions;
  readonly #pollMs: number;
  readonly #settleMs: number;
  #client: SnmpClient | undefined;
  /** This driver's changes to its switch, one after another (see the module comment). */
  #changes: Promise<unknown> = Promise.resolve();

  constructor(options: SnmpNetDriverOptions) {
    this.#options = options;
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.#settleMs = options.settleWaitMs ?? DEFAULT_SETTLE_MS;
  }

  /** Resolves the switch's `credentialsRef` and builds the driver. */
  static async fromInventory(
    sw: Switch,
    options: Omit<SnmpNetDriverOptions, 'switch' | 'credentials'> & { env?: NodeJS.ProcessEnv } = {},
  ): Promise<SnmpNetDriver> {
    const { env, ...rest } = options;
    return new SnmpNetDriver({ ...rest, switch: sw, credentials: await resolveCredentials(sw.credentialsRef, env) });
  }

  async validate(): Promise<void> {
    this.#ready();
  }

  async read(port: SwitchPort, signal: AbortSignal): Promise<PortState> {
    const s = await this.#snapshot(this.#portNumber(port), signal, true);
    return {
      admin: s.admin,
      oper: s.oper,
      pvid: s.pvid,
      vlans: membersOf(s.egress, port.port),
      untagged: membersOf(s.untagged, port.port),
    };
  }

  async setAccessVlan(port: SwitchPort, vlan: number, signal: AbortSignal): Promise<StepResult> {
    this.#checkVlans([vlan]);
    const only = new Set([vlan]);
    return this.#ensure(port, `access VLAN ${vlan}`, { pvid: vlan, egress: only, untagged: only }, signal);
  }

  /**
   * Without `native` the PVID is left as it is: Q-BRIDGE has no "no PVID", and
   * the port sends nothing untagged either way.
   */
  async setTrunk(port: SwitchPort, vlans: readonly number[], native: number | undefined, signal: AbortSignal): Promise<StepResult> {
    const all = new Set(native === undefined ? vlans : [...vlans, native]);
    if (all.size === 0) throw DriverError.permanent(`snmp: trunk on ${this.#label(port)} names no VLANs`);
    this.#checkVlans(all);
    const what = `trunk ${list(all)}${native === undefined ? '' : ` native ${native}`}`;
    return this.#ensure(port, what, { ...(native !== undefined && { pvid: native }), egress: all, untagged: new Set(native === undefined ? [] : [native]) }, signal);
  }

  /**
   * Every VLAN row of the switch is rewritten where it differs for this port,
   * so a VLAN a drill added loses the port and one it took away gets it back;
   * rows the drill created stay in the switch's VLAN database (empty of this
   * port), which is not the port's state.
   */
  async restorePort(port: SwitchPort, settings: PortSettings, signal: AbortSignal): Promise<StepResult> {
    const vlans = new Set(settings.vlans);
    const untagged = new Set(settings.untagged);
    const what = `restore admin ${settings.admin}, PVID ${settings.pvid}, VLANs ${list(vlans)} untagged ${list(untagged)}`;
    this.#checkVlans([settings.pvid, ...vlans, ...untagged]);
    const stray = [...untagged].filter((v) => !vlans.has(v));
    if (stray.length > 0) {
      // Q-BRIDGE: a port sends untagged only VLANs it carries; the switch would refuse or drop it.
      throw DriverError.permanent(`snmp: ${what} on ${this.#label(port)}: untagged on VLAN(s) ${list(stray)} the port would not carry`);
    }
    return this.#ensure(port, what, { admin: settings.admin, pvid: settings.pvid, egress: vlans, untagged }, signal);
  }

  shutPort(port: SwitchPort, signal: AbortSignal): Promise<StepResult> {
    return this.#ensure(port, 'shut', { admin: 'down', operDown: true }, signal);
  }

  openPort(port: SwitchPort, signal: AbortSignal): Promise<StepResult> {
    return this.#ensure(port, 'no shut', { admin: 'up' }, signal);
  }

  /** `openPort` under the switch CLI's name. */
  noShutPort(port: SwitchPort, signal: AbortSignal): Promise<StepResult> {
    return this.openPort(port, signal);
  }

  close(): Promise<void> {
    this.#client?.close();
    this.#client = undefined;
    return Promise.resolve();
  }

  #ready(): SnmpClient {
    if (this.#client) return this.#client;
    const { switch: sw, credentials, timeoutMs, retries } = this.#options;
    if (credentials.community === undefined) {
      throw DriverError.permanent(`snmp: credentials ${sw.credentialsRef} of switch ${sw.id} have no SNMP community`);
    }
    this.#client = new SnmpClient({
      switchId: sw.id,
      address: sw.address,
      community: credentials.community,
      credentialsRef: sw.credentialsRef,
      ...(timeoutMs !== undefined && { timeoutMs }),
      ...(retries !== undefined && { retries }),
    });
    return this.#client;
  }

  #label(port: SwitchPort): string {
    return `switch ${port.switch} port ${port.port}`;
  }

  #portNumber(port: SwitchPort): number {
    if (port.switch !== this.#options.switch.id) {
      throw DriverError.permanent(`snmp: ${this.#label(port)} asked of the driver for switch ${this.#options.switch.id}`);
    }
    if (!Number.isInteger(port.port) || port.port < 1) throw DriverError.permanent(`snmp: ${this.#label(port)} is not a port number`);
    return port.port;
  }

  #checkVlans(vlans: Iterable<number>): void {
    for (const vlan of vlans) {
      if (!Number.isInteger(vlan) || vlan < 1 || vlan > MAX_VLAN) throw DriverError.permanent(`snmp: VLAN ${vlan} is outside 1-${MAX_VLAN}`);
    }
  }

  async #snapshot(port: number, signal: AbortSignal, vlans: boolean): Promise<Snapshot> {
    const client = this.#ready();
    const oids = [instance('ifAdminStatus', port), instance('ifOperStatus', port), instance('dot1qPvid', port)];
    const [scalars, egress, untagged] = await Promise.all([
      client.get(oids, signal),
      vlans ? client.walk(columns.dot1qVlanStaticEgressPorts, signal) : [],
      vlans ? client.walk(columns.dot1qVlanStaticUntaggedPorts, signal) : [],
    ]);
    const lists = (varbinds: Varbind[], column: 'dot1qVlanStaticEgressPorts' | 'dot1qVlanStaticUntaggedPorts'): Map<number, Buffer> => {
      const byVlan = new Map<number, Buffer>();
      for (const vb of varbinds) {
        const vlan = indexIn(vb.oid, column);
        if (vlan !== undefined && Buffer.isBuffer(vb.value)) byVlan.set(vlan, vb.value);
      }
      return byVlan;
    };
    return {
      admin: linkState(scalars[0]?.value),
      oper: linkState(scalars[1]?.value),
      pvid: Number(scalars[2]?.value),
      egress: lists(egress, 'dot1qVlanStaticEgressPorts'),
      untagged: lists(untagged, 'dot1qVlanStaticUntaggedPorts'),
    };
  }

  async #ensure(port: SwitchPort, what: string, target: Target, signal: AbortSignal): Promise<StepResult> {
    const n = this.#portNumber(port);
    const label = `${what} on ${this.#label(port)}`;
    const vlans = target.egress !== undefined;
    // The read-back is inside too: until our change reads back, a read by the next change could miss it.
    return this.#exclusively(async () => {
      const before = await this.#snapshot(n, signal, vlans);
      const writes = plan(before, n, target);
      if (writes.length === 0 && holds(before, n, target)) return { done: true, message: `${label}: already so`, observed: observedOf(before, n, vlans) };
      if (writes.length > 0) await this.#ready().set(writes.map((w) => varbindOf(w, n)), signal);
      return this.#waitFor(n, label, target, writes, signal);
    });
  }

  #exclusively<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#changes.then(work, work);
    this.#changes = run.catch(() => undefined);
    return run;
  }

  /**
   * Reads the port until `target` holds; the signal or settleWaitMs ending
   * first is "not done yet", not an error. Something else overwriting what
   * this step wrote ends it at once: that state will not come by waiting.
   */
  async #waitFor(port: number, label: string, target: Target, writes: readonly Write[], signal: AbortSignal): Promise<StepResult> {
    const vlans = target.egress !== undefined;
    const wrote = writes.length > 0;
    const r = await readBack(
      async () => {
        const s = await this.#snapshot(port, signal, vlans);
        if (holds(s, port, target)) return { observed: observedOf(s, port, vlans) };
        const other = overwritten(s, writes);
        if (other !== undefined) {
          throw new ConcurrentWriteError(`snmp: ${label}: another manager wrote the switch between our SET and its read-back (${other}); the port now has ${describe(s, port)}`);
        }
        return `the switch still reports ${describe(s, port)}`;
      },
      { pollMs: this.#pollMs, waitMs: this.#settleMs, signal },
    );
    if (r.held) return { done: true, message: `${label}: ${wrote ? 'set' : 'settled'}, read back after ${r.elapsedMs} ms`, ...(r.observed && { observed: r.observed }) };
    return { done: false, retryAfterMs: this.#pollMs, message: `${label}: ${wrote ? 'set' : 'requested'}; ${r.last}` };
  }
}
