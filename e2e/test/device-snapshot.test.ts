/**
 * The "leaves no trace" judge itself, against a running lab and boot service
 * (no Firebreak services: what is judged here is the judge): equal devices
 * pass, a boot entry or a lab device changed fails with a line naming it, and
 * undoing the change passes again.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startBootService, type BootService } from '@firebreak/boot-service';
import { startLab, type Lab } from '@firebreak/lab';
import { startNats, type TestServer } from '@firebreak/shared/testing';
import { expectDevicesReturnTo, expectSameDevices, serializeSystemDeviceSnapshot, takeDeviceSnapshot, type SnapshotSources } from '../src/device-snapshot.ts';

let nats: TestServer;
let lab: Lab;
let boot: BootService;
let bootDir: string;
let system: SnapshotSources;

before(async () => {
  nats = await startNats();
  lab = await startLab({ natsUrl: nats.url, size: 'tiny', powerDelayMs: 50, bootDelayMs: 50 });
  bootDir = await mkdtemp(join(tmpdir(), 'fb-e2e-snapshot-boot-'));
  boot = await startBootService({ dir: bootDir });
  system = { lab, bootUrl: boot.url };
});

after(async () => {
  await boot?.stop();
  await lab?.stop();
  await nats?.stop();
  if (bootDir) await rm(bootDir, { recursive: true, force: true });
});

const spare = () => {
  const host = lab.inventory.hosts.find((h) => h.role === 'spare');
  assert.ok(host?.nics[0]);
  return { host, nic: host.nics[0] };
};

async function putEntry(mac: string, body: unknown): Promise<void> {
  const res = await fetch(`${boot.url}/v1/hosts/${mac}`, { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  assert.ok(res.ok, `PUT boot entry: ${res.status} ${await res.text()}`);
}

/** The assertion's message, which is what a failing e2e test prints. */
function failure(check: () => void): string {
  try {
    check();
  } catch (err) {
    assert.ok(err instanceof assert.AssertionError, String(err));
    return err.message;
  }
  return assert.fail('expected the devices to differ');
}

test('device snapshot (e2e) - untouched devices are the same bytes twice', async () => {
  const first = await takeDeviceSnapshot(system);
  const second = await takeDeviceSnapshot(system);
  assert.equal(serializeSystemDeviceSnapshot(second), serializeSystemDeviceSnapshot(first));
  expectSameDevices(first, second, 'nothing done');
  assert.deepEqual(first.boot, {}, 'a fresh boot service has no entries');
  assert.equal(Object.keys(first.lab.hosts).length, lab.inventory.hosts.length);
});

test('device snapshot (e2e) - a boot entry written, changed and deleted', async () => {
  const { host, nic } = spare();
  const image = lab.inventory.images.find((i) => i.arch === host.arch && !i.hypervisor);
  const server = lab.inventory.servers[0];
  assert.ok(image && server);
  const beforeAll = await takeDeviceSnapshot(system);

  await putEntry(nic.mac, { server: server.id, image: image.id, imageUrl: image.url });
  const written = await takeDeviceSnapshot(system);
  const message = failure(() => expectSameDevices(beforeAll, written, 'after writing an entry'));
  assert.equal(
    message,
    `after writing an entry: 1 device difference from before:\n  boot entry ${nic.mac} (${host.id}): + image ${image.id}, imageUrl ${image.url}, server ${server.id}`,
  );

  await putEntry(nic.mac, { server: server.id, image: image.id, imageUrl: image.url, attach: { vlans: [2101], luns: [] } });
  const attached = await takeDeviceSnapshot(system);
  assert.match(failure(() => expectSameDevices(written, attached, 'after attaching')), new RegExp(`boot entry ${nic.mac} \\(${host.id}\\) attach: none → \\{"luns":\\[\\],"vlans":\\[2101\\]\\}$`));

  const res = await fetch(`${boot.url}/v1/hosts/${nic.mac}`, { method: 'DELETE' });
  assert.equal(res.status, 204);
  await expectDevicesReturnTo(system, beforeAll, 'entry deleted');
});

test('device snapshot (e2e) - a lab device changed fails with its line, and passes once it is back', async () => {
  const { host, nic } = spare();
  const beforeAll = await takeDeviceSnapshot(system);
  lab.world.setPortAdmin(nic.switch, nic.port, 'down');
  const message = failure(() => expectSameDevices(beforeAll, { ...beforeAll, lab: lab.deviceSnapshot() }, 'port shut'));
  assert.match(message, new RegExp(`switch ${nic.switch} port ${nic.port} \\(${host.id}\\) admin: up → down`));
  // Changes that land late are waited for, up to the timeout.
  setTimeout(() => lab.world.setPortAdmin(nic.switch, nic.port, 'up'), 300);
  await expectDevicesReturnTo(system, beforeAll, 'port open again', { timeoutMs: 5_000 });
  // And a change that never comes back fails with what is left.
  lab.world.setPortAdmin(nic.switch, nic.port, 'down');
  await assert.rejects(expectDevicesReturnTo(system, beforeAll, 'never reopened', { timeoutMs: 300 }), /never reopened: 2 device differences from before:\n.*admin: up → down\n.*oper: up → down$/);
  lab.world.setPortAdmin(nic.switch, nic.port, 'up');
});
