import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Secret, type Host } from '@firebreak/shared';
import { DriverError } from '../src/driver-error.ts';
import { RedfishPowerDriver } from '../src/power/redfish.driver.ts';
import { json, redfishBody, startFakeBmc, type FakeBmc, type FakeHandler } from './fake-bmc.ts';

const SYSTEM = '/redfish/v1/Systems/1';
const RESET = `${SYSTEM}/Actions/ComputerSystem.Reset`;
const credentials = { username: 'admin', password: new Secret('Driver-Test-Pass') };

describe('redfish-driver', () => {
  const bmcs: FakeBmc[] = [];
  const drivers: RedfishPowerDriver[] = [];

  after(async () => {
    await Promise.allSettled(drivers.map((d) => d.close()));
    for (const b of bmcs) b.close();
  });

  async function setup(handler: FakeHandler, bmc: Partial<Host['bmc']> = {}): Promise<{ fake: FakeBmc; driver: RedfishPowerDriver }> {
    const fake = await startFakeBmc(handler);
    bmcs.push(fake);
    const driver = new RedfishPowerDriver({
      bmc: { driver: 'redfish', address: fake.address, systemId: '1', auth: 'basic', credentialsRef: 'env:BMC', tls: { verify: true }, ...bmc },
      credentials,
      caBundle: fake.caPem,
      pollIntervalMs: 10,
    });
    drivers.push(driver);
    return { fake, driver };
  }

  const signal = (): AbortSignal => AbortSignal.timeout(3_000);

  test('redfish-driver - a ResetType the BMC does not advertise is refused before anything is sent', async () => {
    const { fake, driver } = await setup((_req, res) =>
      json(res, 200, { PowerState: 'On', Actions: { '#ComputerSystem.Reset': { target: RESET, 'ResetType@Redfish.AllowableValues': ['On', 'GracefulShutdown'] } } }),
    );
    await assert.rejects(driver.ensurePower('off', signal()), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /ResetType ForceOff not allowed \(allows On, GracefulShutdown\)/);
      return true;
    });
    assert.equal(fake.seen.filter((s) => s.method === 'POST').length, 0);
  });

  test('redfish-driver - allowable values come from @Redfish.ActionInfo when the action links one', async () => {
    let power = 'Off';
    const { fake, driver } = await setup((req, res) => {
      if (req.path === '/redfish/v1/Systems/1/ResetActionInfo') {
        return json(res, 200, { Parameters: [{ Name: 'ResetType', Required: true, AllowableValues: ['On', 'ForceOff'] }] });
      }
      if (req.method === 'POST' && req.path === RESET) {
        power = 'On';
        return res.writeHead(204).end();
      }
      return json(res, 200, { PowerState: power, Actions: { '#ComputerSystem.Reset': { target: RESET, '@Redfish.ActionInfo': `${SYSTEM}/ResetActionInfo` } } });
    });
    const result = await driver.ensurePower('on', signal());
    assert.equal(result.done, true, result.message);
    assert.deepEqual(JSON.parse(fake.seen.find((s) => s.method === 'POST')?.body ?? '{}'), { ResetType: 'On' });
  });

  test('redfish-driver - a boot PATCH answered 412 is read again and retried once, with the new ETag', async () => {
    let version = 1;
    let boot = { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' };
    const { fake, driver } = await setup((req, res) => {
      const etag = `W/"v${version}"`;
      if (req.method === 'PATCH') {
        if (req.headers['if-match'] !== etag || version === 1) {
          version += 1; // something else changed the system meanwhile
          return json(res, 412, redfishBody('Base.1.12.PreconditionFailed', 'ETag mismatch'));
        }
        boot = (JSON.parse(req.body) as { Boot: typeof boot }).Boot;
        return res.writeHead(204).end();
      }
      return json(res, 200, { PowerState: 'Off', Boot: boot }, { etag });
    });
    const result = await driver.setNextBootPxe(signal());
    assert.equal(result.done, true, result.message);
    const patches = fake.seen.filter((s) => s.method === 'PATCH');
    assert.deepEqual(
      patches.map((p) => p.headers['if-match']),
      ['W/"v1"', 'W/"v2"'],
    );
  });

  test('redfish-driver - without systemId the BMC\'s only system is used; several systems need systemId', async () => {
    let members = [{ '@odata.id': '/redfish/v1/Systems/Self' }];
    const { driver } = await setup(
      (req, res) => (req.path === '/redfish/v1/Systems' ? json(res, 200, { Members: members }) : json(res, 200, { Id: 'Self', PowerState: 'On', Status: { Health: 'Warning' } })),
      { systemId: undefined },
    );
    assert.deepEqual(await driver.status(signal()), { powerState: 'on', health: 'Warning' });
    members = [...members, { '@odata.id': '/redfish/v1/Systems/Other' }];
    await driver.close();
    await assert.rejects(driver.status(signal()), /2 systems behind this BMC; set bmc\.systemId/);
  });

  test('redfish-driver - validate refuses incomplete credentials and an unreadable CA bundle', async () => {
    const bmc: Host['bmc'] = { driver: 'redfish', address: '127.0.0.1:1', auth: 'auto', credentialsRef: 'env:BMC', tls: { verify: true, caBundle: '/nonexistent/ca.pem' } };
    await assert.rejects(new RedfishPowerDriver({ bmc, credentials: { username: 'admin' } }).validate(), /env:BMC need a username and a password/);
    await assert.rejects(new RedfishPowerDriver({ bmc, credentials }).validate(), /CA bundle \/nonexistent\/ca\.pem: not readable \(ENOENT\)/);
    await assert.rejects(new RedfishPowerDriver({ bmc: { ...bmc, address: 'http://127.0.0.1:1' }, credentials }).validate(), /only https/);
  });
});
