/**
 * Names and hardware addresses derived from indexes, so they are unique by
 * construction and stable for a given size, whatever the seed.
 */
export const siteId = (site: number): string => `site${site}`;
export const rackId = (rack: number): string => `r${rack}`;
export const torId = (rack: string): string => `${rack}-tor`;
export const pduId = (rack: string): string => `${rack}-pdu`;
export const networkFabricId = (site: string): string => `${site}-net`;
export const storageFabricId = (site: string): string => `${site}-san`;
export const storageArrayId = (site: string, array: number): string => `${site}-array${array}`;

/** `r1-h01`: hosts numbered from 1, padded to the rack's width (at least two digits). */
export function hostId(rack: string, slot: number, hostsPerRack: number): string {
  return `${rack}-h${String(slot).padStart(Math.max(2, String(hostsPerRack).length), '0')}`;
}

/** Locally administered MAC (QEMU's 52:54:00 prefix): two per host, 2^23 hosts before they repeat. */
export function nicMac(hostIndex: number, nic: number): string {
  return `52:54:00:${hexBytes(hostIndex * 2 + nic, 3)}`;
}

/** A Fibre Channel WWPN in a QLogic-style vendor range, one per host. */
export function fcWwpn(hostIndex: number): string {
  return `21:00:00:24:ff:${hexBytes(hostIndex, 3)}`;
}

export function iscsiIqn(host: string): string {
  return `iqn.2025-01.lab.firebreak:${host}`;
}

function hexBytes(value: number, bytes: number): string {
  const parts: string[] = [];
  for (let i = bytes - 1; i >= 0; i--) parts.push(((value >>> (8 * i)) & 0xff).toString(16).padStart(2, '0'));
  return parts.join(':');
}
