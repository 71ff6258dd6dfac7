import type { Inventory } from '../schemas/inventory.schema.ts';
import { formatPath } from '../schemas/validation.ts';

type Path = (string | number)[];

export interface CrossCheckProblem {
  path: Path;
  message: string;
}

type Report = (path: Path, message: string) => void;

/**
 * The rules no single object's schema can see: uniqueness across the file and
 * references from one section to another. Runs on an inventory that already
 * passed its schema; returns every problem, in file order per section.
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

  // An HBA's fabric may have no array yet (a spare cabled in advance); a LUN without its array cannot be granted.
  inv.luns.forEach((lun, l) => {
    if (!arrays.has(lun.array)) report(['luns', l, 'array'], `unknown storage array ${quote(lun.array)}`);
  });

  const macs = new Map<string, Path>();
  const switchPorts = new Map<string, Path>();
  inv.hosts.forEach((host, h) => {
    const rack = racks.get(host.rack);
    if (rack === undefined) report(['hosts', h, 'rack'], `unknown rack ${quote(host.rack)}`);
    else if (rack.site !== host.site) {
      report(['hosts', h, 'site'], `site ${quote(host.site)} differs from site ${quote(rack.site)} of rack ${quote(rack.id)}`);
    }
    host.nics.forEach((nic, n) => {
      const nicPath = ['hosts', h, 'nics', n];
      claim(macs, nic.mac, [...nicPath, 'mac'], `duplicate MAC ${nic.mac}`, report);
      if (!switches.has(nic.switch)) report([...nicPath, 'switch'], `unknown switch ${quote(nic.switch)}`);
      // Two NICs on one port would put both hosts on whatever VLAN the port is set to.
      claim(switchPorts, `${nic.switch}:${nic.port}`, [...nicPath, 'port'], `switch port ${nic.switch}:${nic.port} is cabled twice`, report);
    });
  });

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

  const assignedServers = new Map<string, Path>();
  const bareMetalHosts = new Map<string, Path>();
  inv.assignments.forEach((assignment, a) => {
    const path = ['assignments', a];
    if (!servers.has(assignment.server)) report([...path, 'server'], `unknown server ${quote(assignment.server)}`);
    claim(assignedServers, assignment.server, [...path, 'server'], `server ${quote(assignment.server)} is assigned twice`, report);
    if (assignment.mode === 'bare-metal') {
      if (!hosts.has(assignment.host)) report([...path, 'host'], `unknown host ${quote(assignment.host)}`);
      else claim(bareMetalHosts, assignment.host, [...path, 'host'], `host ${quote(assignment.host)} already runs a server`, report);
    } else if (!hosts.has(assignment.hypervisor)) {
      report([...path, 'hypervisor'], `unknown hypervisor host ${quote(assignment.hypervisor)}`);
    }
  });

  return problems;
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
