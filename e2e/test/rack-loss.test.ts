/**
 * A rack burns (hosts and BMCs gone, links down): every server it ran comes
 * back elsewhere, wired and booted as itself, with no storage handed over
 * before its old host was fenced and no host powered on twice.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkFencedBeforeGrant, checkNoDuplicateActions, checkServersRunElsewhere, eventsSince, serversOn } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: 'tiny' });
});
after(() => system?.stop());

test('a burned rack: every server comes back on a fenced-off, correctly wired host', { timeout: 180_000 }, async (t) => {
  const { lab, observer } = system;
  const rack = 'r2';
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const burnedAt = Date.now();
  const dead = lab.faults.burnRack(rack);
  const lost = serversOn(lab.inventory, dead);
  assert.ok(lost.length > 0, `rack ${rack} runs servers`);

  const final = await observer
    .waitForOutcome(`the incident for rack ${rack}`, (p) => p.hosts.some((h) => dead.includes(h)), 150_000)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.equal(final.phase, 'recovered', `${final.message ?? ''}\n${system.logs()}`);
  assert.deepEqual(
    final.report?.filter((r) => r.outcome !== 'recovered').map((r) => r.server),
    [],
    'every server of the rack is reported recovered',
  );

  const events = eventsSince(lab, sinceSeq);
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, lost, dead, burnedAt), []);
  assert.deepEqual(checkFencedBeforeGrant(events, lost), []);
  assert.deepEqual(checkNoDuplicateActions(events), []);

  const lastHeartbeat = Math.max(...lost.map(({ server }) => observer.serverHeartbeats.get(server.id)?.at ?? 0));
  t.diagnostic(`burn to last recovered heartbeat: ${lastHeartbeat - burnedAt} ms for ${lost.length} servers`);
  t.diagnostic(`phases: ${observer.phasesOf(final.incidentId).join(' → ')}`);
});
