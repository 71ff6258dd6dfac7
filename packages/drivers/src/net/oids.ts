/** The IF-MIB and Q-BRIDGE-MIB objects the SNMP net driver reads and writes. */

const ifEntry = '1.3.6.1.2.1.2.2.1';
const dot1qVlanStaticEntry = '1.3.6.1.2.1.17.7.1.4.3.1';
const dot1qPortVlanEntry = '1.3.6.1.2.1.17.7.1.4.5.1';

/** Columns (an instance is `<column>.<index>`); the index is the ifIndex, the bridge port or the VLAN id. */
export const columns = {
  ifAdminStatus: `${ifEntry}.7`,
  ifOperStatus: `${ifEntry}.8`,
  /** Assumes bridge port = ifIndex, as on most access switches and the lab's. */
  dot1qPvid: `${dot1qPortVlanEntry}.1`,
  dot1qVlanStaticEgressPorts: `${dot1qVlanStaticEntry}.2`,
  dot1qVlanStaticUntaggedPorts: `${dot1qVlanStaticEntry}.4`,
  dot1qVlanStaticRowStatus: `${dot1qVlanStaticEntry}.5`,
} as const;

export type Column = keyof typeof columns;

/** IF-MIB up(1)/down(2). */
export const ifStatus = { up: 1, down: 2 } as const;

export const instance = (column: Column, index: number): string => `${columns[column]}.${index}`;

/** The index of `oid` under `column`, or undefined when it is not a single-index instance of it. */
export function indexIn(oid: string, column: Column): number | undefined {
  const base = columns[column];
  if (!oid.startsWith(`${base}.`)) return undefined;
  const rest = oid.slice(base.length + 1);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

/** `dot1qPvid.3` for a known instance, else the OID itself, for error messages. */
export function nameOf(oid: string): string {
  for (const column of Object.keys(columns) as Column[]) {
    const index = indexIn(oid, column);
    if (index !== undefined) return `${column}.${index}`;
  }
  return oid;
}
