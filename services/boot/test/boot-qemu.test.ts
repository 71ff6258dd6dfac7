/**
 * A real iPXE (the ipxe-qemu ROM in qemu, software emulation) network-boots
 * through the boot service: slirp's DHCP hands it chain.ipxe over TFTP, as
 * dnsmasq would, and from there it must fetch the script for its own MAC
 * and then the image that script names.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BootServiceDriver } from '@firebreak/drivers';
import { freePort, waitFor } from '@firebreak/shared/testing';
import { startBootService, type BootRequestRecord } from '../src/index.ts';

const QEMU = 'qemu-system-x86_64';
const ROM = '/usr/lib/ipxe/qemu/efi-e1000.rom';
const MAC = '52:54:00:fb:00:01';
/** slirp's address for the machine running qemu: reaches services on its 127.0.0.1. */
const HOST_FROM_GUEST = '10.0.2.2';

function installed(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** GET with the Host header the guest will use, so the first stage chains to an address the guest reaches. */
function getAs(url: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
    })
      .on('error', reject)
      .end();
  });
}

test('boot-qemu - an iPXE machine fetches the script for its own MAC from the boot service, then its image', { timeout: 120_000 }, async (t) => {
  if (!installed(QEMU)) return t.skip(`${QEMU} not installed: apt-get install qemu-system-x86`);
  if (!existsSync(ROM)) return t.skip(`${ROM} not installed: apt-get install ipxe-qemu`);

  const dir = await mkdtemp(join(tmpdir(), 'fb-boot-qemu-'));
  const tftp = join(dir, 'tftp');
  const requests: BootRequestRecord[] = [];
  const imageRequests: string[] = [];
  const port = await freePort();
  const service = await startBootService({ dir: join(dir, 'state'), port, onRequest: (r) => requests.push(r) });
  const images: Server = createServer((req, res) => {
    imageRequests.push(req.url ?? '');
    // Keeps the guest busy and quiet until the test stops it.
    res.end('#!ipxe\necho Firebreak test image img1\nsleep 60\n');
  });
  images.listen(0, '127.0.0.1');
  let qemu: ReturnType<typeof spawn> | undefined;
  let guestConsole = '';
  try {
    await new Promise<void>((resolve) => images.once('listening', resolve));
    const imageUrl = `http://${HOST_FROM_GUEST}:${(images.address() as AddressInfo).port}/images/img1.ipxe`;
    const configured = await BootServiceDriver.fromUrl(service.url).configure(MAC, { server: 's1', image: 'img1', imageUrl }, AbortSignal.timeout(5_000));
    assert.equal(configured.done, true, configured.message);

    await mkdir(tftp);
    await writeFile(join(tftp, 'chain.ipxe'), await getAs(`${service.url}/boot/chain.ipxe`, `${HOST_FROM_GUEST}:${port}`));

    const booting = requests.length;
    const fromGuest = () => requests.slice(booting);
    // prettier-ignore
    qemu = spawn(QEMU, [
      '-accel', 'tcg', '-m', '128', '-nographic', '-display', 'none', '-no-reboot', '-boot', 'n',
      '-netdev', `user,id=n0,tftp=${tftp},bootfile=chain.ipxe`,
      '-device', `e1000,netdev=n0,mac=${MAC},romfile=${ROM}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    qemu.stdout?.on('data', (chunk: Buffer) => (guestConsole += chunk.toString()));
    qemu.stderr?.on('data', (chunk: Buffer) => (guestConsole += chunk.toString()));
    const exited = new Promise<void>((resolve) => qemu?.once('exit', () => resolve()));

    const fetched = (): BootRequestRecord | undefined => fromGuest().find((r) => r.method === 'GET' && r.path.startsWith('/boot/'));
    // A script refused ends the guest's attempt: stop waiting then, not after the time limit.
    const refused = () => fromGuest().some((r) => r.path.startsWith('/boot/') && r.status !== 200);
    await Promise.race([
      waitFor('the guest to fetch its script and then its image', () => (fetched() !== undefined && imageRequests.length > 0) || refused(), 90_000),
      exited.then(() => assert.fail(`qemu exited before booting:\n${guestConsole.slice(-2000)}`)),
    ]).catch((err: unknown) => assert.fail(`${(err as Error).message}\nboot service saw: ${JSON.stringify(fromGuest())}\nguest console:\n${guestConsole.slice(-2000)}`));

    const script = fetched();
    assert.equal(script?.status, 200, `${JSON.stringify(fromGuest())}\nguest console:\n${guestConsole.slice(-2000)}`);
    assert.equal(script?.mac, MAC);
    assert.equal(script?.remote, '127.0.0.1');
    assert.deepEqual(imageRequests, ['/images/img1.ipxe']);
    assert.match(script?.path ?? '', /^\/boot\/52%3A54%3A00%3Afb%3A00%3A01\.ipxe$/, 'iPXE sends ${net0/mac} percent-encoded');
    assert.equal(fromGuest().filter((r) => r.path.startsWith('/boot/')).length, 1, 'one script fetch, for this MAC only');
  } finally {
    if (qemu && qemu.exitCode === null) {
      const gone = new Promise((resolve) => qemu?.once('exit', resolve));
      qemu.kill('SIGKILL');
      await gone;
    }
    images.closeAllConnections();
    images.close();
    await service.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
