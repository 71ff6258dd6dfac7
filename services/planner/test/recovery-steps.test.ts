import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootCommand, type Command } from '@firebreak/shared';
import { sampleInventory } from '@firebreak/shared/testing';
import { RecoveryPlanner, type CommandFrame, type RecoveryTarget } from '../src/incident/recovery-steps.ts';

/** db1 on two VLANs (both with drill twins) and two LUNs, recovered onto spare r1-h3. */
function planner(): RecoveryPlanner {
  const inventory = sampleInventory();
  inventory.servers = inventory.servers.map((s) => (s.id === 'db1' ? { ...s, vlans: [200, 100], luns: ['lun-db1', 'lun-web1'] } : s));
  return new RecoveryPlanner(inventory);
}

const frame = (drill: boolean): CommandFrame => ({ incidentId: 'inc-7', site: 'site1', fencingToken: 3, issuer: 'planner-a', drill, now: 1_000, deadline: 61_000, attempt: 1 });
const bareMetal: RecoveryTarget = { mode: 'bare-metal', server: 'db1', host: 'r1-h3' };

function bootConfigure(commands: Command[]): Extract<BootCommand, { action: 'configure' }> {
  const configure = commands.find((c) => c.kind === 'boot' && c.action === 'configure');
  assert.ok(configure?.kind === 'boot' && configure.action === 'configure', 'the boot step configures a boot entry');
  // What the executor will validate on receipt.
  const parsed = BootCommand.parse(configure);
  assert.ok(parsed.action === 'configure');
  return parsed;
}

test('recovery-steps - a drill bare-metal boot attaches the drill VLANs and clone LUNs the network and storage steps wire', () => {
  const p = planner();
  const boot = bootConfigure(p.commands(bareMetal, 'boot', frame(true)));
  const clone = (lun: string) => p.lunFor(lun, true, 'inc-7');
  assert.deepEqual(boot.attach, { vlans: [3100, 3200], luns: [clone('lun-db1'), clone('lun-web1')] });
  assert.ok(boot.attach.luns.every((l) => /^lun-(db1|web1)-d-[0-9a-f]{12}$/.test(l)));

  const granted = p.commands(bareMetal, 'storage', frame(true)).flatMap((c) => (c.kind === 'storage' && c.action === 'grant' ? [c.lun] : []));
  assert.deepEqual(granted.sort(), [...boot.attach.luns].sort(), 'the instance mounts exactly the LUNs it was granted');
  const wired = p.commands(bareMetal, 'network', frame(true)).flatMap((c) => (c.kind === 'net' && c.action === 'trunk' ? c.vlans : c.kind === 'net' && c.action === 'access' ? [c.vlan] : []));
  assert.deepEqual([...new Set(wired)].sort(), [...boot.attach.vlans].sort(), 'the instance uses exactly the VLANs its ports carry');
});

test('recovery-steps - a production bare-metal boot carries no attach and keeps the same command id as a drill', () => {
  const p = planner();
  const production = p.commands(bareMetal, 'boot', frame(false));
  const boot = bootConfigure(production);
  assert.equal('attach' in boot, false, 'production uses the server’s own VLANs and LUNs');
  assert.deepEqual({ server: boot.server, image: boot.image, mac: boot.mac }, { server: 'db1', image: 'rhel9-x86', mac: '52:54:00:00:01:03' });
  // Ids derive from (incident, target, step, key, attempt) only: asking again finds the same commands.
  assert.deepEqual(production.map((c) => c.commandId), p.commands(bareMetal, 'boot', frame(false)).map((c) => c.commandId));
  assert.deepEqual(production.map((c) => c.commandId), p.commands(bareMetal, 'boot', frame(true)).map((c) => c.commandId));
});

test('recovery-steps - a drill hypervisor boot carries no attach: its VMs bring their own VLANs and LUNs', () => {
  const p = planner();
  const hypervisor: RecoveryTarget = { mode: 'hypervisor', host: 'r1-h3', servers: ['db1'], standing: false };
  const boot = bootConfigure(p.commands(hypervisor, 'boot', frame(true)));
  assert.equal(boot.image, 'kvm-x86');
  assert.equal(boot.attach, undefined);
});
