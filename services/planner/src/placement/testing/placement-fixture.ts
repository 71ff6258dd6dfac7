/**
 * Small inventories for placement tests and benchmarks, described by what
 * matters to placement (sizes, roles, fabrics) with everything else filled
 * in. A server's VLANs and LUNs, and a host's NICs and HBA, follow from the
 * fabrics named in its spec: one switch and one VLAN per network fabric, one
 * storage array per storage fabric.
 */
import { Inventory, type HostRole, type InventoryInput } from '@firebreak/shared';

type Arch = 'x86_64' | 'aarch64';

export interface HostSpec {
  id: string;
  rack?: string;
  arch?: Arch;
  cpus?: number;
  memoryGiB?: number;
  role?: HostRole;
  workload?: { name: string; priority: number };
  hypervisorCapable?: boolean;
  /** Network fabrics its NICs are on; default ['net-a']. */
  fabrics?: string[];
  /** Storage fabric of its HBA; null for no HBA; default 'san-a'. */
  san?: string | null;
}

export interface ServerSpec {
  id: string;
  arch?: Arch;
  cpus?: number;
  memoryGiB?: number;
  tier?: number;
  bareMetalOnly?: boolean;
  antiAffinity?: string;
  /** Network fabrics of its VLANs; default ['net-a']. */
  fabrics?: string[];
  /** Storage fabrics of its LUNs; [] for no LUN; default ['san-a']. */
  sans?: string[];
}

export interface FixtureSpec {
  hosts: HostSpec[];
  servers: ServerSpec[];
  /** Architectures that get a hypervisor image; default both. */
  hypervisorImages?: Arch[];
}

const vlanOf = (fabrics: string[], fabric: string): number => 100 + fabrics.indexOf(fabric);

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export function buildInventory(spec: FixtureSpec): Inventory {
  const netFabrics = [...new Set([...spec.hosts, ...spec.servers].flatMap((x) => x.fabrics ?? ['net-a']))].sort();
  const sanFabrics = [
    ...new Set([...spec.hosts.map((h) => (h.san === undefined ? 'san-a' : h.san)).filter((f): f is string => f !== null), ...spec.servers.flatMap((s) => s.sans ?? ['san-a'])]),
  ].sort();
  const racks = [...new Set(spec.hosts.map((h) => h.rack ?? 'r1'))].sort();
  const ports = new Map<string, number>();
  const draft: InventoryInput = {
    version: 1,
    racks: racks.map((id) => ({ id, site: 'dc1' })),
    switches: netFabrics.map((fabric) => ({ id: `sw-${fabric}`, fabric, address: '127.0.0.1:161', credentialsRef: 'env:FB_TEST_SNMP' })),
    vlans: netFabrics.map((fabric) => ({ id: vlanOf(netFabrics, fabric), name: fabric, fabric })),
    storageArrays: sanFabrics.map((fabric) => ({ id: `array-${fabric}`, fabric, driver: 'lab-san', address: '127.0.0.1:3260' })),
    luns: spec.servers.flatMap((s) => (s.sans ?? ['san-a']).map((fabric) => ({ id: `${s.id}-${fabric}`, array: `array-${fabric}`, sizeGiB: 100 }))),
    images: (['x86_64', 'aarch64'] as const).flatMap((arch) => [
      { id: `os-${arch}`, arch, url: `http://127.0.0.1/os-${arch}.ipxe` },
      ...((spec.hypervisorImages ?? ['x86_64', 'aarch64']).includes(arch) ? [{ id: `kvm-${arch}`, arch, url: `http://127.0.0.1/kvm-${arch}.ipxe`, hypervisor: true }] : []),
    ]),
    hosts: spec.hosts.map((h, i) => ({
      id: h.id,
      site: 'dc1',
      rack: h.rack ?? 'r1',
      arch: h.arch ?? 'x86_64',
      cpus: h.cpus ?? 32,
      memoryGiB: h.memoryGiB ?? 256,
      nics: (h.fabrics ?? ['net-a']).map((fabric, n) => {
        const port = (ports.get(fabric) ?? 0) + 1;
        ports.set(fabric, port);
        return { mac: `52:54:00:${hex(n)}:${hex(i >> 8)}:${hex(i & 255)}`, switch: `sw-${fabric}`, port };
      }),
      ...(h.san === null ? {} : { hba: { initiator: `iqn.2024-01.test.firebreak:${h.id}`, fabric: h.san ?? 'san-a' } }),
      bmc: { address: '127.0.0.1:8443', systemId: h.id, credentialsRef: 'env:FB_TEST_BMC' },
      role: h.role ?? 'spare',
      ...(h.workload ? { workload: h.workload } : {}),
      hypervisorCapable: h.hypervisorCapable ?? false,
    })),
    servers: spec.servers.map((s) => ({
      id: s.id,
      image: `os-${s.arch ?? 'x86_64'}`,
      vlans: (s.fabrics ?? ['net-a']).map((f) => vlanOf(netFabrics, f)),
      luns: (s.sans ?? ['san-a']).map((fabric) => `${s.id}-${fabric}`),
      cpus: s.cpus ?? 8,
      memoryGiB: s.memoryGiB ?? 32,
      arch: s.arch ?? 'x86_64',
      priority: s.tier ?? 2,
      bareMetalOnly: s.bareMetalOnly ?? false,
      ...(s.antiAffinity ? { antiAffinity: s.antiAffinity } : {}),
    })),
  };
  return Inventory.parse(draft);
}
