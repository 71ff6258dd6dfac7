/**
 * dnsmasq reads what the boot service writes: the configuration snippet
 * parses, and in a network namespace of the test's own, a real iPXE's DHCP
 * exchange with a real dnsmasq tags the MAC that has an entry (added while
 * dnsmasq runs, picked up without a signal) and hands it the first stage,
 * while a MAC without an entry gets no boot file.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { BootServiceDriver } from '@firebreak/drivers';
import { waitFor } from '@firebreak/shared/testing';
import { startBootService, type BootService } from '../src/index.ts';

const DNSMASQ = 'dnsmasq';
const QEMU = 'qemu-system-x86_64';
const ROM = '/usr/lib/ipxe/qemu/efi-e1000.rom';
const KNOWN = '52:54:00:fb:00:01';
const UNKNOWN = '52:54:00:fb:00:99';
/** The bridge's address inside the namespace: where dnsmasq serves and where hosts would reach the boot service. */
const GATEWAY = '10.99.0.1';
const PUBLIC_URL = `http://${GATEWAY}:8081`;

const run = promisify(execFile);

function installed(command: string, args = ['--version']): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

async function sh(command: string, args: readonly string[]): Promise<string> {
  try {
    return (await run(command, args, { timeout: 10_000 })).stdout;
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`${command} ${args.join(' ')}: ${stderr?.trim() || (err as Error).message}`, { cause: err });
  }
}

/** dnsmasq's --log-dhcp lines of one DHCP exchange step, from the first "available DHCP range" before it to the next. */
function exchangeOf(log: string, step: 'DHCPACK', mac: string): string | undefined {
  const blocks = log.split(/^(?=.*available DHCP range)/m);
  return blocks.find((block) => new RegExp(`${step}\\(br0\\) \\S+ ${mac}`).test(block));
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return gone;
}

describe('boot-dnsmasq', () => {
  let dir: string;
  let service: BootService;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fb-boot-dnsmasq-'));
    service = await startBootService({ dir: join(dir, 'state'), publicUrl: PUBLIC_URL });
  });
  after(async () => {
    await service?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('boot-dnsmasq - dnsmasq accepts the written configuration snippet', async (t) => {
    if (!installed(DNSMASQ)) return t.skip(`${DNSMASQ} not installed: apt-get install dnsmasq-base`);
    const out = await run(DNSMASQ, ['--test', `--conf-file=${service.dnsmasqConf}`], { timeout: 10_000 });
    assert.match(out.stderr + out.stdout, /syntax check OK/);
  });

  test('boot-dnsmasq - a real DHCP exchange boots only the MAC with an entry into the first stage', { timeout: 120_000 }, async (t) => {
    for (const [tool, pkg] of [[DNSMASQ, 'dnsmasq-base'], [QEMU, 'qemu-system-x86'], ['ip', 'iproute2']] as const) {
      if (!installed(tool, tool === 'ip' ? ['-V'] : ['--version'])) return t.skip(`${tool} not installed: apt-get install ${pkg}`);
    }
    if (!existsSync(ROM)) return t.skip(`${ROM} not installed: apt-get install ipxe-qemu`);
    if (process.getuid?.() !== 0) return t.skip('needs root to create a network namespace with a bridge and taps (CI runs as root)');

    const ns = `fb-boot-${process.pid}-${randomBytes(3).toString('hex')}`;
    let dnsmasq: ChildProcess | undefined;
    let qemu: ChildProcess | undefined;
    let log = '';
    let guest = '';
    await sh('ip', ['netns', 'add', ns]);
    try {
      const inNs = (args: readonly string[]) => sh('ip', ['-n', ns, ...args]);
      await inNs(['link', 'add', 'br0', 'type', 'bridge']);
      await inNs(['addr', 'add', `${GATEWAY}/24`, 'dev', 'br0']);
      await inNs(['link', 'set', 'br0', 'up']);
      for (const tap of ['tap0', 'tap1']) {
        await sh('ip', ['netns', 'exec', ns, 'ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
        await inNs(['link', 'set', tap, 'master', 'br0']);
        await inNs(['link', 'set', tap, 'up']);
      }

      // prettier-ignore
      dnsmasq = spawn('ip', ['netns', 'exec', ns, DNSMASQ,
        '--keep-in-foreground', '--log-facility=-', '--log-dhcp', '--port=0', '--no-resolv', '--no-hosts',
        // Stays root: the entries live in the test's private temp directory.
        '--user=root', '--interface=br0', '--bind-interfaces', '--dhcp-range=10.99.0.50,10.99.0.99,1h',
        `--dhcp-leasefile=${join(dir, 'leases')}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        `--conf-file=${service.dnsmasqConf}`,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      dnsmasq.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
      dnsmasq.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
      await waitFor('dnsmasq to start', () => /DHCP, sockets bound/.test(log) || dnsmasq?.exitCode !== null, 10_000).catch((err: unknown) =>
        assert.fail(`${(err as Error).message}\ndnsmasq:\n${log}`),
      );
      assert.equal(dnsmasq.exitCode, null, `dnsmasq exited: ${log}`);

      // Written while dnsmasq runs: it must pick the entry up by itself.
      const configured = await BootServiceDriver.fromUrl(service.url).configure(KNOWN, { server: 's1', image: 'img1', imageUrl: `${PUBLIC_URL}/images/img1.ipxe` }, AbortSignal.timeout(5_000));
      assert.equal(configured.done, true, configured.message);
      await waitFor('dnsmasq to read the new dhcp-host file', () => log.includes(`read ${join(dir, 'state', 'dhcp-hosts', KNOWN)}`), 10_000).catch((err: unknown) =>
        assert.fail(`${(err as Error).message}\ndnsmasq:\n${log}`),
      );
      assert.doesNotMatch(log, /bad dhcp-host|error/i);

      // iPXE tries net0 (no entry) first, then net1.
      // prettier-ignore
      qemu = spawn('ip', ['netns', 'exec', ns, QEMU,
        '-accel', 'tcg', '-m', '128', '-nographic', '-display', 'none', '-no-reboot', '-boot', 'n',
        '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `e1000,netdev=n0,mac=${UNKNOWN},romfile=${ROM}`,
        '-netdev', 'tap,id=n1,ifname=tap1,script=no,downscript=no', '-device', `e1000,netdev=n1,mac=${KNOWN},romfile=${ROM}`,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      qemu.stdout?.on('data', (chunk: Buffer) => (guest += chunk.toString()));
      qemu.stderr?.on('data', (chunk: Buffer) => (guest += chunk.toString()));
      await waitFor('a DHCP ack for the MAC with an entry', () => exchangeOf(log, 'DHCPACK', KNOWN) !== undefined || qemu?.exitCode !== null, 90_000).catch((err: unknown) =>
        assert.fail(`${(err as Error).message}\ndnsmasq:\n${log.slice(-3000)}\nguest:\n${guest.slice(-1500)}`),
      );
      const known = exchangeOf(log, 'DHCPACK', KNOWN) ?? assert.fail(`no DHCPACK for ${KNOWN}:\n${log.slice(-3000)}\nguest:\n${guest.slice(-1500)}`);
      assert.match(known, /tags: .*\bfirebreak\b/);
      assert.match(known, /tags: .*\bipxe\b/);
      assert.match(known, new RegExp(`option: 67 bootfile-name  ${PUBLIC_URL}/boot/chain\\.ipxe`));

      const unknown = exchangeOf(log, 'DHCPACK', UNKNOWN) ?? assert.fail(`no DHCPACK for ${UNKNOWN}:\n${log.slice(-3000)}`);
      assert.doesNotMatch(unknown, /\bfirebreak\b/);
      assert.doesNotMatch(unknown, /option: 67 bootfile-name/);
    } finally {
      await stop(qemu);
      await stop(dnsmasq);
      await sh('ip', ['netns', 'del', ns]);
    }
  });
});
