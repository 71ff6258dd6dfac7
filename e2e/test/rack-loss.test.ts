/**
 * A rack burns (hosts and BMCs gone, links down): every server it ran comes
 * back elsewhere, wired and booted as itself, with no storage handed over
 * before its old host was fenced and no host powered on twice.
 */
import { after, before, test } from 'node:test';
import { burnRack, expectRackRecovered } from '../src/rack-burn.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: 'tiny' });
});
after(() => system?.stop());

test('a burned rack: every server comes back on a fenced-off, correctly wired host', { timeout: 180_000 }, async (t) => {
  const { observer } = system;
  const burned = burnRack(system, 'r2');
  const { lost, burnedAt } = burned;
  const final = await expectRackRecovered(system, burned, 150_000);

  const lastHeartbeat = Math.max(...lost.map(({ server }) => observer.serverHeartbeats.get(server.id)?.at ?? 0));
  t.diagnostic(`burn to last recovered heartbeat: ${lastHeartbeat - burnedAt} ms for ${lost.length} servers`);
  t.diagnostic(`phases: ${observer.phasesOf(final.incidentId).join(' → ')}`);
});
