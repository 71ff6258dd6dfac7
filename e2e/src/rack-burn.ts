/**
 * A rack burned in a running system, and what "it came back" means for it:
 * its incident ends recovered with every server in the report, each server
 * runs elsewhere on a correctly wired host, no LUN was granted before its old
 * host was fenced, and no device action happened twice — judged at the lab.
 */
import assert from 'node:assert/strict';
import type { IncidentProgress } from '@firebreak/shared';
import { checkFencedBeforeGrant, checkNoDuplicateActions, checkServersRunElsewhere, eventsSince, serversOn, type LostServer } from './recovery-checks.ts';
import type { RunningSystem } from './system.ts';

export interface BurnedRack {
  rack: string;
  dead: string[];
  lost: LostServer[];
  burnedAt: number;
  /** The lab's event log before the burn. */
  sinceSeq: number;
}

export function burnRack(system: RunningSystem, rack: string): BurnedRack {
  const { lab } = system;
  const sinceSeq = lab.recorder.events().at(-1)?.seq ?? 0;
  const burnedAt = Date.now();
  const dead = lab.faults.burnRack(rack);
  const lost = serversOn(lab.inventory, dead);
  assert.ok(lost.length > 0, `rack ${rack} runs servers`);
  return { rack, dead, lost, burnedAt, sinceSeq };
}

/** Waits for the rack's incident to end, checks it recovered everything at the devices, and returns its final progress. */
export async function expectRackRecovered(system: RunningSystem, burned: BurnedRack, timeoutMs: number): Promise<IncidentProgress> {
  const { lab, observer } = system;
  const { rack, dead, lost, burnedAt, sinceSeq } = burned;
  const final = await observer
    .waitForOutcome(`the incident for rack ${rack}`, (p) => p.hosts.some((h) => dead.includes(h)), timeoutMs)
    .catch((err: unknown) => assert.fail(`${(err as Error).message}\n${system.logs()}`));
  assert.equal(final.phase, 'recovered', `${JSON.stringify(final.report ?? final.servers)}\n${system.logs()}`);
  assert.deepEqual(
    final.report?.filter((r) => r.outcome !== 'recovered').map((r) => r.server),
    [],
    'every server of the rack is reported recovered',
  );
  const events = eventsSince(lab, sinceSeq);
  assert.deepEqual(await checkServersRunElsewhere(lab, observer, system.bootUrl, lost, dead, burnedAt), []);
  assert.deepEqual(checkFencedBeforeGrant(events, lost), []);
  assert.deepEqual(checkNoDuplicateActions(events), []);
  return final;
}
