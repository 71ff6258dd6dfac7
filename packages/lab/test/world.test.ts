import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Inventory } from '@firebreak/shared';
import { LabRecorder } from '../src/recorder.ts';
import { World } from '../src/world.ts';

/** One host bonded over two NICs on one switch, running web (VLANs 10 and 20). */
function world(): World {
  const inventory = Inventory.parse({
    version: 1,
    racks: [{ id: 'r1', site: 's1' }],
    switches: [{ id: 'tor', fabric: 'f1', address: '127.0.0.1:20161', credentialsRef: 'env:LAB_SNMP' }],
    vlans: [
      { id: 10, name: 'prod', fabric: 'f1' },
      { id: 20, name: 'backup', fabric: 'f1' },
    ],
    hosts: [
      {
        id: 'h1',
        site: 's1',
        rack: 'r1',
        arch: 'x86_64',
        cpus: 8,
        memoryGiB: 32,
        nics: [
          { mac: '52:54:00:00:00:01', switch: 'tor', port: 1 },
          { mac: '52:54:00:00:00:02', switch: 'tor', port: 2 },
        ],
        bmc: { address: '127.0.0.1:8443', credentialsRef: 'env:LAB_BMC' },
        role: 'production',
      },
    ],
    servers: [{ id: 'web', image: 'rhel9', vlans: [10, 20], cpus: 4, memoryGiB: 16, arch: 'x86_64', priority: 1 }],
    assignments: [{ server: 'web', mode: 'bare-metal', host: 'h1' }],
  });
  return new World(inventory, new LabRecorder());
}

test('world - a host is on a VLAN only while every one of its NICs is up and carries it', () => {
  const w = world();
  assert.ok(w.hostOnVlan('h1', 10) && w.hostOnVlan('h1', 20), 'both NICs trunk both VLANs');

  // What issue #16 left behind: the second NIC's PVID on the VLAN, but the VLAN gone from its egress list.
  w.port('tor', 2).egress.delete(10);
  assert.equal(w.hostOnVlan('h1', 10), false, 'one NIC without VLAN 10 is not enough');
  assert.equal(w.anyNicOnVlan('h1', 10), true, 'though the host still reaches it over the other');
  assert.equal(w.hostOnVlan('h1', 20), true);

  w.port('tor', 2).egress.add(10);
  w.setPortAdmin('tor', 1, 'down');
  assert.equal(w.hostOnVlan('h1', 20), false, 'a shut NIC carries nothing');
  w.setPortAdmin('tor', 2, 'down');
  assert.equal(w.anyNicOnVlan('h1', 20), false, 'with every NIC shut the host has left the VLAN');
});
