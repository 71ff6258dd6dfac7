/**
 * Server identities for production hosts: each sized to fit the host it runs
 * on, on its family's VLAN plus a few more, with one or two LUNs on one of the
 * site's arrays and a priority tier. Site-wide touches (at least one tier 0
 * and one bare-metal-only server, anti-affinity groups) come after.
 */
import {
  bareMetalOnlyChance,
  bootLunGiB,
  dataLunGiB,
  imageId,
  memoryPerCpuGiB,
  osImages,
  rtoSecondsByTier,
  serverCpus,
  serverFamilies,
  tierWeights,
  type LabArch,
} from './catalog.ts';
import type { LunInput, ServerInput } from './inventory-types.ts';
import type { Random } from './prng.ts';

export interface SiteServices {
  /** Production VLAN ids of the site, in order. */
  vlans: readonly number[];
  storageArrays: readonly string[];
}

export interface ServerHost {
  arch: LabArch;
  cpus: number;
  memoryGiB: number;
}

/** Share of servers that are put in anti-affinity pairs. */
const antiAffinityShare = 0.15;

export function makeServer(
  rng: Random,
  id: (family: string) => string,
  host: ServerHost,
  site: SiteServices,
): { server: ServerInput; luns: LunInput[] } {
  const familyIndex = rng.int(0, serverFamilies.length - 1);
  const family = serverFamilies[familyIndex] ?? 'web';
  const serverId = id(family);

  // A family lives on its own VLAN; some servers also reach one or two others.
  const home = site.vlans[familyIndex % site.vlans.length] as number;
  const others = rng.shuffle(site.vlans.filter((v) => v !== home)).slice(0, rng.int(0, 2));

  const array = rng.pick(site.storageArrays);
  const luns: LunInput[] = [{ id: `${serverId}-boot`, array, sizeGiB: rng.pick(bootLunGiB) }];
  if (rng.chance(0.5)) luns.push({ id: `${serverId}-data`, array, sizeGiB: rng.pick(dataLunGiB) });

  const cpus = rng.weighted(serverCpus.filter(([c]) => c <= host.cpus));
  const priority = rng.weighted(tierWeights);
  const server: ServerInput = {
    id: serverId,
    image: imageId(rng.pick(osImages), host.arch),
    vlans: [home, ...others],
    luns: luns.map((l) => l.id),
    cpus,
    memoryGiB: Math.min(host.memoryGiB, cpus * rng.pick(memoryPerCpuGiB)),
    arch: host.arch,
    priority,
    bareMetalOnly: rng.chance(bareMetalOnlyChance(family)),
    rtoSeconds: rtoFor(priority),
  };
  return { server, luns };
}

/** Site-wide guarantees and groupings over the site's servers, in generation (rack) order. */
export function finishSiteServers(rng: Random, site: string, servers: readonly ServerInput[]): void {
  if (servers.length === 0) return;
  if (!servers.some((s) => s.priority === 0)) setTier(rng.pick(servers), 0);
  if (!servers.some((s) => s.bareMetalOnly === true)) rng.pick(servers).bareMetalOnly = true;
  groupAntiAffinity(rng, site, servers);
}

/**
 * Pairs members far apart in rack order (j with j + half), so a pair usually
 * spans racks and a burned rack takes only one of them.
 */
function groupAntiAffinity(rng: Random, site: string, servers: readonly ServerInput[]): void {
  if (servers.length < 2) return;
  let members = servers.filter(() => rng.chance(antiAffinityShare));
  if (members.length < 2) members = [servers[0] as ServerInput, servers[servers.length - 1] as ServerInput];
  const groups = Math.floor(members.length / 2);
  members.forEach((server, j) => {
    server.antiAffinity = `${site}-ha${(j % groups) + 1}`;
  });
}

function setTier(server: ServerInput, tier: number): void {
  server.priority = tier;
  server.rtoSeconds = rtoFor(tier);
}

function rtoFor(tier: number): number {
  return rtoSecondsByTier[tier] ?? 3600;
}
