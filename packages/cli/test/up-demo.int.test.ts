import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isolatedEnv, startCli } from './cli-process.ts';

test('cli - up --demo burns a rack, shows the recovery and ends with a report in which every server of the rack recovered', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fb-state-'));
  const demo = startCli(t, ['up', '--demo'], isolatedEnv(stateDir), 'SIGINT');
  const code = await Promise.race([
    demo.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the demo did not end within 6 min:\n${demo.output()}`)), 360_000).unref()),
  ]);
  const out = demo.output();
  assert.equal(code, 0, out);

  const burned = /burning rack (\S+) \(servers ([^)]+)\)/.exec(out);
  assert.ok(burned, out);
  const [, rack, serverList] = burned;
  const servers = (serverList ?? '').split(', ');
  assert.ok(servers.length > 0);
  // The recovery as it happened: one line per progress change, with the servers' steps.
  assert.match(out, new RegExp(`incident \\S+ recovering \\d+/${servers.length} servers up`));
  // The report: one line per server, each recovered, with its timings and RTO against its target.
  const heading = new RegExp(`incident \\S+ recovered: ${servers.length} of ${servers.length} servers recovered`).exec(out);
  assert.ok(heading, out);
  const report = out.slice(heading.index);
  for (const server of servers) {
    assert.match(report, new RegExp(`\\n\\s+${server}\\s+recovered\\s+\\d+\\s+\\d+\\s+\\d+\\s+\\d+\\s+[\\d.]+ / \\d+`), `${server} in the report`);
  }
  assert.match(out, new RegExp(`demo: rack ${rack} burned and all ${servers.length} of its servers recovered`));
  assert.match(out, /firebreak: executor stopped/, 'everything stopped cleanly');
  assert.ok(!out.includes('\x1b['), 'no escape codes when stdout is not a terminal');
  assert.doesNotMatch(out, /executor\s+info\s+ready/, 'service logs go to the log file, not the screen');
  assert.match(await readFile(join(stateDir, 'up.log'), 'utf8'), /planner\s+info\s+incident closed/);
});
