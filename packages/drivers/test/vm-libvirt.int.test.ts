/**
 * The libvirt driver against a real libvirt: a private `libvirtd` started
 * here (unprivileged, its socket in a temp dir, no TCP, no auth) hosting
 * libvirt's built-in test driver, reached as `test+unix:///default?socket=…`.
 *
 * The test driver keeps `test:///default` state in the daemon only while some
 * connection to it is open, and every virsh call is a connection of its own;
 * the fixture holds one interactive `virsh` open for the whole file, as a real
 * hypervisor's libvirtd keeps its domains without one.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { errorCodes, Secret } from '@firebreak/shared';
import { waitFor } from '@firebreak/shared/testing';
import { LibvirtVmDriver } from '../src/vm/libvirt.driver.ts';
import { conformanceSpec, isDriverError, vmDriverConformance } from './vm-conformance.ts';

const signal = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

function which(binary: string, extra: readonly string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extra].filter((d) => d !== '');
  return dirs.map((dir) => join(dir, binary)).find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const virshPath = which('virsh');
const libvirtdPath = which('libvirtd', ['/usr/sbin', '/sbin']);
const missing =
  virshPath === undefined || libvirtdPath === undefined
    ? `${virshPath === undefined ? 'virsh' : 'libvirtd'} not installed: apt-get install libvirt-clients libvirt-daemon`
    : undefined;
if (missing !== undefined) console.warn(`vm-libvirt: SKIPPED, ${missing}`);

/** Verbs of virsh calls that change a domain, as the counting wrapper logs them. */
const CHANGES = new Set(['define', 'start', 'destroy', 'undefine', 'resume']);
/** Unprivileged, so the daemon runs in session mode and never touches system state. */
const NOBODY = 65_534;

interface LibvirtFixture {
  dir: string;
  uri: string;
  /** A virsh that logs each call's verb (its fourth argument) before running the real one. */
  countingVirsh: string;
  changes(): Promise<number>;
  virsh(...args: string[]): string;
  stop(): Promise<void>;
}

let shared: Promise<LibvirtFixture> | undefined;
const fixture = (): Promise<LibvirtFixture> => (shared ??= startLibvirt());

async function startLibvirt(): Promise<LibvirtFixture> {
  const real = virshPath as string;
  const dir = await mkdtemp(join(tmpdir(), 'fb-libvirt-'));
  const run = join(dir, 'run');
  for (const sub of ['run', 'home', 'config', 'cache']) await mkdir(join(dir, sub));
  const conf = join(dir, 'libvirtd.conf');
  await writeFile(
    conf,
    [
      'listen_tls = 0',
      'listen_tcp = 0',
      `unix_sock_dir = "${run}"`,
      'unix_sock_rw_perms = "0700"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      'log_outputs = "3:stderr"',
      '',
    ].join('\n'),
  );
  const asNobody = process.getuid?.() === 0;
  if (asNobody) {
    for (const path of [dir, run, join(dir, 'home'), join(dir, 'config'), join(dir, 'cache'), conf]) await chown(path, NOBODY, NOBODY);
  }
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: join(dir, 'home'),
    XDG_RUNTIME_DIR: run,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    LC_ALL: 'C',
  };
  // -t: should this test die, the daemon exits on its own once no client is left.
  const daemon = spawn(libvirtdPath as string, ['-f', conf, '-t', '60'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(asNobody && { uid: NOBODY, gid: NOBODY }),
  });
  let daemonLog = '';
  daemon.stderr?.on('data', (chunk: Buffer) => (daemonLog = (daemonLog + chunk.toString()).slice(-4_000)));
  const uri = `test+unix:///default?socket=${join(run, 'libvirt-sock')}`;
  const virsh = (...args: string[]): string => {
    const r = spawnSync(real, ['-c', uri, '-q', ...args], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, timeout: 10_000 });
    if (r.status !== 0) throw new Error(`virsh ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  let keeper: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    keeper?.stdin?.end('quit\n');
    keeper?.kill();
    daemon.kill('SIGTERM');
    if (daemon.exitCode === null) await new Promise((resolve) => daemon.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `libvirtd to listen (${daemonLog})`,
      () => {
        if (daemon.exitCode !== null) throw new Error(`libvirtd exited with ${daemon.exitCode}: ${daemonLog}`);
        return spawnSync(real, ['-c', uri, 'version'], { timeout: 5_000 }).status === 0;
      },
      20_000,
    );
    keeper = spawn(real, ['-c', uri], { stdio: ['pipe', 'ignore', 'ignore'] });
    // The keeper's connection must be open before the first domain is defined.
    await waitFor('the keeper connection', () => {
      const r = spawnSync(real, ['-c', uri, '-q', 'list', '--all', '--name'], { encoding: 'utf8' });
      return r.status === 0 && keeper?.exitCode === null;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const log = join(dir, 'virsh.log');
    const countingVirsh = join(dir, 'virsh');
    await writeFile(countingVirsh, `#!/bin/sh\nprintf '%s\\n' "$4" >> '${log}'\nexec '${real}' "$@"\n`);
    await chmod(countingVirsh, 0o755);
    const changes = async (): Promise<number> => {
      const text = await readFile(log, 'utf8').catch(() => '');
      return text.split('\n').filter((verb) => CHANGES.has(verb)).length;
    };
    return { dir, uri, countingVirsh, changes, virsh, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

after(async () => {
  if (shared !== undefined) await (await shared).stop();
});

vmDriverConformance(
  'vm-libvirt',
  async () => {
    const f = await fixture();
    return {
      driver: new LibvirtVmDriver({ uri: f.uri, host: 'hv1', virsh: f.countingVirsh, pollIntervalMs: 20 }),
      changes: f.changes,
      unreachable: () => Promise.resolve(new LibvirtVmDriver({ uri: `test+unix:///default?socket=${join(f.dir, 'run', 'nothing-here')}`, host: 'hv1' })),
      close: () => Promise.resolve(),
    };
  },
  { skip: missing },
);

describe('vm-libvirt', { skip: missing ?? false }, () => {
  let f: LibvirtFixture;
  before(async () => {
    f = await fixture();
  });

  test('vm-libvirt - libvirt holds the spec as a domain: memory in KiB, vCPUs, network boot, the MAC on the trunk bridge with its VLANs, LUN disks, the image', async () => {
    const vm = new LibvirtVmDriver({ uri: f.uri, host: 'hv1' });
    const spec = conformanceSpec('lv-shape', { memoryGiB: 1.5, cpus: 3, mac: '52:54:00:D0:00:01', vlans: [30, 20, 40], luns: ['lun-db1', 'lun-db1-log'] });
    assert.equal((await vm.define(spec, signal())).done, true);

    const xml = f.virsh('dumpxml', '--inactive', 'lv-shape');
    assert.match(xml, /<memory unit='KiB'>1572864<\/memory>/);
    assert.match(xml, /<vcpu placement='static'>3<\/vcpu>/);
    assert.match(xml, /<boot dev='network'\/>/);
    assert.match(xml, /<mac address='52:54:00:d0:00:01'\/>\s*<source bridge='fb-trunk'\/>/);
    assert.match(xml, /<vlan trunk='yes'>\s*<tag id='30' nativeMode='untagged'\/>\s*<tag id='20'\/>\s*<tag id='40'\/>/);
    assert.match(xml, /<source dev='\/dev\/mapper\/lun-db1'\/>\s*<target dev='sda' bus='scsi'\/>\s*<serial>lun-db1<\/serial>/);
    assert.match(xml, /<source dev='\/dev\/mapper\/lun-db1-log'\/>\s*<target dev='sdb' bus='scsi'\/>/);
    assert.match(xml, /<fb:vm xmlns:fb="https:\/\/firebreak.invalid\/xmlns\/vm\/1" image="rhel9"\/>/);
    assert.equal((await vm.undefine('lv-shape', signal())).done, true);
    await vm.close();
  });

  test('vm-libvirt - a redefinition keeps the domain libvirt knows (same UUID), and a domain changed behind Firebreak is put back', async () => {
    const vm = new LibvirtVmDriver({ uri: f.uri, host: 'hv1' });
    const spec = conformanceSpec('lv-uuid', { mac: '52:54:00:d0:00:02' });
    assert.equal((await vm.define(spec, signal())).done, true);
    const uuid = f.virsh('domuuid', 'lv-uuid').trim();

    // An operator doubles the memory with virsh.
    f.virsh('setmaxmem', 'lv-uuid', '8G', '--config');
    const restored = await vm.define(spec, signal());
    assert.match(restored.message, /redefined: memory 8 GiB → 4 GiB/);
    assert.equal(f.virsh('domuuid', 'lv-uuid').trim(), uuid);
    assert.equal((await vm.undefine('lv-uuid', signal())).done, true);
    await vm.close();
  });

  test('vm-libvirt - a paused domain is running for state and is resumed by start', async () => {
    const vm = new LibvirtVmDriver({ uri: f.uri, host: 'hv1' });
    const spec = conformanceSpec('lv-paused', { mac: '52:54:00:d0:00:03' });
    assert.equal((await vm.define(spec, signal())).done, true);
    assert.equal((await vm.start(spec.name, signal())).done, true);
    f.virsh('suspend', 'lv-paused');
    assert.equal(await vm.state('lv-paused', signal()), 'running');
    const resumed = await vm.start('lv-paused', signal());
    assert.match(resumed.message, /resumed; read back/);
    assert.equal(f.virsh('domstate', 'lv-paused').trim(), 'running');
    assert.equal((await vm.undefine('lv-paused', signal())).done, true);
    await vm.close();
  });

  test('vm-libvirt - a password in the URI never appears in errors', async () => {
    const uri = `test+unix://admin:S3cret-pw@/default?socket=${join(f.dir, 'run', 'nothing-here')}`;
    const vm = new LibvirtVmDriver({ uri, host: 'hv1' });
    await assert.rejects(
      vm.start('lv-any', signal()),
      isDriverError((err) => {
        assert.equal(err.code, errorCodes.transient);
        assert.match(err.message, /hypervisor hv1 \(libvirt test\+unix:\/\/admin:\*\*\*@\/default/);
        assert.match(err.message, /libvirt not reachable: failed to connect to the hypervisor/);
        assert.doesNotMatch(`${err.message} ${String(err.stack)}`, /S3cret-pw/);
      }),
    );
  });

  test('vm-libvirt - credentials reach virsh in a private auth file, never on its command line, and the file goes with the driver', async () => {
    const log = join(f.dir, 'auth.log');
    const spy = join(f.dir, 'virsh-auth');
    await writeFile(
      spy,
      `#!/bin/sh\n{ echo "ARGS $*"; echo "FILE $LIBVIRT_AUTH_FILE $(stat -c %a "$LIBVIRT_AUTH_FILE")"; cat "$LIBVIRT_AUTH_FILE"; } >> '${log}'\nexec '${virshPath as string}' "$@"\n`,
    );
    await chmod(spy, 0o755);
    const vm = new LibvirtVmDriver({
      uri: f.uri,
      host: 'hv1',
      virsh: spy,
      credentialsRef: 'env:FB_TEST_LIBVIRT',
      credentials: { username: 'firebreak', password: new Secret('Sasl-Pass-9') },
    });
    await vm.validate();
    assert.equal(await vm.state('lv-nope', signal()), 'absent');
    const seen = await readFile(log, 'utf8');
    const args = seen.split('\n').filter((l) => l.startsWith('ARGS '));
    assert.ok(args.length > 0);
    for (const line of args) assert.doesNotMatch(line, /Sasl-Pass-9/);
    const file = /^FILE (\S+) (\d+)$/m.exec(seen);
    assert.equal(file?.[2], '600');
    assert.match(seen, /\[credentials-firebreak\]\nauthname=firebreak\npassword=Sasl-Pass-9\n/);
    assert.match(seen, /\[auth-libvirt-default\]\ncredentials=firebreak/);
    await vm.close();
    await assert.rejects(stat(file?.[1] ?? ''), /ENOENT/);
  });

  test('vm-libvirt - from the inventory: only libvirt endpoints, and credentials without a password are refused before anything runs', async () => {
    const host = (hypervisor: unknown) =>
      ({ id: 'hv1', hypervisor }) as unknown as Parameters<typeof LibvirtVmDriver.fromInventory>[0];
    await assert.rejects(LibvirtVmDriver.fromInventory(host(undefined)), /host hv1: no hypervisor endpoint/);
    await assert.rejects(LibvirtVmDriver.fromInventory(host({ driver: 'lab', uri: 'http://x' })), /hypervisor driver "lab" is not one this driver speaks/);
    const vm = await LibvirtVmDriver.fromInventory(host({ driver: 'libvirt', uri: f.uri, credentialsRef: 'env:FB_TEST_LV' }), {
      credentialsEnv: { FB_TEST_LV: '{"username":"only-a-user"}' },
    });
    await assert.rejects(vm.validate(), /credentials env:FB_TEST_LV need a username and a password/);
    const bad = new LibvirtVmDriver({ uri: 'hv1.example/system' });
    await assert.rejects(bad.validate(), /is not a libvirt URI/);
  });
});
