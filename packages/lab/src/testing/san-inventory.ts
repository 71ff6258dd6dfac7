/**
 * A small storage inventory for tests of the SAN simulator and of storage
 * drivers: arrays arr1 (no auth) and arr2 (basic auth, env:FB_TEST_SAN) on
 * fabric san-a; h1 runs db1 and sees lun-db1; h2 (IQN) is a spare on san-a;
 * h3's HBA sits on fabric san-b, so masking alone never makes a san-a LUN
 * visible to it.
 */
import { Inventory } from '@firebreak/shared';

export const sanFixture = {
  wwpnH1: '50:01:43:80:12:34:56:01',
  iqnH2: 'iqn.2024-01.lab.firebreak:h2',
  wwpnH3: '50:01:43:80:12:34:56:03',
} as const;

function host(id: string, port: number, hba: { initiator: string; fabric: string }, role: 'production' | 'spare') {
  return {
    id,
    site: 's1',
    rack: 'r1',
    arch: 'x86_64',
    cpus: 8,
    memoryGiB: 32,
    nics: [{ mac: `52:54:00:00:00:0${port}`, switch: 'sw1', port }],
    hba,
    bmc: { address: '127.0.0.1:1', credentialsRef: 'env:BMC' },
    role,
  };
}

export function sanInventory(arr1: number, arr2: number): Inventory {
  return Inventory.parse({
    version: 1,
    racks: [{ id: 'r1', site: 's1' }],
    switches: [{ id: 'sw1', fabric: 'net-a', address: '127.0.0.1:1', credentialsRef: 'env:SW' }],
    vlans: [{ id: 20, name: 'db', fabric: 'net-a' }],
    storageArrays: [
      { id: 'arr1', fabric: 'san-a', driver: 'lab-san', address: `http://127.0.0.1:${arr1}` },
      { id: 'arr2', fabric: 'san-a', driver: 'lab-san', address: `http://127.0.0.1:${arr2}`, credentialsRef: 'env:FB_TEST_SAN' },
    ],
    luns: [
      { id: 'lun-db1', array: 'arr1', sizeGiB: 100 },
      { id: 'lun-app1', array: 'arr1', sizeGiB: 50 },
      { id: 'lun-x', array: 'arr2', sizeGiB: 10 },
    ],
    images: [{ id: 'rhel9', arch: 'x86_64', url: 'http://127.0.0.1:1/rhel9.ipxe' }],
    hosts: [
      host('h1', 1, { initiator: sanFixture.wwpnH1, fabric: 'san-a' }, 'production'),
      host('h2', 2, { initiator: sanFixture.iqnH2, fabric: 'san-a' }, 'spare'),
      host('h3', 3, { initiator: sanFixture.wwpnH3, fabric: 'san-b' }, 'spare'),
    ],
    servers: [{ id: 'db1', image: 'rhel9', vlans: [20], luns: ['lun-db1'], cpus: 4, memoryGiB: 16, arch: 'x86_64', priority: 0 }],
    assignments: [{ server: 'db1', mode: 'bare-metal', host: 'h1' }],
  });
}
