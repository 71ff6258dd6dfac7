/**
 * Everything the lab's devices hold, read from the simulators themselves (not
 * from the inventory) as one plain object: each host's power, BMC boot
 * override and what it runs; each switch's ports and VLAN static table; each
 * array's LUNs, clones and masking; each hypervisor's domains. Two snapshots
 * of equal state serialise to identical bytes, so a test can show that
 * something (a drill) left the devices exactly as it found them.
 *
 * Read synchronously from memory, so one snapshot is one instant of the lab.
 */
import type { LabHypervisors, DomainRunState, GuestPhase } from './hypervisor/hypervisor-simulator.ts';
import type { BmcSimulator } from './redfish/bmc-simulator.ts';
import type { SanSimulator } from './san/san-simulator.ts';
import type { SwitchSimulator } from './snmp/switch-simulator.ts';
import type { BootEnabled, BootTarget, Health, HostPhase, LinkState, PowerState, World } from './world.ts';

export interface DeviceSnapshot {
  /** By host id. */
  hosts: Record<string, HostSnapshot>;
  /** By switch id. */
  switches: Record<string, SwitchSnapshot>;
  /** By array id. */
  arrays: Record<string, ArraySnapshot>;
  /** Masking of LUNs no array serves (initiator → LUNs): empty unless something granted a LUN behind the arrays' backs. */
  strayMasks: Record<string, string[]>;
  /** Defined domains by hypervisor host, then by domain name; a host with none is absent. */
  hypervisors: Record<string, Record<string, DomainSnapshot>>;
}

export interface HostSnapshot {
  power: PowerState;
  /** A Redfish reset the BMC accepted that has not landed yet, else null. */
  pendingReset: string | null;
  phase: HostPhase;
  /** The BMC's boot source override (Boot.BootSourceOverrideTarget / Enabled). */
  bootOverride: { target: BootTarget; enabled: BootEnabled };
  /** The server the host runs, or boots from its disk next; a PXE boot writes it, nothing erases it. */
  server: string | null;
  image: string | null;
  /** It runs (or would boot from disk) a drill's rehearsal. */
  drill: boolean;
  /** A repurposable host's preemptible work; a PXE boot wipes it. */
  workload: string | null;
  bootError: string | null;
  health: Health;
  /** Injected faults: the lab's knobs rather than device settings, kept so that nothing the lab holds is left out. */
  faults: { isolated: boolean; bmcReachable: boolean; bmcExtraLatencyMs: number; bmcFailNext: number };
}

export interface SwitchSnapshot {
  /** By port number. */
  ports: Record<string, PortSnapshot>;
  /** dot1qVlanStaticTable as the agent serves it, by VLAN id: every VLAN in the switch's database. */
  vlans: Record<string, VlanSnapshot>;
  faults: { extraLatencyMs: number; jitterMs: number };
}

export interface PortSnapshot {
  /** The host cabled to the port (wiring, never changes; it names the port in a diff). */
  host: string | null;
  admin: LinkState;
  oper: LinkState;
  /** The cable or far end: down for a burned host whatever the admin status. */
  carrier: LinkState;
  pvid: number;
}

export interface VlanSnapshot {
  name: string;
  /** Member ports, ascending. */
  egress: number[];
  untagged: number[];
}

export interface ArraySnapshot {
  /** By LUN id: inventory LUNs and clones. */
  luns: Record<string, LunSnapshot>;
  /** LUN masking, initiator → the LUNs of this array it may see; an initiator with none is absent. */
  masks: Record<string, string[]>;
}

export interface LunSnapshot {
  sizeGiB: number;
  /** The LUN a clone was made from; null for an inventory LUN. */
  cloneOf: string | null;
}

export interface DomainSnapshot {
  state: DomainRunState;
  phase: GuestPhase;
  problems: string[];
  /** The definition exactly as defined. */
  xml: string;
}

/** What a snapshot reads: the world and the simulators that keep state of their own. */
export interface DeviceSources {
  world: World;
  bmc: Pick<BmcSimulator, 'pendingReset'>;
  switches: Pick<SwitchSimulator, 'vlanTable'>;
  san: Pick<SanSimulator, 'luns'>;
  hypervisors: Pick<LabHypervisors, 'allDomains'>;
}

/** Code-unit order: the same on every machine and locale. */
export const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function captureDeviceSnapshot(sources: DeviceSources): DeviceSnapshot {
  const { world } = sources;
  return {
    hosts: hostsOf(sources),
    switches: switchesOf(sources),
    ...storageOf(sources),
    hypervisors: hypervisorsOf(sources),
  };

  function hostsOf({ bmc }: DeviceSources): Record<string, HostSnapshot> {
    const hosts: Record<string, HostSnapshot> = {};
    for (const rt of [...world.allHosts()].sort((a, b) => byCodeUnit(a.host.id, b.host.id))) {
      hosts[rt.host.id] = {
        power: rt.power,
        pendingReset: bmc.pendingReset(rt.host.id) ?? null,
        phase: rt.phase,
        bootOverride: { target: rt.bootTarget, enabled: rt.bootEnabled },
        server: rt.server,
        image: rt.image,
        drill: rt.drill,
        workload: rt.workload,
        bootError: rt.bootError,
        health: rt.health,
        faults: { isolated: rt.isolated, bmcReachable: rt.bmc.reachable, bmcExtraLatencyMs: rt.bmc.extraLatencyMs, bmcFailNext: rt.bmc.failNext },
      };
    }
    return hosts;
  }

  function switchesOf({ switches }: DeviceSources): Record<string, SwitchSnapshot> {
    const out: Record<string, SwitchSnapshot> = {};
    for (const sw of [...world.inventory.switches].sort((a, b) => byCodeUnit(a.id, b.id))) {
      const ports: Record<string, PortSnapshot> = {};
      for (const p of world.portsOf(sw.id)) {
        ports[p.port] = { host: p.hostId, admin: p.admin, oper: p.oper, carrier: world.carrierOf(sw.id, p.port), pvid: p.pvid };
      }
      const vlans: Record<string, VlanSnapshot> = {};
      for (const row of switches.vlanTable(sw.id)) vlans[row.vlan] = { name: row.name, egress: row.egress, untagged: row.untagged };
      const { extraLatencyMs, jitterMs } = world.switchBehaviour(sw.id);
      out[sw.id] = { ports, vlans, faults: { extraLatencyMs, jitterMs } };
    }
    return out;
  }

  function storageOf({ san }: DeviceSources): Pick<DeviceSnapshot, 'arrays' | 'strayMasks'> {
    const arrays: Record<string, ArraySnapshot> = {};
    for (const a of [...world.inventory.storageArrays].sort((x, y) => byCodeUnit(x.id, y.id))) arrays[a.id] = { luns: {}, masks: {} };
    const arrayOfLun = new Map<string, ArraySnapshot>();
    for (const lun of san.luns()) {
      const array = arrays[lun.array];
      if (array === undefined) continue;
      array.luns[lun.id] = { sizeGiB: lun.sizeGiB, cloneOf: lun.cloneOf ?? null };
      arrayOfLun.set(lun.id, array);
    }
    // Built per LUN, in LUN order, so each initiator's list comes out sorted; initiators are sorted below.
    const strayMasks: Record<string, string[]> = {};
    for (const lun of world.maskedLuns()) {
      const masks = arrayOfLun.get(lun)?.masks ?? strayMasks;
      for (const initiator of world.initiatorsOf(lun)) (masks[initiator] ??= []).push(lun);
    }
    for (const array of Object.values(arrays)) array.masks = sortedKeys(array.masks);
    return { arrays, strayMasks: sortedKeys(strayMasks) };
  }

  function hypervisorsOf({ hypervisors }: DeviceSources): DeviceSnapshot['hypervisors'] {
    const out: DeviceSnapshot['hypervisors'] = {};
    for (const d of hypervisors.allDomains()) {
      (out[d.hypervisor] ??= {})[d.name] = { state: d.state, phase: d.phase, problems: [...d.problems], xml: d.xml };
    }
    return out;
  }
}

function sortedKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => byCodeUnit(a, b)));
}

/**
 * Canonical JSON of a snapshot: keys sorted at every level, no whitespace.
 * Equal device state gives equal bytes however the object was built.
 */
export function serializeDeviceSnapshot(snapshot: DeviceSnapshot): string {
  return canonicalJson(snapshot);
}

/** JSON with every object's keys in code-unit order (JavaScript still puts integer keys first, ascending). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? sortedKeys(v as Record<string, unknown>) : v,
  );
}
