/**
 * A host whose agent goes quiet while its BMC says it is on and healthy is
 * isolated, not dead: Firebreak reports it suspect and does not fail it over
 * (which would leave two copies of its server writing to one LUN).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { topics, type HostSuspect } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { eventsSince, serversOn } from '../src/recovery-checks.ts';
import { fastSettings, startSystem, type RunningSystem } from '../src/system.ts';

let system: RunningSystem;

before(async () => {
  system = await startSystem({ size: 'tiny' });
});
after(() => system?.stop());

test('an isolated host is reported suspect and causes no failover', { timeout: 120_000 }, async () => {
  const { lab, observer, bus } = system;
  const host = lab.inventory.hosts.find((h) => h.role === 'production' && serversOn(lab.inventory, [h.id]).length > 0);
  assert.ok(host);
  const suspects: HostSuspect[] = [];
  const sub = await bus.subscribeCore(topics.hostSuspect, (e) => void suspects.push(e));
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;

  lab.faults.isolateHost(host.id);
  await waitFor(`a suspect verdict for ${host.id}`, () => suspects.some((e) => e.host === host.id), 30_000).catch(() =>
    assert.fail(`no suspect verdict for ${host.id}\n${system.logs()}`),
  );
  // Give a wrong failover every chance to start: several detection windows more.
  await sleep(4 * Number(fastSettings.FB_HB_INTERVAL_MS) * Number(fastSettings.FB_HB_MISSED));
  await sub.stop();

  assert.deepEqual(observer.incidentsFor([host.id]), [], 'no incident for the isolated host');
  const actions = eventsSince(lab, sinceSeq).filter((e) => e.host === host.id && ['bmc', 'switch', 'san'].includes(e.source) && e.action !== 'login' && !e.action.startsWith('get'));
  assert.deepEqual(actions, [], 'nothing was done to the isolated host: no power-off, no port shut, no storage revoked');
  assert.equal(lab.world.host(host.id).power, 'on', 'it still runs its server');
});
