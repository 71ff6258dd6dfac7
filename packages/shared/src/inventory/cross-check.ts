import type { Host, Inventory, Server, Vlan } from '../schemas/inventory.schema.ts';
import { formatPath } from '../schemas/validation.ts';

type Path = (string | number)[];

export interface CrossCheckProblem {
  path: Path;
  message: string;
}

type Report = (path: Path, message: string) => void;

/** Where each storage and network id leads, for the reachability checks. */
interface Fabrics {
  /** Network fabric of each switch. */
  switches: ReadonlyMap<string, string>;
  vlans: ReadonlyMap<number, Vlan>;
  /** Storage fabric of each LUN, through its array; absent when the LUN or its array is unknown. */
  luns: ReadonlyMap<string, string>;
}

/** An assignment whose server and target host both exist. */
interface Placement {
  path: Path;
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
  checkDrillVlans(inv.vlans, report);

  // An HBA's fabric may have no array yet (a spare cabled in advance); a LUN without its array cannot be granted.
  const lunFabrics = new Map<string, string>();
  inv.luns.forEach((lun, l) => {
    const array = arrays.get(lun.array);
    if (array === undefined) report(['luns', l, 'array'], `unknown storage array ${quote(lun.array)}`);
    else lunFabrics.set(lun.id, array.fabric);
  });

  const macs = new Map<string, Path>();
  const switchPorts = new Map<string, Path>();
  inv.hosts.forEach((host, h) => {
    const rack = racks.get(host.rack);
    if (rack === undefined) report(['hosts', h, 'rack'], `unknown rack ${quote(host.rack)}`);
    else if (rack.site !== host.site) {
      report(['hosts', h, 'site'], `site ${quote(host.site)} differs from site ${quote(rack.site)} of rack ${quote(rack.id)}`);
    }
    if (host.tor !== undefined && !switches.has(host.tor)) report(['hosts', h, 'tor'], `unknown switch ${quote(host.tor)}`);
    host.nics.forEach((nic, n) => {
      const nicPath = ['hosts', h, 'nics', n];
      claim(macs, nic.mac, [...nicPath, 'mac'], `duplicate MAC ${nic.mac}`, report);
      if (!switches.has(nic.switch)) report([...nicPath, 'switch'], `unknown switch ${quote(nic.switch)}`);
      // Two NICs on one port would put both hosts on whatever VLAN the port is set to.
      claim(switchPorts, `${nic.switch}:${nic.port}`, [...nicPath, 'port'], `switch port ${nic.switch}:${nic.port} is cabled twice`, report);
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
  const assignedServers = new Map<string, Path>();
  const bareMetalHosts = new Map<string, Path>();
  const vmMemory = new Map<string, number>();
  inv.assignments.forEach((assignment, a) => {
    const path = ['assignments', a];
    const server = servers.get(assignment.server);
    if (server === undefined) report([...path, 'server'], `unknown server ${quote(assignment.server)}`);
    claim(assignedServers, assignment.server, [...path, 'server'], `server ${quote(assignment.server)} is assigned twice`, report);
    let host: Host | undefined;
    if (assignment.mode === 'bare-metal') {
      host = hosts.get(assignment.host);
      if (host === undefined) report([...path, 'host'], `unknown host ${quote(assignment.host)}`);
      else claim(bareMetalHosts, assignment.host, [...path, 'host'], `host ${quote(assignment.host)} already runs a server`, report);
    } else {
      host = hosts.get(assignment.hypervisor);
      if (host === undefined) report([...path, 'hypervisor'], `unknown hypervisor host ${quote(assignment.hypervisor)}`);
    }
    if (server === undefined || host === undefined) return;

    const placement: Placement = { path, server, host, mode: assignment.mode, field: assignment.mode === 'vm' ? 'hypervisor' : 'host' };
    checkArch(placement, report);
    if (placement.mode === 'bare-metal') checkBareMetalFit(placement, report);
    else checkVm(placement, vmMemory, report);
    checkReach(placement, fabrics, report);
  });

  return problems;
}

/** A drill moves a server onto its VLAN's drill twin; a twin that is in production, or shared, joins what the drill must keep apart. */
function checkDrillVlans(vlans: readonly Vlan[], report: Report): void {
  const production = new Map<number, Vlan>();
  for (const vlan of vlans) if (!production.has(vlan.id)) production.set(vlan.id, vlan);
  const twins = new Map<number, Path>();
  vlans.forEach((vlan, v) => {
    if (vlan.drillVlan === undefined) return;
    const path = ['vlans', v, 'drillVlan'];
    const clash = production.get(vlan.drillVlan);
    if (clash !== undefined) {
      report(path, `drill VLAN ${vlan.drillVlan} of VLAN ${vlan.id} is production VLAN ${clash.id} (${quote(clash.name)})`);
    } else {
      claim(twins, vlan.drillVlan, path, `drill VLAN ${vlan.drillVlan} of VLAN ${vlan.id} is also another VLAN's drill VLAN`, report);
    }
  });
}

/**
 * Hosts that share a BMC address (one Redfish endpoint for a chassis) must
 * each name their own system; a host naming none gets the BMC's only system,
 * so it can share the address with no other host.
 */
function checkBmcSystems(hosts: readonly Host[], report: Report): void {
  const byAddress = new Map<string, { id: string; h: number; systemId: string | undefined }[]>();
  hosts.forEach((host, h) => {
    const { address, systemId } = host.bmc;
    const sharing = byAddress.get(address) ?? [];
    const clash = sharing.find((other) => other.systemId === undefined || systemId === undefined || other.systemId === systemId);
    if (clash !== undefined) {
      const system = systemId ?? clash.systemId;
      const which = system === undefined ? 'with no systemId' : `system ${quote(system)}`;
      report(
        ['hosts', h, 'bmc', systemId === undefined ? 'address' : 'systemId'],
        `BMC ${address} ${which} is also host ${quote(clash.id)}'s (first at ${formatPath(['hosts', clash.h, 'bmc'])}); hosts sharing a BMC need distinct systemIds`,
      );
    }
    sharing.push({ id: host.id, h, systemId });
    byAddress.set(address, sharing);
  });
}

function checkArch({ path, server, host, mode, field }: Placement, report: Report): void {
  if (server.arch === host.arch) return;
  const as = mode === 'vm' ? 'as a VM on hypervisor' : 'on host';
  report([...path, field], `server ${quote(server.id)} is ${server.arch} but cannot run ${as} ${quote(host.id)}, which is ${host.arch}`);
}

function checkBareMetalFit({ path, server, host, field }: Placement, report: Report): void {
  if (host.cpus < server.cpus) {
    report([...path, field], `server ${quote(server.id)} needs ${server.cpus} cpus but host ${quote(host.id)} has ${host.cpus}`);
  }
  if (host.memoryGiB < server.memoryGiB) {
    report([...path, field], `server ${quote(server.id)} needs ${server.memoryGiB} GiB of memory but host ${quote(host.id)} has ${host.memoryGiB} GiB`);
  }
}

/**
 * A VM needs a server that may run virtualised, a host that can run a
 * hypervisor, and room in that host's memory: VM memory is never
 * overcommitted. `vmMemory` sums, per hypervisor, the VMs assigned so far;
 * only the VM that first goes over is reported.
 */
function checkVm({ path, server, host }: Placement, vmMemory: Map<string, number>, report: Report): void {
  if (server.bareMetalOnly) report([...path, 'mode'], `server ${quote(server.id)} is bareMetalOnly and cannot run as a VM`);
  if (host.role !== 'hypervisor' && !host.hypervisorCapable) {
    report([...path, 'hypervisor'], `host ${quote(host.id)} is neither a hypervisor nor hypervisorCapable`);
  }
  const before = vmMemory.get(host.id) ?? 0;
  const after = before + server.memoryGiB;
  vmMemory.set(host.id, after);
  if (after > host.memoryGiB && before <= host.memoryGiB) {
    report(
      [...path, 'hypervisor'],
      `server ${quote(server.id)} brings the VMs on hypervisor ${quote(host.id)} to ${after} GiB of memory, more than its ${host.memoryGiB} GiB (memory is not overcommitted)`,
    );
  }
}

/** The host must be cabled to every network fabric of the server's VLANs and have an HBA on each storage fabric of its LUNs. */
function checkReach({ path, server, host, field }: Placement, fabrics: Fabrics, report: Report): void {
  const reached = new Set(host.nics.map((nic) => fabrics.switches.get(nic.switch)));
  for (const id of server.vlans) {
    const vlan = fabrics.vlans.get(id);
    // An unknown VLAN is reported with the server.
    if (vlan === undefined || reached.has(vlan.fabric)) continue;
    report([...path, field], `host ${quote(host.id)} has no NIC on fabric ${quote(vlan.fabric)} of VLAN ${id} that server ${quote(server.id)} needs`);
  }
  for (const lun of server.luns) {
    const fabric = fabrics.luns.get(lun);
    if (fabric === undefined || host.hba?.fabric === fabric) continue;
    const has = host.hba === undefined ? 'no HBA' : `its HBA on fabric ${quote(host.hba.fabric)}`;
    report([...path, field], `host ${quote(host.id)} has ${has}, but LUN ${quote(lun)} of server ${quote(server.id)} is on fabric ${quote(fabric)}`);
  }
}

/** Maps each id to its first holder and reports every later holder of the same id. */
function indexById<T extends { id: string | number }>(
  items: readonly T[],
  section: string,
  what: string,
  report: Report,
): Map<T['id'], T> {
  const byId = new Map<T['id'], T>();
  const firstPaths = new Map<T['id'], Path>();
  items.forEach((item, i) => {
    if (claim(firstPaths, item.id, [section, i, 'id'], `duplicate ${what} id ${quote(item.id)}`, report)) byId.set(item.id, item);
  });
  return byId;
}

/** Records where `key` was first seen; true if this is the first time, else reports a duplicate. */
function claim<K>(seen: Map<K, Path>, key: K, path: Path, message: string, report: Report): boolean {
  const first = seen.get(key);
  if (first === undefined) {
    seen.set(key, path);
    return true;
  }
  report(path, `${message} (first at ${formatPath(first)})`);
  return false;
}

function quote(id: string | number): string {
  return typeof id === 'number' ? String(id) : `"${id}"`;
}
