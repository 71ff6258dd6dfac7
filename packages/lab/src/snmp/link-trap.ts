/**
 * The SNMPv2c notification a switch sends when a port's ifOperStatus changes:
 * linkDown or linkUp with the port's ifIndex, ifAdminStatus and ifOperStatus
 * (RFC 2863), which is what a receiver needs to name the port.
 */
import type { PortRuntime } from '../world.ts';
import { snmp, type Varbind } from './net-snmp.ts';
import { columns, ifStatus, oids } from './oids.ts';

export interface LinkTrap {
  oid: string;
  varbinds: Varbind[];
}

export function linkTrap(port: PortRuntime): LinkTrap {
  const column = (n: number): string => `${oids.ifEntry}.${n}.${port.port}`;
  const { Integer } = snmp.ObjectType;
  return {
    oid: port.oper === 'down' ? oids.linkDown : oids.linkUp,
    varbinds: [
      { oid: column(columns.ifIndex), type: Integer, value: port.port },
      { oid: column(columns.ifAdminStatus), type: Integer, value: ifStatus[port.admin] },
      { oid: column(columns.ifOperStatus), type: Integer, value: ifStatus[port.oper] },
    ],
  };
}
