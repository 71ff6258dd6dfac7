/** How big a generated data center is: a named preset or explicit dimensions. */
export interface TopologyDimensions {
  sites: number;
  racksPerSite: number;
  hostsPerRack: number;
}

export const topologySizes = ['tiny', 'rack', 'row', '10k'] as const;
export type TopologySizeName = (typeof topologySizes)[number];
export type TopologySize = TopologySizeName | TopologyDimensions;

const presets: Record<TopologySizeName, TopologyDimensions> = {
  tiny: { sites: 1, racksPerSite: 3, hostsPerRack: 8 },
  rack: { sites: 1, racksPerSite: 4, hostsPerRack: 40 },
  row: { sites: 1, racksPerSite: 25, hostsPerRack: 40 },
  '10k': { sites: 1, racksPerSite: 250, hostsPerRack: 40 },
};

/**
 * Limits that keep every generated number in range: VLAN ids (a site's
 * production and drill ranges are 100 wide below 4095), the default ports
 * (20000 + rack index stays below the switch range at 30000) and MACs
 * (two per host in the 24 bits after the 52:54:00 prefix).
 */
export const topologyLimits = { sites: 19, racks: 9_999, hosts: 2 ** 23 } as const;

export function resolveTopologySize(size: TopologySize): TopologyDimensions {
  const dims = typeof size === 'string' ? presets[size] : size;
  if (dims === undefined) throw new RangeError(`unknown topology size "${String(size)}" (expected ${topologySizes.join(', ')} or dimensions)`);
  for (const [name, value] of Object.entries(dims)) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`topology ${name} must be a positive integer, got ${value}`);
  }
  const racks = dims.sites * dims.racksPerSite;
  const hosts = racks * dims.hostsPerRack;
  if (dims.sites > topologyLimits.sites) throw new RangeError(`at most ${topologyLimits.sites} sites, got ${dims.sites}`);
  if (racks > topologyLimits.racks) throw new RangeError(`at most ${topologyLimits.racks} racks in all, got ${racks}`);
  if (hosts > topologyLimits.hosts) throw new RangeError(`at most ${topologyLimits.hosts} hosts in all, got ${hosts}`);
  return { ...dims };
}
