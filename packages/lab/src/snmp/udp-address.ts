/** A UDP endpoint written `host:port`, as inventories name switches and operators name trap receivers. */
export interface UdpAddress {
  host: string;
  port: number;
}

export function parseUdpAddress(address: string): UdpAddress {
  const match = /^([^\s:/]+):(\d{1,5})$/.exec(address);
  const port = Number(match?.[2]);
  if (!match?.[1] || !(port >= 1 && port <= 65_535)) throw new Error(`lab: "${address}" is not a UDP address (expected host:port, like 127.0.0.1:1161)`);
  return { host: match[1], port };
}
