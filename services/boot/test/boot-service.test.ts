import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BootServiceDriver, DriverError } from '@firebreak/drivers';
import { parseBootScript } from '@firebreak/shared';
import { freePort } from '@firebreak/shared/testing';
import { startBootService, type BootRequestRecord, type BootService } from '../src/index.ts';

const MAC = '52:54:00:fb:00:01';
const entry = { server: 's1', image: 'img1', imageUrl: 'http://10.0.2.2:8080/images/img1.ipxe' };
const signal = (ms = 5_000): AbortSignal => AbortSignal.timeout(ms);

function isDriverError(check: (err: DriverError) => void): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof DriverError, `expected a DriverError, got ${String(err)}`);
    check(err);
    return true;
  };
}

/** A raw request, so the Host header and the path go out exactly as written. */
function http(url: string, method: string, path: string, options: { body?: string; host?: string } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers: { ...(options.host !== undefined && { host: options.host }) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('boot-service', () => {
  let dir: string;
  let service: BootService;
  let driver: BootServiceDriver;
  const requests: BootRequestRecord[] = [];
  const count = (method: string) => requests.filter((r) => r.method === method && r.path.startsWith('/v1/hosts/')).length;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fb-boot-'));
    service = await startBootService({ dir, onRequest: (r) => requests.push(r) });
    driver = BootServiceDriver.fromUrl(service.url, { pollIntervalMs: 10 });
  });
  after(async () => {
    await service?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('boot-service - configure serves the entry to the MAC however iPXE spells it, with its DHCP entry', async () => {
    assert.equal(await driver.read(MAC, signal()), undefined);
    const result = await driver.configure(MAC, entry, signal());
    assert.equal(result.done, true, result.message);

    for (const spelling of [MAC, '52%3A54%3A00%3Afb%3A00%3A01', '52-54-00-FB-00-01', '525400fb0001']) {
      const served = await http(service.url, 'GET', `/boot/${spelling}.ipxe`);
      assert.equal(served.status, 200, `/boot/${spelling}.ipxe`);
      assert.deepEqual(parseBootScript(served.text), entry, `/boot/${spelling}.ipxe`);
    }
    assert.equal(await readFile(join(dir, 'dhcp-hosts', MAC), 'utf8'), `${MAC},set:firebreak\n`);
    const listed = JSON.parse((await http(service.url, 'GET', '/v1/hosts')).text) as { hosts: unknown[] };
    assert.deepEqual(listed.hosts, [{ mac: MAC, ...entry }]);
  });

  test('boot-service - a repeat configure sends nothing; a changed image is written and served', async () => {
    const puts = count('PUT');
    const again = await driver.configure(MAC.toUpperCase(), entry, signal());
    assert.equal(again.done, true, again.message);
    assert.match(again.message, /already configured/);
    assert.equal(count('PUT'), puts, 'no PUT for an entry already served');

    const moved = { ...entry, image: 'img2', imageUrl: 'http://10.0.2.2:8080/images/img2.ipxe' };
    assert.equal((await driver.configure(MAC, moved, signal())).done, true);
    assert.equal(count('PUT'), puts + 1);
    assert.deepEqual(await driver.read(MAC, signal()), moved);
    assert.equal((await driver.configure(MAC, entry, signal())).done, true);
  });

  test("boot-service - an entry's attached VLANs and LUNs are served in the script and in GET; a changed attach is written, a reordered one is not", async () => {
    const mac = '52:54:00:fb:00:03';
    const attach = { vlans: [2101, 2102], luns: ['lun-db1-d-0123456789ab'] };
    const put = await http(service.url, 'PUT', `/v1/hosts/${mac}`, { body: JSON.stringify({ ...entry, attach }) });
    assert.equal(put.status, 201, put.text);

    const script = await http(service.url, 'GET', `/boot/${mac}.ipxe`);
    assert.match(script.text, /^set fb-vlans 2101,2102$/m);
    assert.match(script.text, /^set fb-luns lun-db1-d-0123456789ab$/m);
    assert.deepEqual(parseBootScript(script.text), { ...entry, attach });
    assert.deepEqual(JSON.parse((await http(service.url, 'GET', `/v1/hosts/${mac}`)).text), { mac, ...entry, attach });

    const reordered = await http(service.url, 'PUT', `/v1/hosts/${mac}`, { body: JSON.stringify({ ...entry, attach: { ...attach, vlans: [2102, 2101] } }) });
    assert.equal((JSON.parse(reordered.text) as { outcome: string }).outcome, 'unchanged');

    // The driver reads the served script back: a production entry for the same MAC drops the drill's attachments.
    const puts = count('PUT');
    assert.equal((await driver.configure(mac, { ...entry, attach }, signal())).done, true);
    assert.equal(count('PUT'), puts, 'no PUT when the served script already attaches the same VLANs and LUNs');
    const production = await driver.configure(mac, entry, signal());
    assert.equal(production.done, true, production.message);
    assert.equal(count('PUT'), puts + 1);
    assert.deepEqual(await driver.read(mac, signal()), entry);
    assert.doesNotMatch((await http(service.url, 'GET', `/boot/${mac}.ipxe`)).text, /fb-vlans|fb-luns/);
    const gone = JSON.parse((await http(service.url, 'GET', `/v1/hosts/${mac}`)).text) as Record<string, unknown>;
    assert.equal('attach' in gone, false, 'GET shows no attach once it is gone');

    const bad = await http(service.url, 'PUT', `/v1/hosts/${mac}`, { body: JSON.stringify({ ...entry, attach: { vlans: [5000], luns: ['lun a'] } }) });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /attach\.vlans\.0: VLAN ids run 1-4094/);
    assert.match(bad.text, /attach\.luns\.0: must be 1-128 letters/);
    assert.deepEqual(await driver.read(mac, signal()), entry, 'a refused attach leaves the entry as it was');
    assert.equal((await driver.clear(mac, signal())).done, true);
  });

  test('boot-service - an unknown MAC gets 404, and the first stage falls through to the next boot device', async () => {
    const unknown = await http(service.url, 'GET', '/boot/52:54:00:99:99:99.ipxe');
    assert.equal(unknown.status, 404);
    const chain = await http(service.url, 'GET', '/boot/chain.ipxe', { host: '10.0.2.2:8081' });
    assert.equal(chain.status, 200);
    assert.match(chain.text, /^#!ipxe\n/);
    assert.match(chain.text, /^chain http:\/\/10\.0\.2\.2:8081\/boot\/\$\{net0\/mac\}\.ipxe \|\| exit$/m);
    const forged = await http(service.url, 'GET', '/boot/chain.ipxe', { host: 'x y' });
    assert.match(forged.text, new RegExp(`^chain ${service.url}/boot/`, 'm'), 'a Host that is no host name falls back to the bound address');
  });

  test('boot-service - clear removes the script and the DHCP entry; a repeat clear sends nothing', async () => {
    const other = '52:54:00:fb:00:02';
    assert.equal((await driver.configure(other, entry, signal())).done, true);
    const result = await driver.clear(MAC, signal());
    assert.equal(result.done, true, result.message);
    assert.equal((await http(service.url, 'GET', `/boot/${MAC}.ipxe`)).status, 404);
    assert.deepEqual((await readdir(join(dir, 'ipxe'))).sort(), [`${other}.ipxe`]);
    assert.deepEqual(await readdir(join(dir, 'dhcp-hosts')), [other]);

    const deletes = count('DELETE');
    const again = await driver.clear(MAC, signal());
    assert.equal(again.done, true);
    assert.match(again.message, /already clear/);
    assert.equal(count('DELETE'), deletes);
    assert.equal((await http(service.url, 'DELETE', `/v1/hosts/${MAC}`)).status, 204, 'DELETE of an absent entry is 204 too');
    assert.equal((await driver.clear(other, signal())).done, true);
  });

  test('boot-service - entries survive a restart on the same directory', async () => {
    const dir2 = await mkdtemp(join(tmpdir(), 'fb-boot-restart-'));
    try {
      const first = await startBootService({ dir: dir2 });
      const attached = { ...entry, attach: { vlans: [2101], luns: ['lun-db1-d-0123456789ab'] } };
      assert.equal((await BootServiceDriver.fromUrl(first.url).configure(MAC, entry, signal())).done, true);
      assert.equal((await BootServiceDriver.fromUrl(first.url).configure('52:54:00:fb:00:04', attached, signal())).done, true);
      await first.stop();

      const second = await startBootService({ dir: dir2 });
      try {
        assert.deepEqual(await BootServiceDriver.fromUrl(second.url).read(MAC, signal()), entry);
        assert.deepEqual(await BootServiceDriver.fromUrl(second.url).read('52:54:00:fb:00:04', signal()), attached, 'attachments survive too');
        assert.equal((await http(second.url, 'GET', `/v1/hosts/${MAC}`)).status, 200);
        const conf = await readFile(second.dnsmasqConf, 'utf8');
        assert.match(conf, new RegExp(`^dhcp-hostsdir=${join(dir2, 'dhcp-hosts')}$`, 'm'));
        assert.match(conf, new RegExp(`^dhcp-boot=tag:firebreak,tag:ipxe,${second.url}/boot/chain\\.ipxe$`, 'm'));
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });

  test('boot-service - bad input is refused with 400 naming the field, and nothing is written', async () => {
    const put = (mac: string, body: unknown) => http(service.url, 'PUT', `/v1/hosts/${mac}`, { body: JSON.stringify(body) });

    const badMac = await put('52:54:00:fb:00', entry);
    assert.equal(badMac.status, 400);
    assert.match(badMac.text, /mac: \\"52:54:00:fb:00\\" is not a MAC address/);
    const badServer = await put(MAC, { ...entry, server: 'db 1' });
    assert.equal(badServer.status, 400);
    assert.match(badServer.text, /server: must be 1-128 letters/);
    const missing = await put(MAC, { server: 's1', image: 'img1' });
    assert.match(missing.text, /imageUrl: /);
    assert.equal((await http(service.url, 'PUT', `/v1/hosts/${MAC}`, { body: '{' })).status, 400);

    await assert.rejects(
      driver.configure(MAC, { ...entry, imageUrl: 'http://x/img\nshell' }, signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, false);
        assert.equal(err.httpStatus, 400);
        assert.match(err.message, /imageUrl: must be an http/);
      }),
    );
    const puts = count('PUT');
    await assert.rejects(driver.configure('52-54-00', entry, signal()), isDriverError((err) => assert.match(err.message, /mac "52-54-00": not a MAC address/)));
    assert.equal(count('PUT'), puts, 'a malformed MAC never reaches the service');
    assert.equal(await driver.read(MAC, signal()), undefined);
    assert.deepEqual(await readdir(join(dir, 'ipxe')), []);
  });

  test('boot-service - an unreachable service is a transient error naming its URL', async () => {
    const port = await freePort();
    const gone = BootServiceDriver.fromUrl(`http://127.0.0.1:${port}`);
    await assert.rejects(
      gone.configure(MAC, entry, signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, true);
        assert.match(err.message, new RegExp(`boot service http://127\\.0\\.0\\.1:${port} GET /boot/${MAC}\\.ipxe: connection refused`));
      }),
    );
    assert.throws(() => BootServiceDriver.fromUrl('boot.example:8081'), isDriverError((err) => assert.match(err.message, /"boot\.example:8081" is not http\(s\):\/\/host:port/)));
  });

  test('boot-service - the process serves until SIGTERM and refuses a bad listen address naming it', async () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', main], {
      env: { ...process.env, FB_BOOT_DIR: dir, FB_BOOT_LISTEN: `127.0.0.1:${port}`, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const deadline = Date.now() + 20_000;
      while (!out.includes('"msg":"ready"')) {
        assert.ok(Date.now() < deadline && child.exitCode === null, `boot service did not become ready: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await http(`http://127.0.0.1:${port}`, 'GET', '/healthz')).status, 200);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0);
      assert.match(out, /"msg":"stopped"/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }

    const bad = spawn(process.execPath, ['--import', 'tsx', main], { env: { ...process.env, FB_BOOT_DIR: dir, FB_BOOT_LISTEN: 'localhost' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    bad.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const [code] = (await once(bad, 'exit')) as [number | null];
    assert.equal(code, 2);
    assert.match(err, /FB_BOOT_LISTEN: expected host:port/);
  });
});
