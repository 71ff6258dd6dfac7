/**
 * The tgt driver against a real tgtd (its own control port, an iSCSI portal
 * on 127.0.0.1) with libiscsi's initiators as the hosts: `iscsi-ls` shows
 * what an initiator is offered and may log in to, `iscsi-perf` keeps a
 * session open the way a running host does.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { errorCodes, type StorageArray } from '@firebreak/shared';
import { freePort, waitFor } from '@firebreak/shared/testing';
import { DriverError } from '../src/driver-error.ts';
import { TgtStorageDriver } from '../src/storage/tgt.driver.ts';
import { tgtadmRunner, type TgtadmRunner } from '../src/storage/tgtadm.ts';

const PREFIX = 'iqn.2026-11.io.firebreak';
const H1 = 'iqn.2026-01.test.firebreak:h1';
const H2 = 'iqn.2026-01.test.firebreak:h2';
const LUN_BYTES = 16 * 1024 * 1024;

const signal = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

function installed(command: string): boolean {
  // PATH only: the test, like the driver, runs these by name (Debian puts tgtd and tgtadm in /usr/sbin).
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const missing = (['tgtd', 'tgtadm', 'iscsi-ls', 'iscsi-perf'] as const).filter((c) => !installed(c));
const skipPeers = missing.length === 0 ? false : `${missing.join(', ')} not installed (or not on PATH): apt-get install tgt libiscsi-bin`;
const skipTgtadm = installed('tgtadm') ? false : 'tgtadm not installed (or not on PATH): apt-get install tgt';

function run(command: string, args: readonly string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') reject(err);
      else resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr });
    });
  });
}

/** A tgtd of the test's own: control port, portal and backing files nobody else uses. */
class TgtPeer {
  readonly output: string[] = [];
  private constructor(
    readonly controlPort: number,
    readonly portalPort: number,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<TgtPeer> {
    // tgtd's control port is only a socket name (/var/run/tgtd/socket.N), a C short: any unused N will do.
    let controlPort: number;
    do controlPort = 20_000 + Math.floor(Math.random() * 12_000);
    while (existsSync(`/var/run/tgtd/socket.${controlPort}.lock`));
    const portalPort = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'fb-tgt-'));
    const child = spawn('tgtd', ['-f', '--control-port', `${controlPort}`, '--iscsi', `portal=127.0.0.1:${portalPort}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const peer = new TgtPeer(controlPort, portalPort, dir, child);
    child.stdout?.on('data', (b: Buffer) => peer.output.push(b.toString()));
    child.stderr?.on('data', (b: Buffer) => peer.output.push(b.toString()));
    // A test process that dies without its after() hooks must not leave tgtd behind.
    process.once('exit', () => child.kill('SIGKILL'));
    try {
      await waitFor('tgtd to answer tgtadm and listen on its portal', async () => {
        if (child.exitCode !== null) throw new Error(`tgtd exited ${child.exitCode}: ${peer.output.join('')}`);
        return (await peer.tgtadm('--mode', 'target', '--op', 'show').catch(() => undefined)) !== undefined && (await listening(portalPort));
      });
    } catch (err) {
      await peer.stop();
      throw err;
    }
    return peer;
  }

  get address(): string {
    return `tgt://local?control-port=${this.controlPort}`;
  }

  async tgtadm(...args: string[]): Promise<string> {
    const r = await run('tgtadm', ['--control-port', `${this.controlPort}`, '--lld', 'iscsi', ...args]);
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** A target `<prefix>:<lun>` serving a fresh sparse file as LUN 1, masked from everyone. */
  async addLun(tid: number, lun: string, content?: string): Promise<string> {
    const file = join(this.dir, `${lun}.img`);
    await writeFile(file, '');
    const handle = await open(file, 'r+');
    await handle.truncate(LUN_BYTES);
    if (content !== undefined) await handle.write(content, 0);
    await handle.close();
    await this.tgtadm('--mode', 'target', '--op', 'new', '--tid', `${tid}`, '--targetname', `${PREFIX}:${lun}`);
    await this.tgtadm('--mode', 'logicalunit', '--op', 'new', '--tid', `${tid}`, '--lun', '1', '--backing-store', file);
    return file;
  }

  /** What `iscsi-ls -s` as this initiator finds: target name → LUN numbers. */
  async seenBy(initiator: string): Promise<Map<string, number[]>> {
    const r = await run('iscsi-ls', ['-s', '-i', initiator, `iscsi://127.0.0.1:${this.portalPort}`]);
    if (r.code !== 0) throw new Error(`iscsi-ls as ${initiator} failed (${r.code}): ${r.stderr.trim()}`);
    const seen = new Map<string, number[]>();
    let current: number[] | undefined;
    for (const line of r.stdout.split('\n')) {
      const target = /^Target:(\S+)/.exec(line);
      if (target) seen.set(target[1] ?? '', (current = []));
      const lun = /^Lun:(\d+)\s+Type:DIRECT_ACCESS/.exec(line);
      if (lun && current) current.push(Number(lun[1]));
    }
    return seen;
  }

  /** True when the initiator is offered `lun` at discovery and can log in to its disk. */
  async sees(initiator: string, lun: string): Promise<boolean> {
    return (await this.seenBy(initiator)).get(`${PREFIX}:${lun}`)?.includes(1) ?? false;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      // tgtd ignores SIGTERM and SIGINT by design, and refuses a clean shutdown while it has targets.
      this.child.kill('SIGKILL');
      await exited;
    }
    // tgtd leaves its socket and lock file behind.
    await rm(`/var/run/tgtd/socket.${this.controlPort}`, { force: true });
    await rm(`/var/run/tgtd/socket.${this.controlPort}.lock`, { force: true });
    await rm(this.dir, { recursive: true, force: true });
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Every tgtadm call the driver makes, by mode and op (`target bind`, `conn delete`, …). */
function countingRunner(): { runner: TgtadmRunner; count: (op: string) => number } {
  const real = tgtadmRunner();
  const sent: string[] = [];
  return {
    runner: (args, s) => {
      const at = (name: string) => args[args.indexOf(name) + 1] ?? '';
      sent.push(`${at('--mode')} ${at('--op')}`);
      return real(args, s);
    },
    count: (op) => sent.filter((o) => o === op).length,
  };
}

function isDriverError(check: (err: DriverError) => void): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof DriverError, `expected a DriverError, got ${String(err)}`);
    check(err);
    return true;
  };
}

describe('storage-tgt', { skip: skipPeers }, () => {
  let peer: TgtPeer;
  let driver: TgtStorageDriver;
  let count: (op: string) => number;
  let array: StorageArray;
  let dbFile: string;

  before(async () => {
    peer = await TgtPeer.start();
    await peer.addLun(1, 'lun-app1');
    dbFile = await peer.addLun(2, 'lun-db1', 'firebreak-db1-block-0');
    array = { id: 'tgt1', fabric: 'iscsi-a', driver: 'tgt', address: peer.address };
    const counting = countingRunner();
    count = counting.count;
    driver = await TgtStorageDriver.fromInventory(array, { runner: counting.runner, pollIntervalMs: 20, settleWaitMs: 5_000 });
  });
  after(async () => {
    await driver?.close();
    await peer?.stop();
  });

  test('storage-tgt - a new target is offered to no initiator', async () => {
    assert.equal(await peer.sees(H1, 'lun-app1'), false);
    assert.equal(await peer.sees(H2, 'lun-db1'), false);
    assert.deepEqual(await driver.list(H1, signal()), []);
    assert.deepEqual(await driver.list(undefined, signal()), ['lun-app1', 'lun-db1']);
  });

  test('storage-tgt - grant makes the LUN visible to that initiator only; a repeat grant sends nothing', async () => {
    const binds = count('target bind');
    const first = await driver.grant('lun-app1', H1, signal());
    assert.equal(first.done, true, first.message);
    assert.equal(await peer.sees(H1, 'lun-app1'), true, 'iscsi-ls as h1 lists the target and its LUN 1');
    assert.equal(await peer.sees(H2, 'lun-app1'), false, 'another initiator still sees nothing');
    assert.equal(await driver.canSee(H1, 'lun-app1', signal()), true);
    assert.equal(await driver.canSee(H2, 'lun-app1', signal()), false);

    const again = await driver.grant('lun-app1', H1, signal());
    assert.equal(again.done, true, again.message);
    assert.match(again.message, /already granted/);
    assert.equal(count('target bind'), binds + 1, 'tgtd saw exactly one bind');
    assert.deepEqual(await driver.list(H1, signal()), ['lun-app1']);
  });

  test('storage-tgt - revoke hides the LUN from the initiator; a repeat revoke sends nothing', async () => {
    const unbinds = count('target unbind');
    const first = await driver.revoke('lun-app1', H1, signal());
    assert.equal(first.done, true, first.message);
    assert.match(first.message, /unbound iqn/);
    assert.equal(await peer.sees(H1, 'lun-app1'), false);
    assert.equal(await driver.canSee(H1, 'lun-app1', signal()), false);

    const again = await driver.revoke('lun-app1', H1, signal());
    assert.equal(again.done, true, again.message);
    assert.match(again.message, /already revoked/);
    assert.equal(count('target unbind'), unbinds + 1);
    assert.deepEqual(await driver.list(H1, signal()), []);
  });

  test('storage-tgt - revoke cuts off a host that is logged in and doing I/O, and it cannot log back in', async () => {
    assert.equal((await driver.grant('lun-db1', H1, signal())).done, true);
    const host = spawn('iscsi-perf', ['-x', '0', '-m', '1', '-i', H1, `iscsi://127.0.0.1:${peer.portalPort}/${PREFIX}:lun-db1/1`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let said = '';
    host.stdout.on('data', (b: Buffer) => (said += b.toString()));
    host.stderr.on('data', (b: Buffer) => (said += b.toString()));
    const exited = new Promise<number | null>((resolve) => host.once('exit', (code) => resolve(code)));
    try {
      await waitFor('iscsi-perf to log in and read', () => /iops/.test(said), 10_000);
      const sessions = (await driver.targets(signal())).find((t) => t.name.endsWith(':lun-db1'))?.sessions ?? [];
      assert.deepEqual(sessions.map((s) => s.initiator), [H1]);

      const step = await driver.revoke('lun-db1', H1, signal());
      assert.equal(step.done, true, step.message);
      assert.match(step.message, /unbound .*closed session \d+/);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('still running'), 10_000)))]);
      clearTimeout(timer);
      assert.equal(code, 1, `the host's I/O ended: ${said.slice(-300)}`);
      assert.match(said, /Failed to log in/, 'its reconnect was refused');
      assert.equal(await driver.canSee(H1, 'lun-db1', signal()), false);
    } finally {
      host.kill('SIGKILL');
    }
  });

  test('storage-tgt - revokeAll fences the initiator from every target and leaves other initiators alone', async () => {
    assert.equal((await driver.grant('lun-app1', H1, signal())).done, true);
    assert.equal((await driver.grant('lun-db1', H1, signal())).done, true);
    assert.equal((await driver.grant('lun-db1', H2, signal())).done, true);
    assert.deepEqual([...(await peer.seenBy(H1)).keys()].sort(), [`${PREFIX}:lun-app1`, `${PREFIX}:lun-db1`]);
    const unbinds = count('target unbind');

    const fence = await driver.revokeAll(H1, signal());
    assert.equal(fence.done, true, fence.message);
    assert.match(fence.message, /revoked lun-app1 .*; lun-db1 /);
    assert.equal((await peer.seenBy(H1)).size, 0, 'h1 is offered nothing');
    assert.equal(await peer.sees(H2, 'lun-db1'), true, 'h2 keeps its LUN');
    assert.equal(count('target unbind'), unbinds + 2);

    const again = await driver.revokeAll(H1, signal());
    assert.equal(again.done, true);
    assert.match(again.message, /already fenced/);
    assert.equal(count('target unbind'), unbinds + 2, 'a repeat fence sends nothing');
    assert.equal((await driver.revoke('lun-db1', H2, signal())).done, true);
  });

  test('storage-tgt - a target open to every address is reported, not called fenced', async () => {
    await peer.tgtadm('--mode', 'target', '--op', 'bind', '--tid', '1', '--initiator-address', 'ALL');
    try {
      assert.equal(await peer.sees(H2, 'lun-app1'), true);
      assert.equal(await driver.canSee(H2, 'lun-app1', signal()), true);
      await assert.rejects(
        driver.revokeAll(H2, signal()),
        isDriverError((err) => {
          assert.equal(err.retryable, false);
          assert.match(err.message, /cannot prove iqn\.2026-01\.test\.firebreak:h2 fenced/);
          assert.match(err.message, new RegExp(`${PREFIX}:lun-app1 \\(tid 1\\) admits ALL`));
        }),
      );
    } finally {
      await peer.tgtadm('--mode', 'target', '--op', 'unbind', '--tid', '1', '--initiator-address', 'ALL');
    }
  });

  test('storage-tgt - a clone is a masked copy beside the original, can be granted, and is deleted with its file', async () => {
    assert.equal((await driver.grant('lun-db1', H1, signal())).done, true);
    const created = await driver.clone('lun-db1', 'lun-db1-drill', signal());
    assert.equal(created.done, true, created.message);
    const cloneFile = join(peer.dir, 'lun-db1-drill.clone-of-lun-db1.img');
    const copy = await readFile(cloneFile);
    assert.equal(copy.length, LUN_BYTES);
    assert.equal(copy.subarray(0, 21).toString(), 'firebreak-db1-block-0', 'the clone carries the original data');
    assert.deepEqual(await driver.list(undefined, signal()), ['lun-app1', 'lun-db1', 'lun-db1-drill']);
    assert.equal(await peer.sees(H1, 'lun-db1-drill'), false, 'a new clone is masked from everyone, even hosts of the original');
    assert.equal(await peer.sees(H1, 'lun-db1'), true, 'the original keeps its masking');

    const creates = count('target new');
    const again = await driver.clone('lun-db1', 'lun-db1-drill', signal());
    assert.equal(again.done, true);
    assert.match(again.message, /already there/);
    assert.equal(count('target new'), creates);

    assert.equal((await driver.grant('lun-db1-drill', H2, signal())).done, true);
    assert.equal(await peer.sees(H2, 'lun-db1-drill'), true);

    const deleted = await driver.deleteClone('lun-db1-drill', signal());
    assert.equal(deleted.done, true, deleted.message);
    assert.equal(await peer.sees(H2, 'lun-db1-drill'), false);
    assert.equal(existsSync(cloneFile), false, 'the copy is gone');
    assert.deepEqual((await readdir(peer.dir)).sort(), ['lun-app1.img', 'lun-db1.img'], 'no partial copy left behind');
    const deletes = count('target delete');
    const deletedAgain = await driver.deleteClone('lun-db1-drill', signal());
    assert.equal(deletedAgain.done, true);
    assert.match(deletedAgain.message, /nothing to delete/);
    assert.equal(count('target delete'), deletes);
    // The undo of a grant on a deleted clone still succeeds.
    assert.equal((await driver.revoke('lun-db1-drill', H2, signal())).done, true);
    assert.equal((await driver.revoke('lun-db1', H1, signal())).done, true);
  });

  test('storage-tgt - refuses to delete an original LUN or to reuse its id as a clone', async () => {
    await assert.rejects(
      driver.deleteClone('lun-db1', signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, false);
        assert.match(err.message, /"lun-db1" \(iqn\.2026-11\.io\.firebreak:lun-db1\) is not a clone; refusing/);
      }),
    );
    assert.equal(existsSync(dbFile), true);
    assert.deepEqual(await driver.list(undefined, signal()), ['lun-app1', 'lun-db1']);
    await assert.rejects(driver.clone('lun-app1', 'lun-db1', signal()), isDriverError((err) => assert.match(err.message, /already exists as an original LUN/)));
  });

  test('storage-tgt - an unknown LUN is a permanent error naming the array', async () => {
    for (const attempt of [() => driver.grant('lun-nope', H1, signal()), () => driver.clone('lun-nope', 'lun-nope-drill', signal())]) {
      await assert.rejects(
        attempt(),
        isDriverError((err) => {
          assert.equal(err.retryable, false);
          assert.match(err.message, /tgt tgt1: no LUN "lun-nope"/);
        }),
      );
    }
    assert.equal((await driver.revoke('lun-nope', H1, signal())).done, true, 'nothing to revoke is done');
    assert.equal(await driver.canSee(H1, 'lun-nope', signal()), false);
  });

  test('storage-tgt - a WWPN or a malformed initiator is a permanent error and nothing is sent', async () => {
    const before = count('target show') + count('target bind');
    await assert.rejects(
      driver.grant('lun-app1', '50:01:43:80:12:34:56:78', signal()),
      isDriverError((err) => {
        assert.equal(err.code, errorCodes.permanent);
        assert.match(err.message, /tgt serves iSCSI: initiator must be an IQN/);
      }),
    );
    await assert.rejects(driver.revokeAll('h2', signal()), isDriverError((err) => assert.match(err.message, /"h2": not an iSCSI IQN/)));
    assert.equal(count('target show') + count('target bind'), before);
  });
});

describe('storage-tgt configuration', { skip: skipTgtadm }, () => {
  const array: StorageArray = { id: 'tgt9', fabric: 'iscsi-a', driver: 'tgt', address: 'tgt://local' };

  test('storage-tgt configuration - no tgtd on the control port is a transient error naming the array and address', async () => {
    let port: number;
    do port = 20_000 + Math.floor(Math.random() * 12_000);
    while (existsSync(`/var/run/tgtd/socket.${port}`));
    const address = `tgt://local?control-port=${port}`;
    const driver = await TgtStorageDriver.fromInventory({ ...array, address });
    await assert.rejects(
      driver.grant('lun-app1', H1, signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, true);
        assert.equal(err.code, errorCodes.transient);
        assert.match(err.message, new RegExp(`tgt tgt9: no tgtd answers on control port ${port} \\(tgt://local\\?control-port=${port}\\)`));
        assert.match(err.message, /is tgtd running there/);
      }),
    );
  });

  test('storage-tgt configuration - a missing tgtadm is a transient error saying what to install', async () => {
    const driver = new TgtStorageDriver({ array, runner: tgtadmRunner('/nonexistent/tgtadm') });
    await assert.rejects(
      driver.list(undefined, signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, true);
        assert.match(err.message, /tgt tgt9: tgtadm is not installed on this machine \(apt-get install tgt\)/);
      }),
    );
  });

  test('storage-tgt configuration - refuses another driver and any address but a local tgtd', async () => {
    await assert.rejects(TgtStorageDriver.fromInventory({ ...array, driver: 'lab-san' }), /not one this driver speaks/);
    for (const address of ['http://127.0.0.1:3260', 'tgt://san1.example?control-port=1', 'tgt://local?control-port=70000', 'tgt://local?port=3260', '3260']) {
      await assert.rejects(
        TgtStorageDriver.fromInventory({ ...array, address }),
        isDriverError((err) => {
          assert.equal(err.retryable, false, address);
          assert.match(err.message, /tgt tgt9: (address|control-port)/);
        }),
      );
    }
    await TgtStorageDriver.fromInventory({ ...array, address: 'tgt://local?control-port=0' });
  });
});
