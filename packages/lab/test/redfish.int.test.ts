import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { DriverError, RedfishClient, RedfishPowerDriver, type RedfishPowerDriverOptions } from '@firebreak/drivers';
import { Inventory, Secret, type Host, type InventoryInput } from '@firebreak/shared';
import { freePort, waitFor } from '@firebreak/shared/testing';
import { startBmcSimulator, type BmcSimulator } from '../src/redfish/bmc-simulator.ts';
import { makeBmcCertificate } from '../src/redfish/tls.ts';
import { LabRecorder } from '../src/recorder.ts';
import { World } from '../src/world.ts';

const PASSWORD_A = 'rack-a-Secret-42';
const PASSWORD_B = 'rack-b-Secret-77';
const env = { BMC_A: `admin:${PASSWORD_A}`, BMC_B: JSON.stringify({ username: 'root', password: PASSWORD_B }) };
const POWER_DELAY_MS = 200;

/**
 * Endpoint A serves three systems with sessions (h1 on, h2 and h4 off spares);
 * endpoint B serves h3 and has no SessionService (basic auth only).
 */
function labInventory(portA: number, portB: number): Inventory {
  const host = (id: string, n: number, role: Host['role'], address: string, ref: string): InventoryInput['hosts'][number] => ({
    id,
    site: 's1',
    rack: 'r1',
    arch: 'x86_64',
    cpus: 16,
    memoryGiB: 64,
    nics: [{ mac: `52:54:00:00:00:0${n}`, switch: 'tor1', port: n }],
    bmc: { address, systemId: id, auth: 'session', credentialsRef: ref },
    role,
  });
  const a = `127.0.0.1:${portA}`;
  const b = `https://127.0.0.1:${portB}`;
  return Inventory.parse({
    version: 1,
    racks: [{ id: 'r1', site: 's1' }],
    hosts: [
      host('h1', 1, 'production', a, 'env:BMC_A'),
      host('h2', 2, 'spare', a, 'env:BMC_A'),
      host('h3', 3, 'spare', b, 'env:BMC_B'),
      host('h4', 4, 'spare', a, 'env:BMC_A'),
    ],
  } satisfies InventoryInput);
}

describe('redfish', () => {
  let world: World;
  let sim: BmcSimulator;
  const drivers: RedfishPowerDriver[] = [];
  const clients: RedfishClient[] = [];

  before(async () => {
    const inventory = labInventory(await freePort(), await freePort());
    world = new World(inventory, new LabRecorder());
    sim = await startBmcSimulator(world, { powerDelayMs: POWER_DELAY_MS, withoutSessionService: [inventory.hosts[2]?.bmc.address ?? ''], env });
  });

  after(async () => {
    await Promise.allSettled([...drivers.map((d) => d.close()), ...clients.map((c) => c.close())]);
    await sim?.stop();
  });

  const bmcOf = (hostId: string): Host['bmc'] => {
    const host = world.inventory.hosts.find((h) => h.id === hostId);
    assert.ok(host, hostId);
    return host.bmc;
  };

  type DriverOverrides = Partial<Omit<RedfishPowerDriverOptions, 'bmc' | 'credentials'>> & { noCa?: boolean };
  async function driver(hostId: string, bmc: Partial<Host['bmc']> = {}, options: DriverOverrides = {}): Promise<RedfishPowerDriver> {
    const { noCa, ...rest } = options;
    const d = await RedfishPowerDriver.fromInventory(
      { ...bmcOf(hostId), ...bmc },
      { env, pollIntervalMs: 25, requestTimeoutMs: 2_000, ...(noCa !== true && { caBundle: sim.caCertPem }), ...rest },
    );
    drivers.push(d);
    return d;
  }

  const signal = (ms = 5_000): AbortSignal => AbortSignal.timeout(ms);
  const count = (action: string, host?: string): number => world.recorder.count('bmc', action, host);

  test('redfish - session login and system info', async () => {
    const logins = count('login');
    const d = await driver('h1');
    const info = await d.systemInfo(signal());
    assert.equal(info.id, 'h1');
    assert.equal(info.name, 'h1');
    assert.equal(info.powerState, 'on');
    assert.equal(info.health, 'OK');
    assert.equal(info.manufacturer, 'Firebreak Lab');
    assert.deepEqual(info.bootOverride, { target: 'None', enabled: 'Disabled' });
    assert.equal(count('login'), logins + 1);
    await d.status(signal());
    assert.equal(count('login'), logins + 1, 'the session is reused');
    await d.close();
    assert.equal(count('logout'), 1, 'close logs the session out');
  });

  test('redfish - basic auth sends credentials per request and never logs in', async () => {
    const logins = count('login');
    const d = await driver('h1', { auth: 'basic' });
    assert.deepEqual(await d.status(signal()), { powerState: 'on', health: 'OK' });
    assert.equal(count('login'), logins);
  });

  test('redfish - auto falls back to basic on a BMC without SessionService; session mode refuses it', async () => {
    const d = await driver('h3', { auth: 'auto' });
    assert.deepEqual(await d.status(signal()), { powerState: 'off', health: 'OK' });
    const strict = await driver('h3', { auth: 'session' });
    await assert.rejects(strict.status(signal()), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /no SessionService/);
      return true;
    });
  });

  test('redfish - the lab counts the requests each BMC endpoint has in hand at once', async () => {
    const a = bmcOf('h1').address;
    const b = bmcOf('h3').address;
    const onA = await Promise.all(['h1', 'h2', 'h4'].map((h) => driver(h, { auth: 'basic' })));
    const onB = await driver('h3', { auth: 'basic' });
    const slow = ['h1', 'h2', 'h3', 'h4'];
    for (const h of slow) world.host(h).bmc.extraLatencyMs = 150;
    try {
      world.recorder.resetPeaks();
      await Promise.all([...onA, onB].map((d) => d.status(signal())));
    } finally {
      for (const h of slow) world.host(h).bmc.extraLatencyMs = 0;
    }
    assert.equal(world.recorder.peakInFlight('bmc', a), 3, 'three slow reads at once on endpoint A');
    assert.equal(world.recorder.peakInFlight('bmc', b), 1);
    assert.equal(world.recorder.peakInFlight('bmc'), 4, 'all endpoints together');
    assert.equal(world.recorder.counters()[`bmc in-flight-peak ${a}`], 3, 'peaks are counters too (GET /v1/counters)');

    // Everything was answered: a new peak starts from nothing in hand.
    world.recorder.resetPeaks();
    assert.equal(world.recorder.peakInFlight('bmc', a), 0);
    await onA[0]?.status(signal());
    assert.equal(world.recorder.peakInFlight('bmc', a), 1, 'one request at a time');
  });

  test('redfish - power on and off land after the delay and are read back', async () => {
    const d = await driver('h2');
    const rt = world.host('h2');
    assert.equal(rt.power, 'off');

    const on = d.ensurePower('on', signal());
    await waitFor('the power-on action', () => count('power-on', 'h2') === 1, 2_000);
    assert.equal(rt.power, 'off', 'not on yet right after the action');
    assert.equal((await d.status(signal())).powerState, 'unknown', 'PoweringOn while the reset is pending');
    const started = Date.now();
    const result = await on;
    assert.equal(result.done, true, result.message);
    assert.equal(rt.power, 'on');
    assert.ok(Date.now() - started < POWER_DELAY_MS + 500);

    const off = d.ensurePower('off', signal());
    await waitFor('the power-off action', () => count('power-off', 'h2') === 1, 2_000);
    assert.equal(rt.power, 'on', 'not off yet right after the action');
    assert.equal((await off).done, true);
    assert.equal(rt.power, 'off');

    assert.equal(count('power-on', 'h2'), 1);
    assert.equal(count('power-off', 'h2'), 1);
  });

  test('redfish - ensurePower sets, never toggles: no action for a host already there', async () => {
    const d = await driver('h1');
    const result = await d.ensurePower('on', signal());
    assert.deepEqual(result, { done: true, message: 'already on', observed: { powerState: 'on', health: 'OK' } });
    assert.equal(count('power-on', 'h1'), 0);
    assert.equal(world.host('h1').power, 'on');
  });

  test('redfish - a wait that ends before the power lands is "not done yet", and asking again does not resend', async () => {
    const d = await driver('h4', {}, { powerWaitMs: 50 });
    const results = [await d.ensurePower('on', signal())];
    assert.equal(results[0]?.done, false, results[0]?.message);
    assert.ok((results[0]?.retryAfterMs ?? 0) > 0);
    while (results.at(-1)?.done !== true && results.length < 40) results.push(await d.ensurePower('on', signal()));
    assert.equal(results.at(-1)?.done, true);
    assert.equal(count('power-on', 'h4'), 1);
    assert.equal(world.host('h4').power, 'on');
  });

  test('redfish - next boot PXE is set once and read back', async () => {
    const d = await driver('h2');
    const result = await d.setNextBootPxe(signal());
    assert.equal(result.done, true, result.message);
    assert.equal(world.host('h2').bootTarget, 'Pxe');
    assert.equal(world.host('h2').bootEnabled, 'Once');
    assert.deepEqual((await d.systemInfo(signal())).bootOverride, { target: 'Pxe', enabled: 'Once' });
    assert.equal((await d.setNextBootPxe(signal())).done, true);
    assert.equal(count('set-boot-pxe', 'h2'), 1, 'already PXE: no second PATCH');
  });

  test('redfish - health follows the world', async () => {
    const d = await driver('h1');
    world.host('h1').health = 'Critical';
    try {
      assert.equal((await d.status(signal())).health, 'Critical');
    } finally {
      world.host('h1').health = 'OK';
    }
  });

  test('redfish - bad credentials are refused clearly, without the password in the error', async () => {
    const wrong = 'Wrong-Password-123';
    for (const auth of ['session', 'basic'] as const) {
      const d = new RedfishPowerDriver({
        bmc: { ...bmcOf('h1'), auth },
        credentials: { username: 'admin', password: new Secret(wrong) },
        caBundle: sim.caCertPem,
      });
      drivers.push(d);
      await assert.rejects(d.status(signal()), (err: unknown) => {
        assert.ok(err instanceof DriverError);
        assert.equal(err.retryable, false);
        assert.equal(err.httpStatus, 401);
        assert.match(err.message, /refused the credentials of env:BMC_A/);
        for (const text of [err.message, err.stack ?? '', inspect(err, { depth: 5 }), JSON.stringify(err)]) {
          assert.ok(!text.includes(wrong), `${auth}: the password leaked`);
          assert.ok(!text.includes(Buffer.from(`admin:${wrong}`).toString('base64')), `${auth}: the basic token leaked`);
        }
        return true;
      });
    }
    assert.ok(count('auth-failed') >= 2);
  });

  test('redfish - a chunked request body is refused with 411', async () => {
    const url = new URL('/redfish/v1/SessionService/Sessions', sim.endpoints.find((e) => e.hosts.includes('h1'))?.url);
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { method: 'POST', ca: sim.caCertPem, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.write('{"UserName":"admin",');
      req.end(`"Password":"${PASSWORD_A}"}`);
    });
    assert.equal(status, 411);
    const parsed = JSON.parse(body) as { error: { '@Message.ExtendedInfo': { Message: string }[] } };
    assert.match(parsed.error['@Message.ExtendedInfo'][0]?.Message ?? '', /Content-Length/);
  });

  test('redfish - TLS is verified by default: no CA bundle or another CA fails clearly; only an explicit opt-out skips it', async () => {
    const other = await makeBmcCertificate();
    for (const d of [await driver('h1', {}, { noCa: true }), await driver('h1', {}, { caBundle: other.certPem })]) {
      await assert.rejects(d.status(signal()), (err: unknown) => {
        assert.ok(err instanceof DriverError);
        assert.equal(err.retryable, false);
        assert.match(err.message, /TLS verification failed/);
        return true;
      });
    }
    const optOut = await driver('h1', { tls: { verify: false } }, { noCa: true });
    assert.equal((await optOut.status(signal())).powerState, 'on');
  });

  test('redfish - an unreachable BMC is a transient error within the timeout', async () => {
    const d = await driver('h1');
    await d.status(signal());
    world.host('h1').bmc.reachable = false;
    try {
      const started = Date.now();
      await assert.rejects(d.status(signal(1_500)), (err: unknown) => err instanceof DriverError && err.retryable);
      assert.ok(Date.now() - started < 1_500);
      // Endpoint B serves only h3: with it dark the service root is refused too.
      world.host('h3').bmc.reachable = false;
      const dark = await driver('h3', { auth: 'auto' });
      await assert.rejects(dark.status(signal(1_500)), (err: unknown) => err instanceof DriverError && err.retryable);
    } finally {
      world.host('h1').bmc.reachable = true;
      world.host('h3').bmc.reachable = true;
    }
    assert.equal((await d.status(signal())).powerState, 'on');
  });

  test('redfish - failNext answers 500 once: a transient error, then success on retry', async () => {
    const d = await driver('h1', { auth: 'basic' });
    world.host('h1').bmc.failNext = 1;
    await assert.rejects(d.status(signal()), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.retryable, true);
      assert.equal(err.httpStatus, 500);
      assert.ok(err.messageIds.includes('Base.1.12.InternalError'));
      return true;
    });
    assert.equal((await d.status(signal())).powerState, 'on');
  });

  test('redfish - a slow BMC is slow, and the request timeout ends the wait', async () => {
    const d = await driver('h1', { auth: 'basic' }, { requestTimeoutMs: 100 });
    world.host('h1').bmc.extraLatencyMs = 300;
    try {
      await assert.rejects(d.status(signal()), (err: unknown) => err instanceof DriverError && err.retryable && /no answer within 100 ms/.test(err.message));
    } finally {
      world.host('h1').bmc.extraLatencyMs = 0;
    }
  });

  test('redfish - bad requests get Redfish error bodies mapped to DriverErrors', async () => {
    const ep = sim.endpoints.find((e) => e.hosts.includes('h1'));
    const client = new RedfishClient({
      address: ep?.address ?? '',
      auth: 'session',
      username: 'admin',
      password: new Secret(PASSWORD_A),
      tls: { verify: true, caBundle: sim.caCertPem },
    });
    clients.push(client);
    const expect = async (call: Promise<unknown>, status: number, messageId: string, retryable = false): Promise<void> => {
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof DriverError);
        assert.equal(err.httpStatus, status);
        assert.equal(err.retryable, retryable);
        assert.ok(err.messageIds.includes(messageId), `${err.message} lacks ${messageId}`);
        return true;
      });
    };
    const reset = '/redfish/v1/Systems/h1/Actions/ComputerSystem.Reset';
    await expect(client.post(reset, { ResetType: 'Explode' }, signal()), 400, 'Base.1.12.ActionParameterValueNotInList');
    await expect(client.post(reset, {}, signal()), 400, 'Base.1.12.ActionParameterMissing');
    await expect(client.post(reset, { ResetType: 'On' }, signal()), 409, 'Base.1.12.OperationNotAllowed');
    await expect(client.get('/redfish/v1/Systems/nope', signal()), 404, 'Base.1.12.ResourceMissingAtURI');
    await expect(client.delete('/redfish/v1/Systems/h1', signal()), 405, 'Base.1.12.OperationNotAllowed');
    await expect(client.patch('/redfish/v1/Systems/h1', { PowerState: 'Off' }, signal()), 400, 'Base.1.12.PropertyNotWritable');
    await expect(client.patch('/redfish/v1/Systems/h1', { Boot: { BootSourceOverrideTarget: 'Floppy' } }, signal()), 400, 'Base.1.12.PropertyValueNotInList');
    await expect(client.patch('/redfish/v1/Systems/h1', { Boot: { BootSourceOverrideTarget: 'Pxe' } }, signal(), 'W/"stale"'), 412, 'Base.1.12.PreconditionFailed', true);
    const managers = await client.get<{ Members: unknown[] }>('/redfish/v1/Managers', signal());
    assert.equal(managers.body.Members.length, 3);
    const chassis = await client.get<{ Links: { ComputerSystems: unknown[] } }>('/redfish/v1/Chassis/h1', signal());
    assert.deepEqual(chassis.body.Links.ComputerSystems, [{ '@odata.id': '/redfish/v1/Systems/h1' }]);
  });
});

describe('redfish sessions', () => {
  let world: World;
  let sim: BmcSimulator;
  let d: RedfishPowerDriver | undefined;

  before(async () => {
    world = new World(labInventory(await freePort(), await freePort()), new LabRecorder());
    sim = await startBmcSimulator(world, { sessionTimeoutMs: 100, env });
  });

  after(async () => {
    await d?.close();
    await sim?.stop();
  });

  test('redfish - an expired session is renewed with one new login', async () => {
    const host = world.inventory.hosts[0];
    assert.ok(host);
    d = await RedfishPowerDriver.fromInventory(host.bmc, { env, caBundle: sim.caCertPem });
    await d.status(AbortSignal.timeout(2_000));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await d.status(AbortSignal.timeout(2_000))).powerState, 'on');
    assert.equal(world.recorder.count('bmc', 'login'), 2);
    assert.equal(world.recorder.count('bmc', 'auth-failed'), 1);
  });
});
