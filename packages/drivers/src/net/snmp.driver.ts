/**
 * Port VLANs and admin status of one switch over SNMPv2c: Q-BRIDGE-MIB for
 * PVID and the per-VLAN egress/untagged PortLists, IF-MIB for ifAdminStatus.
 * Each method reads the port first and writes only what differs, in one SET
 * PDU, then reads back until the state holds: a switch that accepted a SET
 * has not necessarily applied it, and a PortList SET from another manager in
 * between can undo ours.
 */
import { resolveCredentials, type Credentials, type Switch } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { readBack } from '../read-back.ts';
import type { NetCapability, NetDriver, PortState, StepResult, SwitchPort } from '../driver.ts';
import { snmp, type Varbind } from './net-snmp.ts';
import { columns, ifStatus, indexIn, instance } from './oids.ts';
import { hasPort, withPort } from './port-list.ts';
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

/** The varbinds that take `s` to `target` on `port`: empty when it already holds. */
function plan(s: Snapshot, port: number, target: Target): Varbind[] {
  const { Integer, OctetString, Gauge } = snmp.ObjectType;
  const creates: Varbind[] = [];
  const adds: Varbind[] = [];
  const removes: Varbind[] = [];
  if (target.egress && target.untagged) {
    // Untouched VLAN rows keep their width; a new row gets the widest the switch uses.
    const octets = Math.max((port + 7) >> 3, ...[...s.egress.values()].map((b) => b.length));
    for (const vlan of sorted(new Set([...s.egress.keys(), ...target.egress]))) {
      const row = s.egress.has(vlan);
      const wantEgress = target.egress.has(vlan);
      const wantUntagged = target.untagged.has(vlan);
      if (!row) creates.push({ oid: instance('dot1qVlanStaticRowStatus', vlan), type: Integer, value: snmp.RowStatus.createAndGo });
      const into = wantEgress ? adds : removes;
      if (hasPort(s.egress.get(vlan), port) !== wantEgress) {
        into.push({ oid: instance('dot1qVlanStaticEgressPorts', vlan), type: OctetString, value: withPort(s.egress.get(vlan), port, wantEgress, octets) });
      }
      if (hasPort(s.untagged.get(vlan), port) !== wantUntagged) {
        into.push({ oid: instance('dot1qVlanStaticUntaggedPorts', vlan), type: OctetString, value: withPort(s.untagged.get(vlan), port, wantUntagged, octets) });
      }
    }
  }
  const scalars: Varbind[] = [];
  if (target.pvid !== undefined && s.pvid !== target.pvid) scalars.push({ oid: instance('dot1qPvid', port), type: Gauge, value: target.pvid });
  if (target.admin !== undefined && s.admin !== target.admin) {
    scalars.push({ oid: instance('ifAdminStatus', port), type: Integer, value: ifStatus[target.admin] });
  }
  // New rows and memberships before the PVID that may name them, removals last: one PDU, but agents check varbinds in order.
  return [...creates, ...adds, ...scalars, ...removes];
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

/**
 * PortList SETs replace a VLAN's whole bitmap, so two changes on one switch
 * from this process must not interleave their read and their write. Across
 * processes the read-back catches a lost update and the step reports not done.
 */
const switchLocks = new Map<string, Promise<unknown>>();

async function exclusively<T>(key: string, work: () => Promise<T>): Promise<T> {
  const before = switchLocks.get(key) ?? Promise.resolve();
  const run = before.then(work, work);
  const tail = run.catch(() => undefined);
  switchLocks.set(key, tail);
  try {
    return await run;
  } finally {
    if (switchLocks.get(key) === tail) switchLocks.delete(key);
  }
}

export class SnmpNetDriver implements NetDriver {
  readonly name = 'snmp';
  readonly capabilities: readonly NetCapability[] = ['access-vlan', 'trunk', 'port-admin', 'read'];
  readonly #options: SnmpNetDriverOptions;
  readonly #pollMs: number;
  readonly #settleMs: number;
  #client: SnmpClient | undefined;

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
    const sent = await exclusively(this.#options.switch.address, async () => {
      const before = await this.#snapshot(n, signal, vlans);
      const varbinds = plan(before, n, target);
      if (varbinds.length > 0) await this.#ready().set(varbinds, signal);
      return { before, count: varbinds.length };
    });
    if (sent.count === 0 && holds(sent.before, n, target)) return { done: true, message: `${label}: already so`, observed: observedOf(sent.before, n, vlans) };
    return this.#waitFor(n, label, target, sent.count > 0, signal);
  }

  /** Reads the port until `target` holds; the signal or settleWaitMs ending first is "not done yet", not an error. */
  async #waitFor(port: number, label: string, target: Target, wrote: boolean, signal: AbortSignal): Promise<StepResult> {
    const vlans = target.egress !== undefined;
    const r = await readBack(
      async () => {
        const s = await this.#snapshot(port, signal, vlans);
        return holds(s, port, target) ? { observed: observedOf(s, port, vlans) } : `the switch still reports ${describe(s, port)}`;
      },
      { pollMs: this.#pollMs, waitMs: this.#settleMs, signal },
    );
    if (r.held) return { done: true, message: `${label}: ${wrote ? 'set' : 'settled'}, read back after ${r.elapsedMs} ms`, ...(r.observed && { observed: r.observed }) };
    return { done: false, retryAfterMs: this.#pollMs, message: `${label}: ${wrote ? 'set' : 'requested'}; ${r.last}` };
  }
}
