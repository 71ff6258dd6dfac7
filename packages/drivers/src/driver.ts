/**
 * One small interface per hardware capability, shaped after Ironic's driver
 * interfaces and bmclib's providers. Methods *ensure* a state (idempotent,
 * never toggling) and take an AbortSignal that carries the caller's deadline.
 * Failures throw `DriverError`; a state that was requested but has not landed
 * yet is a `StepResult` with `done: false`, not an error.
 */
import type { BootAttach } from '@firebreak/shared';

/** The outcome of one ensure-step, like metal3's provisioner `Result{Dirty, RequeueAfter}`. */
export interface StepResult {
  /** The state holds, read back from the device. */
  done: boolean;
  /** When not done: ask again after this long. */
  retryAfterMs?: number;
  /** What happened, for logs and incident reports. */
  message: string;
  /**
   * When done: the state as the read that confirmed it found it, so the
   * caller can report it without asking the device again.
   */
  observed?: Record<string, unknown>;
}

export interface Driver<Capability extends string = string> {
  /** The provider, as inventories name it (`redfish`, `snmp`, …). */
  readonly name: string;
  readonly capabilities: readonly Capability[];
  /** Checks configuration (addresses, credentials present, CA bundle readable) without touching the device. */
  validate(): Promise<void>;
  /** Releases sessions and connections. */
  close(): Promise<void>;
}

export type PowerState = 'on' | 'off' | 'unknown';
export type Health = 'OK' | 'Warning' | 'Critical' | 'unknown';

export interface PowerStatus {
  powerState: PowerState;
  health: Health;
}

export type PowerCapability = 'status' | 'power-on' | 'power-off' | 'next-boot-pxe';

export interface PowerDriver extends Driver<PowerCapability> {
  status(signal: AbortSignal): Promise<PowerStatus>;
  /** Sets, never toggles: no action is sent when the machine is already there. */
  ensurePower(target: 'on' | 'off', signal: AbortSignal): Promise<StepResult>;
  /** The next boot (only) goes to the network. */
  setNextBootPxe(signal: AbortSignal): Promise<StepResult>;
}

/** A switch port as the inventory names it. */
export interface SwitchPort {
  switch: string;
  port: number;
}

export interface PortState {
  admin: 'up' | 'down';
  oper: 'up' | 'down';
  /** VLAN of untagged frames (Q-BRIDGE dot1qPvid). */
  pvid: number;
  /** Every VLAN the port carries; `untagged` is the subset sent untagged. */
  vlans: readonly number[];
  untagged: readonly number[];
}

/** What a restore sets on a port: all of PortState but the link, which nobody can set. */
export type PortSettings = Omit<PortState, 'oper'>;

export type NetCapability = 'access-vlan' | 'trunk' | 'port-admin' | 'read' | 'restore';

export interface NetDriver extends Driver<NetCapability> {
  /** The port carries exactly this VLAN, untagged. */
  setAccessVlan(port: SwitchPort, vlan: number, signal: AbortSignal): Promise<StepResult>;
  /** The port carries exactly these VLANs tagged, `native` (if any) untagged. */
  setTrunk(port: SwitchPort, vlans: readonly number[], native: number | undefined, signal: AbortSignal): Promise<StepResult>;
  /** Fabric fencing: the port is administratively down. */
  shutPort(port: SwitchPort, signal: AbortSignal): Promise<StepResult>;
  openPort(port: SwitchPort, signal: AbortSignal): Promise<StepResult>;
  read(port: SwitchPort, signal: AbortSignal): Promise<PortState>;
  /**
   * The port has exactly `settings`: its admin status, its PVID, and for every
   * VLAN of the switch it is in the egress list iff `vlans` names the VLAN and
   * in the untagged list iff `untagged` does (a drill giving a port back).
   */
  restorePort(port: SwitchPort, settings: PortSettings, signal: AbortSignal): Promise<StepResult>;
}

export type StorageCapability = 'grant' | 'revoke' | 'list' | 'revoke-all' | 'clone' | 'visibility';

export interface StorageDriver extends Driver<StorageCapability> {
  /** LUN masking: `initiator` (WWPN or IQN) may see `lun`; done once the array reports it visible. */
  grant(lun: string, initiator: string, signal: AbortSignal): Promise<StepResult>;
  /** `initiator` may no longer see `lun`; a LUN the array does not have counts as revoked. */
  revoke(lun: string, initiator: string, signal: AbortSignal): Promise<StepResult>;
  /** Fencing: `initiator` sees no LUN of this array. */
  revokeAll(initiator: string, signal: AbortSignal): Promise<StepResult>;
  /** LUN ids masked to `initiator`, or every LUN of the array when it is undefined. */
  list(initiator: string | undefined, signal: AbortSignal): Promise<string[]>;
  /** `cloneId` exists as a clone of `lun` (masked from everyone when new): drills run on clones. */
  clone(lun: string, cloneId: string, signal: AbortSignal): Promise<StepResult>;
  /** `cloneId` no longer exists; refuses to delete a LUN that is not a clone. */
  deleteClone(cloneId: string, signal: AbortSignal): Promise<StepResult>;
  /** Masking and zoning together, as the array reports them. */
  canSee(initiator: string, lun: string, signal: AbortSignal): Promise<boolean>;
}

export type BootCapability = 'configure' | 'clear' | 'read' | 'restore';

/** What a host with one MAC boots next time it boots from the network. */
export interface BootEntry {
  server: string;
  image: string;
  /** The image's own iPXE script, kernel or ISO, chained from the per-MAC script. */
  imageUrl: string;
  /** The VLANs and LUNs the instance uses instead of its server's own (a drill's twins and clones). */
  attach?: BootAttach;
}

export interface BootDriver extends Driver<BootCapability> {
  /** The host with this MAC boots `entry` over iPXE on its next network boot; done once the boot service serves it. */
  configure(mac: string, entry: BootEntry, signal: AbortSignal): Promise<StepResult>;
  /** The MAC has no boot entry any more (its DHCP entry is gone too). */
  clear(mac: string, signal: AbortSignal): Promise<StepResult>;
  /** The entry the boot service serves for this MAC, or undefined. */
  read(mac: string, signal: AbortSignal): Promise<BootEntry | undefined>;
  /**
   * The MAC has exactly `entry` (its imageUrl too, not today's inventory's),
   * or no entry when it is undefined: a drill giving a host's boot entry
   * back. Observed: `{ entry }`, the served entry or null.
   */
  restore(mac: string, entry: BootEntry | undefined, signal: AbortSignal): Promise<StepResult>;
}

export interface VmSpec {
  /** The domain name: the server id the VM runs. */
  name: string;
  cpus: number;
  memoryGiB: number;
  image: string;
  /** The VM's NIC: it network-boots `image` from the boot service like a physical host. */
  mac: string;
  vlans: readonly number[];
  luns: readonly string[];
  /** A drill's rehearsal of the server; kept in the domain's metadata so the guest can say so. */
  drill?: boolean | undefined;
}

export type VmState = 'running' | 'stopped' | 'absent';

export type VmCapability = 'define' | 'start' | 'stop' | 'undefine' | 'state';

/** One hypervisor host. */
export interface VmDriver extends Driver<VmCapability> {
  /** The domain exists with this spec (a differing definition is replaced while stopped). */
  define(spec: VmSpec, signal: AbortSignal): Promise<StepResult>;
  start(name: string, signal: AbortSignal): Promise<StepResult>;
  /** Forced off (like pulling power): a recovery never waits for a guest to shut down. */
  stop(name: string, signal: AbortSignal): Promise<StepResult>;
  /** The domain no longer exists; stops it first. */
  undefine(name: string, signal: AbortSignal): Promise<StepResult>;
  state(name: string, signal: AbortSignal): Promise<VmState>;
}
