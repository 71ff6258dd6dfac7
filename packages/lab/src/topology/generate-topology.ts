/**
 * A seeded, deterministic data center as an inventory the shared loader
 * accepts: per rack a PDU, a top-of-rack switch and one Redfish endpoint
 * serving all its hosts; per site a network fabric with production VLANs
 * (each with a drill twin), a storage fabric with one or two arrays, and a
 * mix of production hosts (each running a server), spares, repurposable hosts
 * and hypervisors over two architectures.
 */
import { archs, hostModels, hypervisorImage, imageId, osImages, serverFamilies, workloadKinds, workloadPriorities } from './catalog.ts';
import { resolveEndpoints, type Endpoints, type TopologyAddresses, type TopologyCredentials } from './endpoints.ts';
import {
  fcWwpn,
  hostId,
  iscsiIqn,
  networkFabricId,
  nicMac,
  pduId,
  rackId,
  siteId,
  storageArrayId,
  storageFabricId,
  torId,
} from './hardware-ids.ts';
import type {
  AssignmentInput,
  HostInput,
  ImageInput,
  InventoryInput,
  LunInput,
  RackInput,
  ServerInput,
  StorageArrayInput,
  SwitchInput,
  VlanInput,
} from './inventory-types.ts';
import { seededRandom } from './prng.ts';
import { finishSiteServers, makeServer, type SiteServices } from './servers.ts';
import { planSite } from './site-plan.ts';
import { resolveTopologySize, type TopologySize } from './topology-size.ts';

export interface TopologyOptions {
  /** A preset (default `tiny`: 1 site × 3 racks × 8 hosts) or explicit dimensions. */
  size?: TopologySize;
  /** Same seed, same options: byte-identical inventory. Default 1. */
  seed?: number;
  /** Override where devices listen; defaults are fixed example ports on 127.0.0.1 (hypervisors under http://127.0.0.1:50000). */
  addresses?: Partial<TopologyAddresses>;
  /** Override credential references; defaults are env:FB_LAB_{BMC,SNMP,SAN}_CREDENTIALS. */
  credentials?: Partial<TopologyCredentials>;
}

/** A site of 100 hosts or more gets a second storage array. */
const secondArrayFromHosts = 100;

interface Sections {
  racks: RackInput[];
  switches: SwitchInput[];
  vlans: VlanInput[];
  storageArrays: StorageArrayInput[];
  luns: LunInput[];
  images: ImageInput[];
  hosts: HostInput[];
  servers: ServerInput[];
  assignments: AssignmentInput[];
}

export function generateTopology(options: TopologyOptions = {}): InventoryInput {
  const dims = resolveTopologySize(options.size ?? 'tiny');
  const rng = seededRandom(options.seed ?? 1);
  const endpoints = resolveEndpoints(options.addresses, options.credentials);
  const out: Sections = {
    racks: [],
    switches: [],
    vlans: [],
    storageArrays: [],
    luns: [],
    images: images(endpoints.imageBase),
    hosts: [],
    servers: [],
    assignments: [],
  };
  const totalHosts = dims.sites * dims.racksPerSite * dims.hostsPerRack;
  // Server ids are numbered across the inventory, wide enough for one per host.
  const serverWidth = Math.max(2, String(totalHosts).length);
  const nextServerId = (family: string): string => `${family}-${String(out.servers.length + 1).padStart(serverWidth, '0')}`;

  for (let s = 1; s <= dims.sites; s++) {
    const site = siteId(s);
    const vlans = siteVlans(s, dims.racksPerSite);
    out.vlans.push(...vlans);
    const arrays = siteArrays(site, dims.racksPerSite * dims.hostsPerRack, out.storageArrays.length, endpoints);
    out.storageArrays.push(...arrays);
    const services: SiteServices = { vlans: vlans.map((v) => v.id), storageArrays: arrays.map((a) => a.id) };

    const plan = planSite(rng, dims.racksPerSite, dims.hostsPerRack);
    const priorities = rng.shuffle(workloadPriorities);
    let repurposables = 0;
    const siteServers: ServerInput[] = [];

    for (const slots of plan) {
      const rackIndex = out.racks.length + 1;
      const rack = rackId(rackIndex);
      const tor = torId(rack);
      const pdu = pduId(rack);
      out.racks.push({ id: rack, site, pdu, tor });
      out.switches.push({
        id: tor,
        fabric: networkFabricId(site),
        driver: 'snmp',
        address: endpoints.switch(tor, rackIndex),
        credentialsRef: endpoints.credentials.switch(tor),
      });
      const bmcAddress = endpoints.bmc(rack, rackIndex);
      const bmcCredentials = endpoints.credentials.bmc(rack);

      slots.forEach((slot, i) => {
        const hostIndex = out.hosts.length;
        const id = hostId(rack, i + 1, dims.hostsPerRack);
        const model = rng.weighted(hostModels[slot.arch]);
        const host: HostInput = {
          id,
          site,
          rack,
          pdu,
          tor,
          arch: slot.arch,
          cpus: model.cpus,
          memoryGiB: model.memoryGiB,
          // Two NICs per host on adjacent ToR ports: host i has ports 2i+1 and 2i+2.
          nics: [0, 1].map((n) => ({ mac: nicMac(hostIndex, n), switch: tor, port: 2 * i + n + 1 })),
          hba: { initiator: slot.iscsi ? iscsiIqn(id) : fcWwpn(hostIndex), fabric: storageFabricId(site) },
          bmc: {
            driver: 'redfish',
            address: bmcAddress,
            systemId: id,
            auth: 'auto',
            credentialsRef: bmcCredentials,
            tls: { verify: true },
          },
          role: slot.role,
          hypervisorCapable: slot.hypervisorCapable,
          // Where its hypervisor answers once it runs one: the lab's hypervisor simulation.
          ...(slot.hypervisorCapable && { hypervisor: { driver: 'lab', uri: endpoints.hypervisor(id) } }),
        };
        if (slot.role === 'repurposable') {
          // Cycling a shuffled 5-9 gives every site with two repurposables two priorities.
          const priority = priorities[repurposables++ % priorities.length] as number;
          host.workload = { name: rng.pick(workloadKinds), priority };
        }
        out.hosts.push(host);
        if (slot.role === 'production') {
          const { server, luns } = makeServer(rng, nextServerId, { arch: slot.arch, cpus: model.cpus, memoryGiB: model.memoryGiB }, services);
          out.servers.push(server);
          siteServers.push(server);
          out.luns.push(...luns);
          out.assignments.push({ server: server.id, mode: 'bare-metal', host: id });
        }
      });
    }
    finishSiteServers(rng, site, siteServers);
  }

  return { version: 1, ...out };
}

/**
 * Site s has production VLANs s01..s99 (101.., 201.., …) and their drill twins
 * 2000 higher, both clear of VLAN 1, the switches' default. One VLAN per
 * server family, plus one more per ten racks.
 */
function siteVlans(site: number, racks: number): VlanInput[] {
  const count = Math.min(99, serverFamilies.length + Math.floor(racks / 10));
  const fabric = networkFabricId(siteId(site));
  return Array.from({ length: count }, (_, k) => ({
    id: 100 * site + k + 1,
    name: `${siteId(site)}-${serverFamilies[k] ?? `net${k + 1}`}`,
    fabric,
    drillVlan: 2000 + 100 * site + k + 1,
  }));
}

function siteArrays(site: string, siteHosts: number, arraysBefore: number, endpoints: Endpoints): StorageArrayInput[] {
  const count = siteHosts >= secondArrayFromHosts ? 2 : 1;
  return Array.from({ length: count }, (_, k) => {
    const id = storageArrayId(site, k + 1);
    return {
      id,
      fabric: storageFabricId(site),
      driver: 'lab-san',
      address: endpoints.san(id, arraysBefore + k + 1),
      credentialsRef: endpoints.credentials.san(id),
    };
  });
}

/** Every OS image and a hypervisor image, built for each architecture. */
function images(imageBase: string): ImageInput[] {
  return archs.flatMap((arch) =>
    [...osImages, hypervisorImage].map((name) => {
      const id = imageId(name, arch);
      return { id, arch, url: `${imageBase}/images/${id}.ipxe`, hypervisor: name === hypervisorImage };
    }),
  );
}
