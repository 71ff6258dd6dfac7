import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, Inventory } from '@firebreak/shared';
import { generateTopology } from '@firebreak/lab';
import {
  decideSlot,
  firstQuietMinute,
  latestSlot,
  loadDrillSchedules,
  localTime,
  nextSlot,
  openWorkOf,
  parseDrillSchedules,
  parseQuietWindow,
  quietWindowAt,
  scheduledDrillId,
  type DrillSchedule,
} from '../src/drills/index.ts';

const inventory = Inventory.parse(generateTopology({ size: 'tiny', seed: 1 }));
const parse = (text: string): DrillSchedule[] => parseDrillSchedules(text, { inventory, site: 'site1', source: 'drills.yaml' });
const at = (iso: string): number => Date.parse(iso);

/** The ConfigError's message, for a file that must be refused. */
function refusal(text: string): string {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError (exit 2), got ${String(err)}`);
    return err.message;
  }
  assert.fail('the file was accepted');
}

test('drill schedule - a YAML file gives one schedule per entry, with its domain hosts, zone and quiet hours', () => {
  const [weekly, pdu] = parse(`
timezone: Europe/Paris
schedules:
  - domain: rack r2
    cron: "0 3 * * 6"
    maxDuration: 30m
    quietHours: ["Mon-Fri 07:00-19:00", "22:00-01:00"]
  - name: pdu-nightly
    domain: pdu r3-pdu
    cron: "30 2 * * *"
    maxDuration: 90
    timezone: UTC
`);
  assert.ok(weekly && pdu);
  assert.equal(weekly.name, 'rack-r2', 'named after its domain by default');
  assert.equal(weekly.key, 'site1:rack-r2');
  assert.deepEqual(weekly.domain, { kind: 'rack', id: 'r2', site: 'site1' });
  assert.deepEqual(weekly.hosts, inventory.hosts.filter((h) => h.rack === 'r2').map((h) => h.id).sort());
  assert.equal(weekly.timeZone, 'Europe/Paris');
  assert.equal(weekly.maxDurationSeconds, 1800);
  assert.deepEqual(weekly.quietHours.map((w) => [w.text, [...w.days].sort(), w.start, w.end]), [
    ['Mon-Fri 07:00-19:00', [1, 2, 3, 4, 5], 420, 1140],
    ['22:00-01:00', [0, 1, 2, 3, 4, 5, 6], 1320, 60],
  ]);
  assert.equal(pdu.name, 'pdu-nightly');
  assert.equal(pdu.timeZone, 'UTC', 'an entry overrides the file zone');
  assert.equal(pdu.maxDurationSeconds, 90);
  assert.equal(pdu.hosts.length, 8);

  // JSON is read the same way.
  assert.equal(parse(JSON.stringify({ schedules: [{ domain: 'rack r1', cron: '0 4 * * *', maxDuration: '1h' }] }))[0]?.timeZone, 'UTC');
  assert.deepEqual(parse('schedules: []'), []);
});

test('drill schedule - every problem is reported at once with its field, its line and the fix', () => {
  const message = refusal(`schedules:
  - domain: rack r9
    cron: "0 3 * *"
    maxDuration: soon
    quietHours: ["Mon-Fri 08:00-18:00", "weekdays 9-5"]
  - domain: shelf s1
    cron: "61 * * * *"
    maxDuration: 25h
  - domain: rack r2
    cron: "0 3 * * 6"
    maxDuration: 10m
    timezone: Mars/Olympus
    cronn: "x"
`);
  assert.match(message, /^cannot load drills\.yaml:/);
  assert.match(message, /schedules\[0\]\.maxDuration: must be like 90s, 10m, 1h or 1h30m \(or a number of seconds\) \(line 4\)/);
  assert.match(message, /schedules\[1\]\.domain: must be "<kind> <id>" with kind rack, pdu, tor or site, e\.g\. "rack r2" \(line 6\)/);
  assert.match(message, /schedules\[2\]\.timezone: unknown time zone "Mars\/Olympus": use an IANA name such as UTC or Europe\/Paris \(line 12\)/);
  assert.match(message, /schedules\[2\]\.cronn: unknown field; the fields are domain, cron, maxDuration, quietHours, name, site, timezone \(line 13\)/);

  // Cross-checks run once the shapes are right.
  const second = refusal(`schedules:
  - domain: rack r9
    cron: "0 3 * *"
    maxDuration: 10m
    quietHours: ["Mon-Fri 08:00-18:00", "weekdays 9-5", "Mon 08:00-08:00"]
  - domain: rack r2
    cron: "61 * * * *"
    maxDuration: 25h
  - domain: rack r2
    cron: "0 1 * * *"
    maxDuration: 1h
`);
  assert.match(second, /schedules\[0\]\.domain: no rack "r9" with hosts at site "site1" in the inventory; name a domain the inventory has, or give the schedule its site: \(line 2\)/);
  assert.match(second, /schedules\[0\]\.cron: "0 3 \* \*" has 4 field\(s\); use 5 \(minute hour day-of-month month day-of-week\), e\.g\. "0 3 \* \* 6" for Saturdays 03:00, or 6 with seconds first \(line 3\)/);
  assert.match(second, /schedules\[0\]\.quietHours\[1\]: "weekdays 9-5" is not a quiet-hours window: write "\[DAYS \]HH:MM-HH:MM"/);
  assert.match(second, /schedules\[0\]\.quietHours\[2\]: "Mon 08:00-08:00" starts and ends at the same time/);
  assert.match(second, /schedules\[1\]\.cron: "61 \* \* \* \*" is not a cron expression: .*61.* \(line 7\)/);
  assert.match(second, /schedules\[1\]\.maxDuration: at most 24h, got 25h \(line 8\)/);
  assert.match(second, /schedules\[2\]\.domain: schedule "rack-r2" at site "site1" is already schedules\[1\]; give each schedule of a domain its own name: \(line 9\)/);

  assert.match(refusal('schedules:\n  - domain: rack r2\n    cron: [unclosed\n'), /\(file\): not valid YAML or JSON: .* \(line \d\)/);
  assert.match(refusal('{}'), /schedules: required \(expected array\)/);
  assert.match(refusal('schedules: 3'), /schedules: expected array, received number \(line 1\)/);
  assert.match(refusal('schedule: []'), /schedule: unknown field; the fields are timezone, site, schedules \(line 1\)/);
  assert.match(refusal('schedules:\n  - domain: rack r2\n'), /schedules\[0\]\.cron: required \(expected string\) \(line 2\)/);
});

test('drill schedule - a file that cannot be read, or of another kind, is named with the variable that points at it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fb-drills-'));
  await assert.rejects(loadDrillSchedules(join(dir, 'none.yaml'), { inventory, site: 'site1', variable: 'FB_DRILL_SCHEDULE' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /cannot load drill schedule .*none\.yaml \(FB_DRILL_SCHEDULE\): cannot be read: .*ENOENT.*; point it at a readable file or unset it/);
    return true;
  });
  const toml = join(dir, 'drills.toml');
  await writeFile(toml, 'x = 1');
  await assert.rejects(loadDrillSchedules(toml, { inventory, site: 'site1' }), /unsupported extension "\.toml" \(expected \.yaml, \.yml or \.json\)/);
  const good = join(dir, 'drills.yml');
  await writeFile(good, 'schedules:\n  - { domain: rack r1, cron: "0 3 * * *", maxDuration: 10m }\n');
  assert.equal((await loadDrillSchedules(good, { inventory, site: 'site1' }))[0]?.name, 'rack-r1');
});

test('quiet hours - windows by day, past midnight and at day ends, read in the zone given', () => {
  const business = parseQuietWindow('Mon-Fri 08:00-18:00');
  const night = parseQuietWindow('22:00-06:00');
  const weekend = parseQuietWindow('Fri-Mon 12:00-24:00');
  assert.deepEqual([...weekend.days].sort(), [0, 1, 5, 6], 'a range runs forward through the week');
  assert.deepEqual([...parseQuietWindow('sat,Sunday 00:00-24:00').days].sort(), [0, 6]);

  const w = [business];
  assert.equal(quietWindowAt(w, { weekday: 1, minute: 8 * 60 }), business, 'start is inside');
  assert.equal(quietWindowAt(w, { weekday: 1, minute: 18 * 60 }), undefined, 'end is outside');
  assert.equal(quietWindowAt(w, { weekday: 6, minute: 12 * 60 }), undefined, 'not on Saturday');
  // Past midnight the window belongs to the day it starts on.
  const fridayNight = parseQuietWindow('Fri 22:00-06:00');
  assert.equal(quietWindowAt([fridayNight], { weekday: 6, minute: 5 * 60 }), fridayNight, 'Saturday 05:00 is in Friday night');
  assert.equal(quietWindowAt([fridayNight], { weekday: 5, minute: 5 * 60 }), undefined, 'Friday 05:00 is in Thursday night, not listed');
  assert.equal(quietWindowAt([night], { weekday: 3, minute: 23 * 60 }), night);

  // 2026-03-02 is a Monday. Paris is UTC+1 in winter, UTC+2 from 29 March.
  assert.deepEqual(localTime(at('2026-03-02T07:30:00Z'), 'Europe/Paris'), { weekday: 1, minute: 8 * 60 + 30 });
  assert.deepEqual(localTime(at('2026-03-30T06:30:00Z'), 'Europe/Paris'), { weekday: 1, minute: 8 * 60 + 30 }, 'daylight saving keeps wall-clock hours');
  assert.deepEqual(localTime(at('2026-03-01T23:30:00Z'), 'UTC'), { weekday: 0, minute: 23 * 60 + 30 });

  // A run of [from, to) meets quiet hours at its first quiet minute.
  const monday0750 = at('2026-03-02T07:50:00Z');
  assert.equal(firstQuietMinute(w, monday0750, monday0750 + 5 * 60_000, 'UTC'), undefined);
  assert.equal(firstQuietMinute(w, monday0750, monday0750 + 30 * 60_000, 'UTC')?.at, at('2026-03-02T08:00:00Z'));
  assert.equal(firstQuietMinute(w, monday0750 + 15_000, monday0750 + 10 * 60_000 + 15_000, 'UTC')?.at, at('2026-03-02T08:00:00Z'), 'minute boundaries, not the start plus whole minutes');
  assert.equal(firstQuietMinute(w, at('2026-03-02T07:50:00Z'), at('2026-03-02T08:00:00Z'), 'UTC'), undefined, 'a run may end as quiet hours begin');
  assert.equal(firstQuietMinute([], 0, 1e12, 'UTC'), undefined);
});

function schedule(over: Partial<DrillSchedule> = {}): DrillSchedule {
  const [s] = parse('schedules:\n  - { domain: rack r2, cron: "0 3 * * *", maxDuration: 30m, quietHours: ["Mon-Fri 08:00-18:00"] }\n');
  assert.ok(s);
  return { ...s, ...over };
}

test('drill slots - the newest slot at or before now, in the schedule zone; ids made from the slot', () => {
  const s = schedule();
  assert.equal(latestSlot(s, at('2026-03-02T03:00:00Z')), at('2026-03-02T03:00:00Z'), 'a slot at now counts');
  assert.equal(latestSlot(s, at('2026-03-02T02:59:59Z')), at('2026-03-01T03:00:00Z'));
  assert.equal(nextSlot(s, at('2026-03-02T03:00:00Z')), at('2026-03-03T03:00:00Z'));
  assert.equal(latestSlot({ ...s, timeZone: 'Europe/Paris' }, at('2026-03-02T03:00:00Z')), at('2026-03-02T02:00:00Z'), '03:00 in Paris is 02:00 UTC in winter');
  assert.equal(latestSlot({ ...s, cron: '*/2 * * * * *' }, at('2026-03-02T03:00:03.500Z')), at('2026-03-02T03:00:02Z'), 'six fields: seconds first');
  assert.equal(scheduledDrillId('rack-r2', at('2026-03-02T03:00:00Z')), 'sched-rack-r2-20260302T030000Z');
});

test('drill slots - fire a due slot; skip one missed, in or running into quiet hours, beside a failure or a drill of the domain', () => {
  const s = schedule();
  const slot = at('2026-03-07T03:00:00Z'); // a Saturday
  const calm = { now: slot + 5_000, open: [], lateAfterMs: 5 * 60_000 };
  assert.deepEqual(decideSlot(s, slot, calm), { fire: true, drillId: 'sched-rack-r2-20260307T030000Z' });

  assert.deepEqual(decideSlot(s, slot, { ...calm, now: slot + 20 * 60_000 }), { fire: false, reason: 'missed: 20 min late (no planner led the site at its time)' });

  const monday = at('2026-03-02T09:00:00Z');
  assert.deepEqual(decideSlot(s, monday, { ...calm, now: monday }), { fire: false, reason: 'quiet hours (Mon-Fri 08:00-18:00)' });
  const beforeWork = at('2026-03-02T07:45:00Z');
  assert.deepEqual(decideSlot(s, beforeWork, { ...calm, now: beforeWork }), {
    fire: false,
    reason: 'would run into quiet hours (Mon-Fri 08:00-18:00) 15 min after its start, within its 30 min maximum',
  });
  assert.equal(decideSlot({ ...s, maxDurationSeconds: 600 }, beforeWork, { ...calm, now: beforeWork }).fire, true, 'a short drill ends before 08:00');

  const failure = { id: 'inc-r1-h01-1', drillId: null, hosts: ['r1-h01'] };
  assert.deepEqual(decideSlot(s, slot, { ...calm, open: [failure] }), { fire: false, reason: 'incident inc-r1-h01-1 is open at the site: a real failure comes first' });
  const drillOnR2 = { id: 'drill-x', drillId: 'x', hosts: ['r2-h03'] };
  assert.deepEqual(decideSlot(s, slot, { ...calm, open: [drillOnR2] }), { fire: false, reason: 'drill x is open on hosts of rack r2' });
  assert.equal(decideSlot(s, slot, { ...calm, open: [{ id: 'drill-y', drillId: 'y', hosts: ['r1-h01'] }] }).fire, true, 'a drill of another domain does not stop it');
});

test('drill slots - open work: the incidents, and requests not opened yet while they may still run', () => {
  const now = at('2026-03-07T03:00:00Z');
  const work = openWorkOf(
    [{ id: 'drill-a', drillId: 'a', hosts: ['r2-h01'] }],
    [
      { drillId: 'a', site: 'site1', requestedAt: now - 1_000, maxDurationSeconds: 600, hosts: ['r2-h01'] },
      { drillId: 'b', site: 'site1', requestedAt: now - 1_000, maxDurationSeconds: 600, hosts: ['r1-h01'] },
      { drillId: 'old', site: 'site1', requestedAt: now - 700_000, maxDurationSeconds: 600, hosts: ['r2-h01'] },
      { drillId: 'elsewhere', site: 'site2', requestedAt: now, maxDurationSeconds: 600, hosts: ['x'] },
    ],
    'site1',
    now,
  );
  assert.deepEqual(work, [
    { id: 'drill-a', drillId: 'a', hosts: ['r2-h01'] },
    { id: 'drill-b', drillId: 'b', hosts: ['r1-h01'] },
  ]);
});
