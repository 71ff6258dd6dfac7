/**
 * Q-BRIDGE-MIB PortList: an OCTET STRING bitmap with one bit per port, port 1
 * being the most significant bit of the first octet. A SET replaces the whole
 * bitmap (every port of the switch), so changing one port is
 * read-modify-write of the list the switch last reported.
 */

export function hasPort(list: Buffer | undefined, port: number): boolean {
  const i = (port - 1) >> 3;
  return list !== undefined && i < list.length && (list.readUInt8(i) & (0x80 >> ((port - 1) & 7))) !== 0;
}

/** A copy of `list`, at least `octets` long, with the port's bit set or cleared. */
export function withPort(list: Buffer | undefined, port: number, member: boolean, octets: number): Buffer {
  const i = (port - 1) >> 3;
  const copy = Buffer.alloc(Math.max(octets, list?.length ?? 0, i + 1));
  list?.copy(copy);
  const bit = 0x80 >> ((port - 1) & 7);
  copy.writeUInt8(member ? copy.readUInt8(i) | bit : copy.readUInt8(i) & ~bit, i);
  return copy;
}

/** The ports a list names, ascending. */
export function portsIn(list: Buffer | undefined): number[] {
  const ports: number[] = [];
  if (list === undefined) return ports;
  for (let i = 0; i < list.length * 8; i++) if (hasPort(list, i + 1)) ports.push(i + 1);
  return ports;
}

/** Whether two lists name the same ports: switches pad lists to their own width, so trailing zero octets do not count. */
export function samePorts(a: Buffer | undefined, b: Buffer | undefined): boolean {
  const octet = (list: Buffer | undefined, i: number): number => (list !== undefined && i < list.length ? list.readUInt8(i) : 0);
  for (let i = 0; i < Math.max(a?.length ?? 0, b?.length ?? 0); i++) if (octet(a, i) !== octet(b, i)) return false;
  return true;
}
