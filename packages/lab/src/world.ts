/**
 * The simulated data center's single source of truth. The Redfish, SNMP, SAN
 * and host simulators are protocol front ends over this model: a Redfish reset
 * changes a host's power here, the host simulator reacts to it, and an SNMP
 * SET on a port changes which VLANs that host reaches.
 */
import { EventEmitter } from 'node:events';
import type { Host, Inventory, Server } from '@firebreak/shared';
import type { LabRecorder } from './recorder.ts';

export type PowerState = 'on' | 'off';
export type Health = 'OK' | 'Warning' | 'Critical';
export type HostPhase = 'off' | 'booting' | 'running' | 'boot-failed';
export type BootTarget = 'None' | 'Pxe' | 'Hdd';
export type BootEnabled = 'Disabled' | 'Once' | 'Continuous';
export type LinkState = 'up' | 'down';

/** Fault knobs on one host's BMC; the Redfish simulator obeys them. */
export interface BmcBehaviour {
  /** False: connections for this system are dropped, as when the BMC has no power. */
  reachable: boolean;
  /** Added to every request for this system. */
  extraLatencyMs: number;
  /** The next N requests for this system answer 500 with a Redfish error body. */
  failNext: number;
}

/** Fault knobs on one switch's SNMP agent; the switch simulator obeys them. */
export interface SwitchBehaviour {
  /**
   * Every request waits this long before the agent reads or writes the world
   * and answers, as a busy switch CPU does: a manager's read and its SET then
   * land that far apart, the window in which another manager's SET of the
   * same PortList can come between them.
   */
  extraLatencyMs: number;
  /**
   * Up to this much more, at random per request: requests from several
   * managers are then served in another order than they were sent, as on a
   * loaded network or switch CPU.
   */
  jitterMs: number;
}

export interface HostRuntime {
  readonly host: Host;
  power: PowerState;
  health: Health;
  bootTarget: BootTarget;
  bootEnabled: BootEnabled;
  phase: HostPhase;
  /** The server identity the host runs (or will boot from disk), null for none. */
  server: string | null;
  /** It runs a drill's rehearsal of `server` (the boot script attached drill VLANs and clones). */
  drill: boolean;
  /** The image the host runs (or will boot from disk), null when unknown (preemptible work, blank disk). */
  image: string | null;
  /** Why the last PXE boot failed. */
  bootError: string | null;
  /** Heartbeats stop although the host runs (network isolation of its agent). */
  isolated: boolean;
  /** Preemptible work of a repurposable host. */
  workload: string | null;
  readonly bmc: BmcBehaviour;
}

export interface PortRuntime {
  readonly switchId: string;
  readonly port: number;
  readonly hostId: string | null;
  readonly mac: string | null;
  admin: LinkState;
  oper: LinkState;
  /** Q-BRIDGE dot1qPvid: VLAN for untagged frames. */
  pvid: number;
  /** VLANs this port carries (dot1qVlanStaticEgressPorts). */
  readonly egress: Set<number>;
  /** VLANs sent untagged (dot1qVlanStaticUntaggedPorts). */
  readonly untagged: Set<number>;
}

export interface WorldEvents {
  power: [hostId: string, state: PowerState];
  phase: [hostId: string, phase: HostPhase];
  /** A port's operational status changed: what linkUp/linkDown traps report. */
  link: [port: PortRuntime, state: LinkState];
}

export const DEFAULT_VLAN = 1;

const portKey = (switchId: string, port: number): string => `${switchId}:${port}`;

export class World extends EventEmitter<WorldEvents> {
  readonly inventory: Inventory;
  private readonly hosts = new Map<string, HostRuntime>();
  private readonly ports = new Map<string, PortRuntime>();
  private readonly portsByMac = new Map<string, PortRuntime>();
  /** Cable or far-end state per port; absent means up. */
  private readonly carrier = new Map<string, LinkState>();
  private readonly switchBehaviours = new Map<string, SwitchBehaviour>();
  private readonly servers = new Map<string, Server>();
  private readonly switchFabric = new Map<string, string>();
  private readonly vlanFabric = new Map<number, string>();
  private readonly lunFabric = new Map<string, string>();
  /** LUN masking: which initiators may see each LUN. */
  private readonly masking = new Map<string, Set<string>>();
  private readonly hostByInitiator = new Map<string, string>();
  /** Asked on every VM heartbeat, so looked up once. */
  private readonly hypervisorImages: ReadonlySet<string>;

  constructor(
    inventory: Inventory,
    readonly recorder: LabRecorder,
  ) {
    super();
    this.setMaxListeners(0);
    this.inventory = inventory;
    this.hypervisorImages = new Set(inventory.images.filter((i) => i.hypervisor).map((i) => i.id));
    for (const s of inventory.servers) this.servers.set(s.id, s);
    for (const sw of inventory.switches) {
      this.switchFabric.set(sw.id, sw.fabric);
      this.switchBehaviours.set(sw.id, { extraLatencyMs: 0, jitterMs: 0 });
    }
    for (const v of inventory.vlans) this.vlanFabric.set(v.id, v.fabric);
    const arrayFabric = new Map(inventory.storageArrays.map((a) => [a.id, a.fabric]));
    for (const lun of inventory.luns) this.lunFabric.set(lun.id, arrayFabric.get(lun.array) ?? '');
    for (const host of inventory.hosts) {
      this.hosts.set(host.id, initialRuntime(host, inventory.images));
      if (host.hba) this.hostByInitiator.set(host.hba.initiator.toLowerCase(), host.id);
      for (const nic of host.nics) {
        const port: PortRuntime = {
          switchId: nic.switch,
          port: nic.port,
          hostId: host.id,
          mac: nic.mac,
          admin: 'up',
          oper: 'up',
          pvid: DEFAULT_VLAN,
          egress: new Set([DEFAULT_VLAN]),
          untagged: new Set([DEFAULT_VLAN]),
        };
        this.ports.set(portKey(nic.switch, nic.port), port);
        this.portsByMac.set(nic.mac, port);
      }
    }
    this.applyAssignments();
  }

  /** Production as the inventory describes it: assigned servers running, wired and granted their LUNs. */
  private applyAssignments(): void {
    const vlansByHost = new Map<string, number[]>();
    for (const a of this.inventory.assignments) {
      const server = this.servers.get(a.server);
      if (!server) continue;
      const hostId = a.mode === 'bare-metal' ? a.host : a.hypervisor;
      const rt = this.hosts.get(hostId);
      if (!rt) continue;
      if (a.mode === 'bare-metal') {
        rt.server = server.id;
        rt.image = server.image;
        rt.power = 'on';
        rt.phase = 'running';
      }
      vlansByHost.set(hostId, [...(vlansByHost.get(hostId) ?? []), ...server.vlans]);
      if (rt.host.hba) for (const lun of server.luns) this.grant(lun, rt.host.hba.initiator, { quiet: true });
    }
    for (const [hostId, vlans] of vlansByHost) {
      const host = this.host(hostId).host;
      for (const nic of host.nics) {
        const p = this.port(nic.switch, nic.port);
        const [first = DEFAULT_VLAN] = vlans;
        p.pvid = first;
        p.egress.clear();
        p.untagged.clear();
        for (const v of vlans) p.egress.add(v);
        p.untagged.add(first);
      }
    }
  }

  host(id: string): HostRuntime {
    const rt = this.hosts.get(id);
    if (!rt) throw new Error(`lab: no host "${id}"`);
    return rt;
  }

  hasHost(id: string): boolean {
    return this.hosts.has(id);
  }

  allHosts(): IterableIterator<HostRuntime> {
    return this.hosts.values();
  }

  server(id: string): Server | undefined {
    return this.servers.get(id);
  }

  port(switchId: string, port: number): PortRuntime {
    const p = this.ports.get(portKey(switchId, port));
    if (!p) throw new Error(`lab: switch "${switchId}" has no port ${port}`);
    return p;
  }

  switchBehaviour(switchId: string): SwitchBehaviour {
    const behaviour = this.switchBehaviours.get(switchId);
    if (!behaviour) throw new Error(`lab: no switch "${switchId}"`);
    return behaviour;
  }

  portsOf(switchId: string): PortRuntime[] {
    return [...this.ports.values()].filter((p) => p.switchId === switchId).sort((a, b) => a.port - b.port);
  }

  /** Power changes land here after the BMC's delay; the host simulator boots or stops on the event. */
  setPower(hostId: string, state: PowerState): void {
    const rt = this.host(hostId);
    if (rt.power === state) return;
    rt.power = state;
    this.recorder.record('host', state === 'on' ? 'powered-on' : 'powered-off', { host: hostId });
    if (state === 'off') this.setPhase(hostId, 'off');
    this.emit('power', hostId, state);
  }

  setPhase(hostId: string, phase: HostPhase): void {
    const rt = this.host(hostId);
    if (rt.phase === phase) return;
    rt.phase = phase;
    this.emit('phase', hostId, phase);
  }

  setPortAdmin(switchId: string, port: number, admin: LinkState): void {
    const p = this.port(switchId, port);
    p.admin = admin;
    this.updateOper(p);
  }

  /** Cable or far-end state: a burned host's ports go down whatever their admin status. */
  setPortCarrier(switchId: string, port: number, carrier: LinkState): void {
    const p = this.port(switchId, port);
    this.carrier.set(portKey(switchId, port), carrier);
    this.updateOper(p);
  }

  /** The port's cable or far-end state, apart from its admin status: what a device snapshot records beside oper. */
  carrierOf(switchId: string, port: number): LinkState {
    this.port(switchId, port);
    return this.carrier.get(portKey(switchId, port)) ?? 'up';
  }

  private updateOper(p: PortRuntime): void {
    const carrier = this.carrier.get(portKey(p.switchId, p.port)) ?? 'up';
    const oper: LinkState = p.admin === 'up' && carrier === 'up' ? 'up' : 'down';
    if (oper === p.oper) return;
    p.oper = oper;
    this.recorder.record('switch', oper === 'up' ? 'link-up' : 'link-down', {
      ...(p.hostId !== null && { host: p.hostId }),
      detail: { switch: p.switchId, port: p.port },
    });
    this.emit('link', p, oper);
  }

  /** A LUN made at run time (a drill's clone) on an array, so hosts on its fabric can see it. */
  addLun(lun: string, arrayId: string): void {
    const array = this.inventory.storageArrays.find((a) => a.id === arrayId);
    if (!array) throw new Error(`lab: no storage array "${arrayId}"`);
    this.lunFabric.set(lun, array.fabric);
  }

  removeLun(lun: string): void {
    this.lunFabric.delete(lun);
    this.masking.delete(lun);
  }

  hasLun(lun: string): boolean {
    return this.lunFabric.has(lun);
  }

  /** The inventory host an initiator belongs to, so SAN actions count per host. */
  hostOfInitiator(initiator: string): string | undefined {
    return this.hostByInitiator.get(initiator.toLowerCase());
  }

  grant(lun: string, initiator: string, options: { quiet?: boolean } = {}): void {
    let set = this.masking.get(lun);
    if (!set) this.masking.set(lun, (set = new Set()));
    set.add(initiator.toLowerCase());
    if (!options.quiet) this.recorder.record('san', 'grant', { host: this.hostOfInitiator(initiator), detail: { lun, initiator } });
  }

  revoke(lun: string, initiator: string): void {
    this.masking.get(lun)?.delete(initiator.toLowerCase());
    this.recorder.record('san', 'revoke', { host: this.hostOfInitiator(initiator), detail: { lun, initiator } });
  }

  /** Removes an initiator from the given LUNs (default every LUN): fabric fencing of a dead host. */
  revokeAll(initiator: string, within?: ReadonlySet<string>): string[] {
    const removed: string[] = [];
    for (const [lun, set] of this.masking) {
      if (within && !within.has(lun)) continue;
      if (set.delete(initiator.toLowerCase())) removed.push(lun);
    }
    this.recorder.record('san', 'revoke-all', { host: this.hostOfInitiator(initiator), detail: { initiator, luns: removed } });
    return removed;
  }

  initiatorsOf(lun: string): string[] {
    return [...(this.masking.get(lun) ?? [])].sort();
  }

  /** Every LUN masked to some initiator, sorted; a LUN whose last initiator was revoked is not one. */
  maskedLuns(): string[] {
    return [...this.masking].filter(([, set]) => set.size > 0).map(([lun]) => lun).sort();
  }

  lunsVisibleTo(initiator: string): string[] {
    const id = initiator.toLowerCase();
    return [...this.masking].filter(([, set]) => set.has(id)).map(([lun]) => lun).sort();
  }

  /** An initiator sees a LUN when masking allows it and both sit on the same storage fabric. */
  canSee(hostId: string, lun: string): boolean {
    const hba = this.host(hostId).host.hba;
    if (!hba) return false;
    return this.lunFabric.get(lun) === hba.fabric && (this.masking.get(lun)?.has(hba.initiator.toLowerCase()) ?? false);
  }

  /**
   * True when every NIC of the host is up and carries the VLAN on the VLAN's
   * own fabric. A host's NICs are bonded: one NIC without the VLAN drops its
   * share of the traffic, so a server is on a VLAN only when all of them are.
   */
  hostOnVlan(hostId: string, vlan: number): boolean {
    const nics = this.host(hostId).host.nics;
    return nics.length > 0 && nics.every((nic) => this.nicOnVlan(nic, vlan));
  }

  /** True when some NIC of the host still reaches the VLAN: what a check that a host left a VLAN must ask. */
  anyNicOnVlan(hostId: string, vlan: number): boolean {
    return this.host(hostId).host.nics.some((nic) => this.nicOnVlan(nic, vlan));
  }

  private nicOnVlan(nic: { switch: string; port: number }, vlan: number): boolean {
    const p = this.port(nic.switch, nic.port);
    return p.oper === 'up' && p.egress.has(vlan) && this.switchFabric.get(nic.switch) === (this.vlanFabric.get(vlan) ?? this.switchFabric.get(nic.switch));
  }

  /** Whether two NICs can talk: both ports up, same switch fabric, a VLAN in common. */
  reachable(macA: string, macB: string): boolean {
    const a = this.portByMac(macA);
    const b = this.portByMac(macB);
    if (!a || !b || a.oper !== 'up' || b.oper !== 'up') return false;
    if (this.switchFabric.get(a.switchId) !== this.switchFabric.get(b.switchId)) return false;
    for (const v of a.egress) if (b.egress.has(v)) return true;
    return false;
  }

  portByMac(mac: string): PortRuntime | undefined {
    return this.portsByMac.get(mac.toLowerCase());
  }

  /** Whether the inventory marks this image as a hypervisor's. */
  isHypervisorImage(imageId: string | null): boolean {
    return imageId !== null && this.hypervisorImages.has(imageId);
  }

  /** The host is up and running a hypervisor image: VMs can run on it. */
  runsHypervisor(hostId: string): boolean {
    const rt = this.host(hostId);
    return rt.power === 'on' && rt.phase === 'running' && this.isHypervisorImage(rt.image);
  }
}

function initialRuntime(host: Host, images: Inventory['images']): HostRuntime {
  const on = host.role !== 'spare';
  // A standing hypervisor already runs its architecture's hypervisor image.
  const hypervisorImage = host.role === 'hypervisor' ? images.find((i) => i.hypervisor && i.arch === host.arch)?.id : undefined;
  return {
    host,
    power: on ? 'on' : 'off',
    health: 'OK',
    bootTarget: 'None',
    bootEnabled: 'Disabled',
    phase: on ? 'running' : 'off',
    server: null,
    drill: false,
    image: hypervisorImage ?? null,
    bootError: null,
    isolated: false,
    workload: host.role === 'repurposable' ? (host.workload?.name ?? 'batch') : null,
    bmc: { reachable: true, extraLatencyMs: 0, failNext: 0 },
  };
}
