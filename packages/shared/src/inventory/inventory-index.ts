import type { Host, Inventory, Rack, Server } from '../schemas/inventory.schema.ts';

/** Lookups the detector, planner and lab share. Built from a validated inventory, so every key is unique. */
export interface InventoryIndex {
  readonly hostsById: ReadonlyMap<string, Host>;
  readonly serversById: ReadonlyMap<string, Server>;
  readonly racksById: ReadonlyMap<string, Rack>;
  /** Every rack is present, with an empty list when it holds no host. */
  readonly hostsByRack: ReadonlyMap<string, readonly Host[]>;
  readonly hostByMac: ReadonlyMap<string, Host>;
  /** Keyed by `switchPortKey(switch, port)`. */
  readonly switchPortToHost: ReadonlyMap<string, Host>;
}

export function switchPortKey(switchId: string, port: number): string {
  return `${switchId}:${port}`;
}

export function inventoryIndex(inv: Inventory): InventoryIndex {
  const hostsByRack = new Map<string, Host[]>(inv.racks.map((rack) => [rack.id, []]));
  const hostByMac = new Map<string, Host>();
  const switchPortToHost = new Map<string, Host>();
  for (const host of inv.hosts) {
    hostsByRack.get(host.rack)?.push(host);
    for (const nic of host.nics) {
      hostByMac.set(nic.mac, host);
      switchPortToHost.set(switchPortKey(nic.switch, nic.port), host);
    }
  }
  return {
    hostsById: new Map(inv.hosts.map((host) => [host.id, host])),
    serversById: new Map(inv.servers.map((server) => [server.id, server])),
    racksById: new Map(inv.racks.map((rack) => [rack.id, rack])),
    hostsByRack,
    hostByMac,
    switchPortToHost,
  };
}
