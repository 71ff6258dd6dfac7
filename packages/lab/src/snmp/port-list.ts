/**
 * Q-BRIDGE-MIB PortList: an OCTET STRING bitmap with one bit per port, port 1
 * being the most significant bit of the first octet.
 */

export function encodePortList(ports: Iterable<number>, octets: number): Buffer {
  const list = Buffer.alloc(octets);
  for (const port of ports) {
    const i = (port - 1) >> 3;
    if (port < 1 || i >= octets) throw new RangeError(`port ${port} does not fit a ${octets}-octet PortList`);
    list.writeUInt8(list.readUInt8(i) | (0x80 >> ((port - 1) & 7)), i);
  }
  return list;
}

export function decodePortList(list: Buffer): number[] {
  const ports: number[] = [];
  for (let i = 0; i < list.length; i++) {
    const octet = list.readUInt8(i);
    for (let bit = 0; bit < 8; bit++) if (octet & (0x80 >> bit)) ports.push(i * 8 + bit + 1);
  }
  return ports;
}
