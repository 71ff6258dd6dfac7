/**
 * A target host that turns out dead mid-recovery: the server's new host
 * powers on but is never heard from. The planner gives it up, undoes its
 * wiring, and recovers the server on another host within the same incident.
 * Judged at the lab: the server runs on the third host, and the dead one no
 * longer sees its LUNs or carries its VLANs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createStore } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { checkFencedBeforeGrant, checkNoDuplicateActions, checkServersRunElsewhere, eventsSince, serversOn } from '../src/recovery-checks.ts';
import { startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  // One attempt per step and a short wait for heartbeats: a dead target is given up in seconds.
  system = await startSystem({ size: 'tiny', executors: 2, planners: 2, env: { FB_STEP_ATTEMPTS: '1', FB_HEARTBEAT_TIMEOUT_MS: '6000' } });
});
after(() => system?.stop());

test('a target host that never comes up is given up and its server recovered on another host in the same incident', { timeout: 240_000 }, async () => {
  const { lab, observer } = system;
  const failed = 'r1-h06';
  const [lost] = serversOn(lab.inventory, [failed]);
  assert.ok(lost?.server.bareMetalOnly, `${failed} runs a bare-metal-only server`);
  const lun = lost.server.luns[0];
  assert.ok(lun !== undefined);
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const killedAt = Date.now();
  lab.faults.killHost(failed);

  // The moment its LUN is granted to a new host, that host goes dark: it will power on and never be heard from.
  let dead = '';
  await waitFor(`${lost.server.id}'s LUN to be granted to a new host`, () => {
    const grant = eventsSince(lab, sinceSeq).find((e) => e.source === 'san' && e.action === 'grant' && e.detail?.['lun'] === lun);
    if (grant?.host) {
      dead = grant.host;
      lab.faults.isolateHost(dead);
    }
    return dead !== '';
  }, 60_000);

  const final = await observer
    .waitForOutcome(`the incident for ${failed}`, (p) => p.hosts.includes(failed) && p.openedAt >= killedAt - 10_000, 150_000)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.equal(final.phase, 'recovered', `${JSON.stringify(final.report)}\n${system.logs()}`);
  const third = observer.serverHeartbeats.get(lost.server.id)?.host;
  assert.ok(third !== undefined && third !== dead && third !== failed, `${lost.server.id} heartbeats from ${third}`);
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, [lost], [failed, dead], killedAt), []);

  // The dead target was undone: its LUN left it before the third host got it, and it carries none of the server's VLANs.
  const events = eventsSince(lab, sinceSeq);
  assert.deepEqual(checkFencedBeforeGrant(events, [lost]), [], 'the failed host was fenced before any grant');
  const toThird = events.filter((e) => !(e.source === 'san' && e.action === 'grant' && e.host === dead));
  assert.deepEqual(checkFencedBeforeGrant(toThird, [{ server: lost.server, formerHost: dead }]), [], 'the dead target was revoked before the third host was granted');
  for (const l of lost.server.luns) assert.equal(lab.world.canSee(dead, l), false, `${dead} still sees ${l}`);
  for (const vlan of lost.server.vlans) assert.equal(lab.world.anyNicOnVlan(dead, vlan), false, `${dead} still carries VLAN ${vlan}`);
  assert.deepEqual(checkNoDuplicateActions(events), []);

  const store = createStore(system.redisUrl);
  try {
    assert.deepEqual((await store.ledger.server(lost.server.id))?.placement, { state: 'bare-metal', host: third });
    const status = (await store.ledger.host(dead))?.status;
    assert.ok(status?.role === 'quarantined' && /failed as a recovery target/.test(status.reason), `${dead}: ${JSON.stringify(status)}`);
  } finally {
    await store.close();
  }
});
