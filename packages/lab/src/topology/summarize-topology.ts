/** Counts a generated (or loaded) inventory by role, architecture and tier, for the CLI to print. */
import { HostRole } from '@firebreak/shared';
import type { InventoryInput } from './inventory-types.ts';

export interface TopologySummary {
  sites: number;
  racks: number;
  hosts: number;
  servers: number;
  switches: number;
  storageArrays: number;
  luns: number;
  vlans: number;
  images: number;
  hostsByRole: Record<string, number>;
  hostsByArch: Record<string, number>;
  /** Keyed by tier, "0" (most critical) to "3". */
  serversByTier: Record<string, number>;
  hypervisorCapable: number;
  bareMetalOnly: number;
  initiators: { wwpn: number; iqn: number };
}

export function summarizeTopology(inv: InventoryInput): TopologySummary {
  const servers = inv.servers ?? [];
  return {
    sites: new Set(inv.racks.map((r) => r.site)).size,
    racks: inv.racks.length,
    hosts: inv.hosts.length,
    servers: servers.length,
    switches: inv.switches?.length ?? 0,
    storageArrays: inv.storageArrays?.length ?? 0,
    luns: inv.luns?.length ?? 0,
    vlans: inv.vlans?.length ?? 0,
    images: inv.images?.length ?? 0,
    // Every role, in the schema's order, so a missing kind shows as 0.
    hostsByRole: { ...Object.fromEntries(HostRole.options.map((role) => [role, 0])), ...countBy(inv.hosts, (h) => h.role) },
    hostsByArch: countBy(inv.hosts, (h) => h.arch),
    serversByTier: countBy(servers, (s) => String(s.priority)),
    hypervisorCapable: inv.hosts.filter((h) => h.hypervisorCapable === true).length,
    bareMetalOnly: servers.filter((s) => s.bareMetalOnly === true).length,
    initiators: {
      wwpn: inv.hosts.filter((h) => h.hba !== undefined && !h.hba.initiator.startsWith('iqn.')).length,
      iqn: inv.hosts.filter((h) => h.hba?.initiator.startsWith('iqn.') === true).length,
    },
  };
}

/** Lines such as `hosts: 24 (production 14, spare 4, repurposable 5, hypervisor 1)`. */
export function formatTopologySummary(summary: TopologySummary): string[] {
  const parts = (counts: Record<string, number>, label = (key: string): string => key): string =>
    Object.entries(counts)
      .map(([key, n]) => `${label(key)} ${n}`)
      .join(', ');
  return [
    `sites: ${summary.sites}, racks: ${summary.racks}, switches: ${summary.switches}, storage arrays: ${summary.storageArrays}`,
    `hosts: ${summary.hosts} (${parts(summary.hostsByRole)}; ${parts(summary.hostsByArch)}; hypervisor-capable ${summary.hypervisorCapable})`,
    `servers: ${summary.servers} (${parts(summary.serversByTier, (tier) => `tier ${tier}`)}; bare-metal only ${summary.bareMetalOnly})`,
    `HBAs: FC ${summary.initiators.wwpn}, iSCSI ${summary.initiators.iqn}; LUNs ${summary.luns}, VLANs ${summary.vlans}, images ${summary.images}`,
  ];
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}
