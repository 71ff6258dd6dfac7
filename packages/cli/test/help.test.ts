import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, isolatedEnv, runMain } from './cli-process.ts';

before(async () => {
  // Nothing running and nothing to find: a help that tried to connect would fail loudly.
  Object.assign(process.env, isolatedEnv(await mkdtemp(join(tmpdir(), 'fb-state-'))));
});

const faultCommands = ['burn', 'kill', 'isolate', 'flap', 'restore', 'bmc', 'health'];

/** Each command and subcommand, and what its usage must name. */
const helpCases: [string[], RegExp][] = [
  [['up', '--help'], /firebreak up\s+\[--demo\] \[--logs\]/],
  [['up', '-h'], /firebreak up\s+\[--demo\]/],
  [['lab', '--help'], /firebreak lab\s+\[--size tiny\|rack\|row\|10k\]/],
  [['lab', '--seed', '3', '-h'], /firebreak lab\s+\[--size/],
  [['status', '--help'], /firebreak status \[--site S\] \[--json\] \[--nats-url URL\] \[--redis-url URL\]/],
  [['status', '-h'], /firebreak status \[--site S\]/],
  [['where', '--help'], /firebreak where \[SERVER\|HOST\] \[--json\] \[--redis-url URL\]/],
  [['history', '-h'], /firebreak history SERVER\|HOST \[--json\]/],
  [['drill', '--help'], /firebreak drill start rack\|pdu\|tor\|site <id>[\s\S]*firebreak drill stop <drillId>/],
  [['drill', 'start', '--help'], /firebreak drill start /],
  [['drill', 'start', 'rack', 'r2', '-h'], /firebreak drill start /],
  [['drill', 'stop', '--help'], /firebreak drill stop <drillId> \[--reason TEXT\]/],
  [['plan', '--help'], /firebreak plan --what-if \[rack\|pdu\|tor\|site <id>\]/],
  [['plan', '--what-if', 'rack', 'r2', '-h'], /firebreak plan --what-if/],
  [['inventory', '--help'], /firebreak inventory validate <file>[\s\S]*firebreak inventory import <file>/],
  [['inventory', 'validate', '--help'], /firebreak inventory validate <file>/],
  [['inventory', 'import', 'x.yaml', '-h'], /firebreak inventory import <file> \[--redis-url URL\]/],
  [['burn', '--help'], /firebreak burn rack <id> \[--json\] \[--lab URL\]\n\s+power, BMCs, links and heartbeats of a rack gone/],
  [['burn', 'rack', 'r1', '-h'], /firebreak burn rack <id>/],
  [['kill', '--help'], /firebreak kill host <id>/],
  [['isolate', '--help'], /firebreak isolate host <id> \[--undo\]/],
  [['flap', '--help'], /firebreak flap host <id> \[--period-ms N\] \[--cycles N\]/],
  [['restore', '--help'], /firebreak restore host <id>/],
  [['bmc', '--help'], /firebreak bmc <host> unreachable\|ok\|fail/],
  [['health', '-h'], /firebreak health <host> ok\|warning\|critical/],
  [['help', 'status'], /firebreak status \[--site S\]/],
  [['help', 'burn'], /firebreak burn rack <id>/],
  [['help', 'help'], /firebreak help \[<command>\]/],
];

test('cli help - every command and subcommand answers --help and -h with its own usage on stdout, exit 0, touching nothing', async () => {
  for (const [args, usage] of helpCases) {
    const run = await runMain(args);
    const what = `firebreak ${args.join(' ')}`;
    assert.equal(run.code, 0, `${what}: ${run.stderr}`);
    assert.equal(run.stderr, '', what);
    assert.match(run.stdout, /^usage:\n/, what);
    assert.match(run.stdout, usage, what);
    assert.match(run.stdout, /"firebreak help" lists every command/, what);
  }
  // The commands that find a running system say how, so the user can point at one.
  for (const command of ['status', 'where', 'history', 'drill', 'plan', 'inventory']) {
    const run = await runMain([command, '--help']);
    assert.match(run.stdout, /--nats-url[\s\S]*NATS_URL[\s\S]*"firebreak up"[\s\S]*FB_STATE_DIR[\s\S]*exit 2/, command);
  }
  for (const command of faultCommands) {
    const run = await runMain([command, '--help']);
    assert.match(run.stdout, /--lab URL; default: FB_LAB_URL, else the running "firebreak lab" or "firebreak up"/, command);
  }
});

test('cli help - firebreak, help, --help and -h print the overview naming every command', async () => {
  for (const args of [[], ['help'], ['--help'], ['-h']]) {
    const run = await runMain(args);
    assert.equal(run.code, 0, `firebreak ${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stdout, /^usage: firebreak <command> \[options\]/);
    for (const command of ['up', 'lab', 'status', 'where', 'history', 'drill start', 'drill stop', 'plan', 'inventory validate', 'inventory import', ...faultCommands, 'help']) {
      assert.match(run.stdout, new RegExp(`^  ${command} `, 'm'), `the overview lists ${command}`);
    }
  }
});

test('cli help - an unknown option still exits 2 naming it, with that command\'s usage', async () => {
  const cases: string[][] = [
    ['up', '--bogus'],
    ['lab', '--bogus'],
    ['status', '--bogus'],
    ['drill', 'start', 'rack', 'r2', '--bogus'],
    ['drill', 'stop', 'd1', '--bogus'],
    ['plan', '--what-if', '--bogus'],
    ['inventory', 'validate', 'x.yaml', '--bogus'],
    ['burn', 'rack', 'r1', '--bogus'],
    ['bmc', 'h1', 'ok', '--bogus'],
  ];
  for (const args of cases) {
    const run = await runMain(args);
    const what = `firebreak ${args.join(' ')}`;
    assert.equal(run.code, 2, `${what}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, /^firebreak: Unknown option '--bogus'/, what);
    assert.match(run.stderr, new RegExp(`usage:\\n  firebreak ${args[0]} `), what);
    assert.equal(run.stdout, '', what);
  }
  const unknown = await runMain(['help', 'explode']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "explode"; "firebreak help" lists the commands/);
  // After `--`, "--help" is an argument, not a request for help.
  const literal = await runMain(['drill', 'stop', '--', '--help']);
  assert.equal(literal.code, 2);
  assert.match(literal.stderr, /"--help" is not a drill id/);
});

test('cli help - through the bin: `firebreak lab --help` exits 0 with the usage (it used to exit 2)', () => {
  const run = spawnSync(process.execPath, [bin, 'lab', '--help'], { encoding: 'utf8', env: process.env });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^usage:\n {2}firebreak lab /);
  assert.equal(run.stderr, '');
});
