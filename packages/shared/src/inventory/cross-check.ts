import type { Host, Inventory, Server, Vlan } from '../schemas/inventory.schema.ts';
import { formatPath } from '../schemas/validation.ts';

type Path = (string | number)[];

export interface CrossCheckProblem {
  path: Path;
  message: string;
}

type Report = (path: Path, message: string) => void;

/** The first holder of each id in a section. */
interface ById<K, T> {
  get(id: K): T | undefined;
  has(id: K): boolean;
}

/** Where each storage and network id leads, for the reachability checks. */
interface Fabrics {
  /** Network fabric of each switch. */
  switches: ReadonlyMap<string, string>;
  vlans: ById<number, Vlan>;
  /** Storage fabric of each LUN, through its array; absent when the LUN or its array is unknown. */
  luns: ReadonlyMap<string, string>;
}

/** An assignment whose server and target host both exist. */
interface Placement {
  /** Index into `assignments`. */
  a: number;
  server: Server;
  host: Host;
  mode: 'bare-metal' | 'vm';
  /** `host` or `hypervisor`: the assignment's field that names the host. */
  field: string;
}

/**
 * The rules no single object's schema can see: uniqueness across the file,
 * references from one section to another, and assignments that cannot work
 * (wrong arch, too small, unreachable VLAN or LUN). Runs on an inventory that
 * already passed its schema; returns every problem, in file order per section.
 *
 * A 50,000-host inventory has some 100,000 MACs, switch ports and ids to tell
 * apart, so what each was first seen at is kept as an index, and a path or a
 * message is built only for a problem.
 */
export function crossCheck(inv: Inventory): CrossCheckProblem[] {
  const problems: CrossCheckProblem[] = [];
  const report: Report = (path, message) => problems.push({ path, message });

  const racks = indexById(inv.racks, 'racks', 'rack', report);
  const switches = indexById(inv.switches, 'switches', 'switch', report);
  const vlans = indexById(inv.vlans, 'vlans', 'VLAN', report);
  const arrays = indexById(inv.storageArrays, 'storageArrays', 'storage array', report);
  const luns = indexById(inv.luns, 'luns', 'LUN', report);
  const images = indexById(inv.images, 'images', 'image', report);
  const hosts = indexById(inv.hosts, 'hosts', 'host', report);
  const servers = indexById(inv.servers, 'servers', 'server', report);

  inv.racks.forEach((rack, r) => {
    if (rack.tor !== undefined && !switches.has(rack.tor)) report(['racks', r, 'tor'], `unknown switch ${quote(rack.tor)}`);
  });
  checkDrillVlans(inv.vlans, vlans, report);

  // An HBA's fabric may have no array yet (a spare cabled in advance); a LUN without its array cannot be granted.
  const lunFabrics = new Map<string, string>();
  inv.luns.forEach((lun, l) => {
    const array = arrays.get(lun.array);
    if (array === undefined) report(['luns', l, 'array'], `unknown storage array ${quote(lun.array)}`);
    else lunFabrics.set(lun.id, array.fabric);
  });

  // A NIC as one number: hosts[h].nics[n] is n * hostCount + h.
  const hostCount = inv.hosts.length;
  const nicPath = (nic: number, field: string): Path => ['hosts', nic % hostCount, 'nics', Math.floor(nic / hostCount), field];
  const macs = new Map<string, number>();
  /** The NIC on each port of each switch. */
  const cabling = new Map<string, Map<number, number>>();
  inv.hosts.forEach((host, h) => {
    const rack = racks.get(host.rack);
    if (rack === undefined) report(['hosts', h, 'rack'], `unknown rack ${quote(host.rack)}`);
    else if (rack.site !== host.site) {
      report(['hosts', h, 'site'], `site ${quote(host.site)} differs from site ${quote(rack.site)} of rack ${quote(rack.id)}`);
    }
    if (host.tor !== undefined && !switches.has(host.tor)) report(['hosts', h, 'tor'], `unknown switch ${quote(host.tor)}`);
    host.nics.forEach((nic, n) => {
      const at = n * hostCount + h;
      const firstMac = claim(macs, nic.mac, at);
      if (firstMac !== undefined) report(nicPath(at, 'mac'), `duplicate MAC ${nic.mac}${firstAt(nicPath(firstMac, 'mac'))}`);
      if (!switches.has(nic.switch)) report(nicPath(at, 'switch'), `unknown switch ${quote(nic.switch)}`);
      // Two NICs on one port would put both hosts on whatever VLAN the port is set to.
      let ports = cabling.get(nic.switch);
      if (ports === undefined) cabling.set(nic.switch, (ports = new Map()));
      const firstPort = claim(ports, nic.port, at);
      if (firstPort !== undefined) {
        report(nicPath(at, 'port'), `switch port ${nic.switch}:${nic.port} is cabled twice${firstAt(nicPath(firstPort, 'port'))}`);
      }
    });
  });
  checkBmcSystems(inv.hosts, report);

  inv.servers.forEach((server, s) => {
    const image = images.get(server.image);
    if (image === undefined) report(['servers', s, 'image'], `unknown image ${quote(server.image)}`);
    else if (image.arch !== server.arch) {
      report(['servers', s, 'image'], `image ${quote(image.id)} is ${image.arch} but the server is ${server.arch}`);
    }
    server.vlans.forEach((vlan, v) => {
      if (!vlans.has(vlan)) report(['servers', s, 'vlans', v], `unknown VLAN ${vlan}`);
    });
    server.luns.forEach((lun, l) => {
      if (!luns.has(lun)) report(['servers', s, 'luns', l], `unknown LUN ${quote(lun)}`);
    });
  });

  const fabrics: Fabrics = { switches: new Map(inv.switches.map((sw) => [sw.id, sw.fabric])), vlans, luns: lunFabrics };
  const assignedServers = new Map<string, number>();
  const bareMetalHosts = new Map<string, number>();
  const vmMemory = new Map<string, number>();
  inv.assignments.forEach((assignment, a) => {
    const server = servers.get(assignment.server);
    if (server === undefined) report(['assignments', a, 'server'], `unknown server ${quote(assignment.server)}`);
    const firstAssigned = claim(assignedServers, assignment.server, a);
    if (firstAssigned !== undefined) {
      report(['assignments', a, 'server'], `server ${quote(assignment.server)} is assigned twice${firstAt(['assignments', firstAssigned, 'server'])}`);
    }
    let host: Host | undefined;
    if (assignment.mode === 'bare-metal') {
      host = hosts.get(assignment.host);
      const firstRun = host === undefined ? undefined : claim(bareMetalHosts, assignment.host, a);
      if (host === undefined) report(['assignments', a, 'host'], `unknown host ${quote(assignment.host)}`);
      else if (firstRun !== undefined) {
        report(['assignments', a, 'host'], `host ${quote(assignment.host)} already runs a server${firstAt(['assignments', firstRun, 'host'])}`);
      }
    } else {
      host = hosts.get(assignment.hypervisor);
      if (host === undefined) report(['assignments', a, 'hypervisor'], `unknown hypervisor host ${quote(assignment.hypervisor)}`);
    }
    if (server === undefined || host === undefined) return;

    const placement: Placement = { a, server, host, mode: assignment.mode, field: assignment.mode === 'vm' ? 'hypervisor' : 'host' };
    checkArch(placement, report);
    if (placement.mode === 'bare-metal') checkBareMetalFit(placement, report);
    else checkVm(placement, vmMemory, report);
    checkReach(placement, fabrics, report);
  });

  return problems;
}

/** A drill moves a server onto its VLAN's drill twin; a twin that is in production, or shared, joins what the drill must keep apart. */
function checkDrillVlans(vlans: readonly Vlan[], production: ById<number, Vlan>, report: Report): void {
  const twins = new Map<number, number>();
  vlans.forEach((vlan, v) => {
    if (vlan.drillVlan === undefined) return;
    const path = ['vlans', v, 'drillVlan'];
    const clash = production.get(vlan.drillVlan);
    if (clash !== undefined) {
      report(path, `drill VLAN ${vlan.drillVlan} of VLAN ${vlan.id} is production VLAN ${clash.id} (${quote(clash.name)})`);
      return;
    }
    const first = claim(twins, vlan.drillVlan, v);
    if (first !== undefined) {
      report(path, `drill VLAN ${vlan.drillVlan} of VLAN ${vlan.id} is also another VLAN's drill VLAN${firstAt(['vlans', first, 'drillVlan'])}`);
    }
  });
}

/**
 * Hosts that share a BMC address (one Redfish endpoint for a chassis) must
 * each name their own system; a host naming none gets the BMC's only system,
 * so it can share the address with no other host.
 */
function checkBmcSystems(hosts: readonly Host[], report: Report): void {
  /** The first host at each BMC address. */
  const firstAtAddress = new Map<string, number>();
  /** Per address that hosts share: the first host naming each system, or naming none (undefined). */
  const systemsAtAddress = new Map<string, Map<string | undefined, number>>();
  hosts.forEach((host, h) => {
    const { address, systemId } = host.bmc;
    const first = claim(firstAtAddress, address, h);
    if (first === undefined) return;
    let systems = systemsAtAddress.get(address);
    if (systems === undefined) {
      systems = new Map([[hosts[first]?.bmc.systemId, first]]);
      systemsAtAddress.set(address, systems);
    }
    // The earliest host this one clashes with: any host when it names no system, else one naming none or the same.
    const c = systemId === undefined ? first : earliest(systems.get(undefined), systems.get(systemId));
    const clash = c === undefined ? undefined : hosts[c];
    if (c !== undefined && clash !== undefined) {
      const system = systemId ?? clash.bmc.systemId;
      const which = system === undefined ? 'with no systemId' : `system ${quote(system)}`;
      report(
        ['hosts', h, 'bmc', systemId === undefined ? 'address' : 'systemId'],
        `BMC ${address} ${which} is also host ${quote(clash.id)}'s${firstAt(['hosts', c, 'bmc'])}; hosts sharing a BMC need distinct systemIds`,
      );
    }
    if (!systems.has(systemId)) systems.set(systemId, h);
  });
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function checkArch({ a, server, host, mode, field }: Placement, report: Report): void {
  if (server.arch === host.arch) return;
  const as = mode === 'vm' ? 'as a VM on hypervisor' : 'on host';
  report(['assignments', a, field], `server ${quote(server.id)} is ${server.arch} but cannot run ${as} ${quote(host.id)}, which is ${host.arch}`);
}

function checkBareMetalFit({ a, server, host, field }: Placement, report: Report): void {
  if (host.cpus < server.cpus) {
    report(['assignments', a, field], `server ${quote(server.id)} needs ${server.cpus} cpus but host ${quote(host.id)} has ${host.cpus}`);
  }
  if (host.memoryGiB < server.memoryGiB) {
    report(['assignments', a, field], `server ${quote(server.id)} needs ${server.memoryGiB} GiB of memory but host ${quote(host.id)} has ${host.memoryGiB} GiB`);
  }
}

/**
 * A VM needs a server that may run virtualised, a host that can run a
 * hypervisor, and room in that host's memory: VM memory is never
 * overcommitted. `vmMemory` sums, per hypervisor, the VMs assigned so far;
 * only the VM that first goes over is reported.
 */
function checkVm({ a, server, host }: Placement, vmMemory: Map<string, number>, report: Report): void {
  if (server.bareMetalOnly) report(['assignments', a, 'mode'], `server ${quote(server.id)} is bareMetalOnly and cannot run as a VM`);
  if (host.role !== 'hypervisor' && !host.hypervisorCapable) {
    report(['assignments', a, 'hypervisor'], `host ${quote(host.id)} is neither a hypervisor nor hypervisorCapable`);
  }
  const before = vmMemory.get(host.id) ?? 0;
  const after = before + server.memoryGiB;
  vmMemory.set(host.id, after);
  if (after > host.memoryGiB && before <= host.memoryGiB) {
    report(
      ['assignments', a, 'hypervisor'],
      `server ${quote(server.id)} brings the VMs on hypervisor ${quote(host.id)} to ${after} GiB of memory, more than its ${host.memoryGiB} GiB (memory is not overcommitted)`,
    );
  }
}

/** The host must be cabled to every network fabric of the server's VLANs and have an HBA on each storage fabric of its LUNs. */
function checkReach({ a, server, host, field }: Placement, fabrics: Fabrics, report: Report): void {
  for (const id of server.vlans) {
    const vlan = fabrics.vlans.get(id);
    // An unknown VLAN is reported with the server.
    if (vlan === undefined || host.nics.some((nic) => fabrics.switches.get(nic.switch) === vlan.fabric)) continue;
    report(['assignments', a, field], `host ${quote(host.id)} has no NIC on fabric ${quote(vlan.fabric)} of VLAN ${id} that server ${quote(server.id)} needs`);
  }
  for (const lun of server.luns) {
    const fabric = fabrics.luns.get(lun);
    if (fabric === undefined || host.hba?.fabric === fabric) continue;
    const has = host.hba === undefined ? 'no HBA' : `its HBA on fabric ${quote(host.hba.fabric)}`;
    report(['assignments', a, field], `host ${quote(host.id)} has ${has}, but LUN ${quote(lun)} of server ${quote(server.id)} is on fabric ${quote(fabric)}`);
  }
}

/** Maps each id to its first holder and reports every later holder of the same id. */
function indexById<T extends { id: string | number }>(
  items: readonly T[],
  section: string,
  what: string,
  report: Report,
): ById<T['id'], T> {
  const firstIndex = new Map<T['id'], number>();
  items.forEach((item, i) => {
    const first = claim(firstIndex, item.id, i);
    if (first !== undefined) report([section, i, 'id'], `duplicate ${what} id ${quote(item.id)}${firstAt([section, first, 'id'])}`);
  });
  return {
    get: (id) => {
      const i = firstIndex.get(id);
      return i === undefined ? undefined : items[i];
    },
    has: (id) => firstIndex.has(id),
  };
}

/** Records `at` as where `key` was first seen, unless it was seen before: then returns where. */
function claim<K>(seen: Map<K, number>, key: K, at: number): number | undefined {
  const first = seen.get(key);
  if (first === undefined) seen.set(key, at);
  return first;
}

function firstAt(path: Path): string {
  return ` (first at ${formatPath(path)})`;
}

function quote(id: string | number): string {
  return typeof id === 'number' ? String(id) : `"${id}"`;
}
