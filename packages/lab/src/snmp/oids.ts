/**
 * The MIB objects a lab switch serves. Table OIDs are the `…Entry` nodes (what
 * net-snmp registers a table provider at); an instance is
 * `<entry>.<column>.<index>`.
 */
export const oids = {
  sysName: '1.3.6.1.2.1.1.5',
  /** IF-MIB ifEntry, indexed by ifIndex (= the switch port number). */
  ifEntry: '1.3.6.1.2.1.2.2.1',
  /** IF-MIB ifXEntry, augments ifEntry. */
  ifXEntry: '1.3.6.1.2.1.31.1.1.1',
  /** BRIDGE-MIB dot1dBasePortEntry: bridge port → ifIndex (identical here). */
  dot1dBasePortEntry: '1.3.6.1.2.1.17.1.4.1',
  /** Q-BRIDGE-MIB dot1qVlanStaticEntry, indexed by VLAN id. */
  dot1qVlanStaticEntry: '1.3.6.1.2.1.17.7.1.4.3.1',
  /** Q-BRIDGE-MIB dot1qPortVlanEntry, augments dot1dBasePortEntry. */
  dot1qPortVlanEntry: '1.3.6.1.2.1.17.7.1.4.5.1',
  /** SNMPv2-MIB notifications sent when a port's ifOperStatus changes. */
  linkDown: '1.3.6.1.6.3.1.1.5.3',
  linkUp: '1.3.6.1.6.3.1.1.5.4',
} as const;

/** Column numbers within the entries above. */
export const columns = {
  ifIndex: 1,
  ifDescr: 2,
  ifAdminStatus: 7,
  ifOperStatus: 8,
  ifName: 1,
  dot1dBasePort: 1,
  dot1dBasePortIfIndex: 2,
  dot1qVlanStaticName: 1,
  dot1qVlanStaticEgressPorts: 2,
  dot1qVlanStaticUntaggedPorts: 4,
  dot1qVlanStaticRowStatus: 5,
  dot1qPvid: 1,
} as const;

/** IF-MIB up(1)/down(2) for ifAdminStatus and ifOperStatus. */
export const ifStatus = { up: 1, down: 2 } as const;

/** `<entry>.<column>.<index>` as numbers, or undefined for an OID outside the entry or with a compound index. */
export function parseInstance(oid: string, entry: string): { column: number; index: number } | undefined {
  if (!oid.startsWith(`${entry}.`)) return undefined;
  const parts = oid.slice(entry.length + 1).split('.').map(Number);
  const [column, index] = parts;
  if (parts.length !== 2 || column === undefined || index === undefined || !Number.isInteger(column) || !Number.isInteger(index)) return undefined;
  return { column, index };
}
