/**
 * A valid inventory of any size, built here rather than by the lab's
 * generator (shared sits below the lab), and written as the lab writes it.
 * It has the same shape: 40 hosts to a rack, two NICs and an HBA each, one
 * BMC per rack with a system per host, production hosts running a server
 * each, spares, repurposable hosts and hypervisors running VMs.
 */
import { stringify } from 'yaml';
import type { InventoryInput } from '../src/schemas/inventory.schema.ts';

type Section<K extends keyof InventoryInput> = NonNullable<InventoryInput[K]>;

const HOSTS_PER_RACK = 40;
const RACKS_PER_SITE = 250;
const VLANS_PER_SITE = 8;
const VMS_PER_HYPERVISOR = 4;

function hexBytes(value: number, bytes: number): string {
  const parts: string[] = [];
  for (let i = bytes - 1; i >= 0; i--) parts.push(((value >>> (8 * i)) & 0xff).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** A valid inventory of `hostCount` hosts; every fifth rack is aarch64. */
export function generatedInventory(hostCount: number): InventoryInput {
  const racks: Section<'racks'> = [];
  const switches: Section<'switches'> = [];
  const vlans: Section<'vlans'> = [];
  const storageArrays: Section<'storageArrays'> = [];
  const luns: Section<'luns'> = [];
  const hosts: Section<'hosts'> = [];
  const servers: Section<'servers'> = [];
  const assignments: Section<'assignments'> = [];
  const archs = ['x86_64', 'aarch64'] as const;
  const images = archs.flatMap((arch) => [
    { id: `rhel9-${arch}`, arch, url: `http://127.0.0.1:8080/images/rhel9-${arch}.ipxe`, hypervisor: false },
    { id: `kvm-${arch}`, arch, url: `http://127.0.0.1:8080/images/kvm-${arch}.ipxe`, hypervisor: true },
  ]);

  type Arch = (typeof archs)[number];
  const addServer = (site: number, arch: Arch, size: { cpus: number; memoryGiB: number }, bareMetalOnly: boolean): string => {
    const id = `srv-${String(servers.length + 1).padStart(6, '0')}`;
    const home = 100 * site + (servers.length % VLANS_PER_SITE) + 1;
    const other = 100 * site + ((servers.length + 3) % VLANS_PER_SITE) + 1;
    luns.push({ id: `${id}-boot`, array: `site${site}-array1`, sizeGiB: 100 });
    servers.push({
      id,
      image: `rhel9-${arch}`,
      vlans: [home, other],
      luns: [`${id}-boot`],
      ...size,
      arch,
      priority: servers.length % 4,
      bareMetalOnly,
      rtoSeconds: 900,
    });
    return id;
  };

  const rackCount = Math.ceil(hostCount / HOSTS_PER_RACK);
  for (let r = 1; r <= rackCount; r++) {
    const site = Math.floor((r - 1) / RACKS_PER_SITE) + 1;
    const siteId = `site${site}`;
    if ((r - 1) % RACKS_PER_SITE === 0) {
      for (let k = 1; k <= VLANS_PER_SITE; k++) {
        vlans.push({ id: 100 * site + k, name: `${siteId}-net${k}`, fabric: `${siteId}-net`, drillVlan: 2000 + 100 * site + k });
      }
      storageArrays.push({
        id: `${siteId}-array1`,
        fabric: `${siteId}-san`,
        driver: 'lab-san',
        address: `http://127.0.0.1:${40_000 + site}`,
        credentialsRef: 'env:FB_BENCH_SAN_CREDENTIALS',
      });
    }
    const rack = `r${r}`;
    const tor = `${rack}-tor`;
    const pdu = `${rack}-pdu`;
    const arch: Arch = r % 5 === 0 ? 'aarch64' : 'x86_64';
    racks.push({ id: rack, site: siteId, pdu, tor });
    switches.push({ id: tor, fabric: `${siteId}-net`, driver: 'snmp', address: `127.0.0.1:${30_000 + r}`, credentialsRef: 'env:FB_BENCH_SNMP_CREDENTIALS' });

    for (let slot = 1; slot <= HOSTS_PER_RACK && hosts.length < hostCount; slot++) {
      const index = hosts.length;
      const id = `${rack}-h${String(slot).padStart(2, '0')}`;
      // Per ten slots: six production hosts, two spares, a repurposable host and a hypervisor.
      const kind = slot % 10;
      const role = kind < 6 ? 'production' : kind < 8 ? 'spare' : kind === 8 ? 'repurposable' : 'hypervisor';
      const hypervisorCapable = role === 'hypervisor' || role === 'spare';
      hosts.push({
        id,
        site: siteId,
        rack,
        pdu,
        tor,
        arch,
        cpus: 64,
        memoryGiB: 512,
        nics: [0, 1].map((n) => ({ mac: `52:54:00:${hexBytes(index * 2 + n, 3)}`, switch: tor, port: 2 * slot + n - 1 })),
        hba: { initiator: slot % 8 === 0 ? `iqn.2025-01.bench.firebreak:${id}` : `21:00:00:24:ff:${hexBytes(index, 3)}`, fabric: `${siteId}-san` },
        bmc: {
          driver: 'redfish',
          address: `127.0.0.1:${20_000 + r}`,
          systemId: id,
          auth: 'auto',
          credentialsRef: 'env:FB_BENCH_BMC_CREDENTIALS',
          tls: { verify: true },
        },
        role,
        ...(role === 'repurposable' && { workload: { name: 'batch', priority: 5 + (slot % 5) } }),
        hypervisorCapable,
        ...(hypervisorCapable && { hypervisor: { driver: 'lab', uri: `http://127.0.0.1:50000/hypervisors/${id}` } }),
      });
      if (role === 'production') {
        const server = addServer(site, arch, { cpus: 32, memoryGiB: 256 }, servers.length % 17 === 0);
        assignments.push({ server, mode: 'bare-metal', host: id });
      } else if (role === 'hypervisor') {
        for (let v = 0; v < VMS_PER_HYPERVISOR; v++) {
          const server = addServer(site, arch, { cpus: 8, memoryGiB: 64 }, false);
          assignments.push({ server, mode: 'vm', hypervisor: id });
        }
      }
    }
  }
  return { version: 1, racks, switches, vlans, storageArrays, luns, images, hosts, servers, assignments };
}

/** As the lab writes YAML: no anchors, no folded lines. */
export function inventoryYaml(inventory: InventoryInput): string {
  return stringify(inventory, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** As the lab writes JSON: indented. */
export function inventoryJson(inventory: InventoryInput): string {
  return `${JSON.stringify(inventory, null, 2)}\n`;
}
