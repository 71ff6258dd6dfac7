import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort } from '@firebreak/shared/testing';
import { LabRecorder } from '../src/recorder.ts';
import { startSanSimulator, type SanSimulator } from '../src/san/san-simulator.ts';
import { World } from '../src/world.ts';
import { sanFixture, sanInventory } from '../src/testing/index.ts';

const WWPN_H1 = sanFixture.wwpnH1;
const IQN_H2 = sanFixture.iqnH2;
const WWPN_H3 = sanFixture.wwpnH3;


interface Reply {
  status: number;
  body: unknown;
  headers: Headers;
}

async function call(method: string, url: string, options: { body?: unknown; auth?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.auth !== undefined) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
  const res = await fetch(url, {
    method,
    headers,
    ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), headers: res.headers };
}

const enc = encodeURIComponent;

describe('san simulator', () => {
  let world: World;
  let san: SanSimulator;
  let arr1: string;
  let arr2: string;
  const auth = 'admin:s3cret';

  before(async () => {
    world = new World(sanInventory(await freePort(), await freePort()), new LabRecorder());
    san = await startSanSimulator(world, { env: { FB_TEST_SAN: auth } });
    arr1 = san.endpoints.find((e) => e.arrayId === 'arr1')?.url ?? '';
    arr2 = san.endpoints.find((e) => e.arrayId === 'arr2')?.url ?? '';
  });
  after(async () => {
    await san?.stop();
  });

  test('san simulator - serves one API per storage array at its inventory address', () => {
    assert.deepEqual(
      san.endpoints.map((e) => e.url),
      world.inventory.storageArrays.map((a) => a.address),
    );
  });

  test('san simulator - lists the LUNs of its array with the initiators the world grants', async () => {
    const { status, body } = await call('GET', `${arr1}/api/v1/luns`);
    assert.equal(status, 200);
    assert.deepEqual(body, {
      array: 'arr1',
      luns: [
        { id: 'lun-app1', array: 'arr1', sizeGiB: 50, initiators: [] },
        { id: 'lun-db1', array: 'arr1', sizeGiB: 100, initiators: [WWPN_H1] },
      ],
    });
  });

  test('san simulator - grant and revoke are idempotent and change what the host can see', async () => {
    const path = `${arr1}/api/v1/luns/lun-app1/initiators/${enc(IQN_H2)}`;
    const visibility = async () =>
      (await call('GET', `${arr1}/api/v1/visibility?initiator=${enc(IQN_H2)}&lun=lun-app1`)).body as { visible: boolean };

    assert.equal((await visibility()).visible, false);
    assert.equal((await call('PUT', path)).status, 201);
    assert.equal((await call('PUT', path)).status, 204, 'a second grant changes nothing');
    assert.deepEqual(await visibility(), { initiator: IQN_H2, lun: 'lun-app1', visible: true });
    assert.equal(world.canSee('h2', 'lun-app1'), true);
    assert.deepEqual((await call('GET', `${arr1}/api/v1/luns/lun-app1/initiators`)).body, { lun: 'lun-app1', initiators: [IQN_H2] });

    assert.equal((await call('DELETE', path)).status, 204);
    assert.equal((await call('DELETE', path)).status, 204, 'revoking twice is fine');
    assert.equal((await visibility()).visible, false);
    assert.equal(world.canSee('h2', 'lun-app1'), false);
    assert.equal(world.recorder.events({ source: 'san', action: 'grant' }).length >= 1, true);
  });

  test('san simulator - takes WWPNs in any case, URL-encoded', async () => {
    const upper = WWPN_H3.toUpperCase();
    assert.equal((await call('PUT', `${arr1}/api/v1/luns/lun-app1/initiators/${enc(upper)}`)).status, 201);
    const list = (await call('GET', `${arr1}/api/v1/luns/lun-app1/initiators`)).body as { initiators: string[] };
    assert.deepEqual(list.initiators, [WWPN_H3]);
    // Masked, but h3's HBA sits on another fabric: zoning keeps it from the LUN.
    const vis = await call('GET', `${arr1}/api/v1/visibility?initiator=${enc(WWPN_H3)}&lun=lun-app1`);
    assert.deepEqual(vis.body, { initiator: WWPN_H3, lun: 'lun-app1', visible: false });
    assert.equal((await call('DELETE', `${arr1}/api/v1/luns/lun-app1/initiators/${enc(WWPN_H3)}`)).status, 204);
  });

  test('san simulator - shows masking changed in the world by other parts of the lab', async () => {
    world.grant('lun-app1', IQN_H2);
    const list = (await call('GET', `${arr1}/api/v1/luns/lun-app1/initiators`)).body as { initiators: string[] };
    assert.deepEqual(list.initiators, [IQN_H2]);
    world.revoke('lun-app1', IQN_H2);
    assert.deepEqual(((await call('GET', `${arr1}/api/v1/luns/lun-app1/initiators`)).body as { initiators: string[] }).initiators, []);
  });

  test('san simulator - revoking an initiator fences it from every LUN of that array only', async () => {
    assert.equal((await call('PUT', `${arr1}/api/v1/luns/lun-app1/initiators/${enc(WWPN_H1)}`)).status, 201);
    assert.equal((await call('PUT', `${arr2}/api/v1/luns/lun-x/initiators/${enc(WWPN_H1)}`, { auth })).status, 201);

    const fence = await call('DELETE', `${arr1}/api/v1/initiators/${enc(WWPN_H1)}`);
    assert.equal(fence.status, 200);
    assert.deepEqual(fence.body, { array: 'arr1', initiator: WWPN_H1, revoked: ['lun-app1', 'lun-db1'] });
    assert.equal(world.canSee('h1', 'lun-db1'), false);
    assert.equal(world.canSee('h1', 'lun-app1'), false);
    assert.equal(world.canSee('h1', 'lun-x'), true, 'the other array keeps its masking');

    const again = await call('DELETE', `${arr1}/api/v1/initiators/${enc(WWPN_H1)}`);
    assert.deepEqual(again.body, { array: 'arr1', initiator: WWPN_H1, revoked: [] });
    const [event] = world.recorder.events({ source: 'san', action: 'revoke-all' });
    assert.equal(event?.host, 'h1');
    assert.equal(event.detail?.initiator, WWPN_H1);
    assert.deepEqual([...(event.detail?.luns as string[])].sort(), ['lun-app1', 'lun-db1']);
    world.grant('lun-db1', WWPN_H1);
  });

  test('san simulator - refuses a malformed initiator with 400 naming the expected forms', async () => {
    for (const bad of ['50:01:43:80:12:34', 'iqn.bad', 'h2']) {
      const { status, body } = await call('PUT', `${arr1}/api/v1/luns/lun-app1/initiators/${enc(bad)}`);
      assert.equal(status, 400, bad);
      const error = (body as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'invalid-initiator');
      assert.match(error.message, new RegExp(`"${bad}"`));
      assert.match(error.message, /WWPN \(eight hex pairs/);
      assert.match(error.message, /IQN \(iqn\.YYYY-MM/);
    }
    const vis = await call('GET', `${arr1}/api/v1/visibility?lun=lun-app1`);
    assert.equal(vis.status, 400);
  });

  test('san simulator - answers 404 for a LUN this array does not have', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/luns/lun-nope'],
      ['PUT', `/api/v1/luns/lun-nope/initiators/${enc(IQN_H2)}`],
      ['DELETE', `/api/v1/luns/lun-nope/initiators/${enc(IQN_H2)}`],
      ['GET', `/api/v1/visibility?initiator=${enc(IQN_H2)}&lun=lun-nope`],
      ['GET', '/api/v1/luns/lun-x/initiators'], // on arr2, not arr1
    ] as const) {
      const { status, body } = await call(method, `${arr1}${path}`);
      assert.equal(status, 404, `${method} ${path}`);
      assert.equal((body as { error: { code: string } }).error.code, 'lun-not-found');
    }
    const wrongMethod = await call('POST', `${arr1}/api/v1/luns`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'GET');
  });

  test('san simulator - clones a LUN with no initiators, masks it, and deletes it', async () => {
    const created = await call('POST', `${arr1}/api/v1/luns/lun-db1/clones`, { body: { cloneId: 'lun-db1-drill' } });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), '/api/v1/luns/lun-db1-drill');
    assert.deepEqual(created.body, { id: 'lun-db1-drill', array: 'arr1', sizeGiB: 100, cloneOf: 'lun-db1', initiators: [] });
    const dup = await call('POST', `${arr1}/api/v1/luns/lun-db1/clones`, { body: { cloneId: 'lun-db1-drill' } });
    assert.equal(dup.status, 409);
    const badBody = await call('POST', `${arr1}/api/v1/luns/lun-db1/clones`, { body: { clone: 'x' } });
    assert.equal(badBody.status, 400);

    const grant = `${arr1}/api/v1/luns/lun-db1-drill/initiators/${enc(IQN_H2)}`;
    assert.equal((await call('PUT', grant)).status, 201);
    const vis = await call('GET', `${arr1}/api/v1/visibility?initiator=${enc(IQN_H2)}&lun=lun-db1-drill`);
    assert.deepEqual(vis.body, { initiator: IQN_H2, lun: 'lun-db1-drill', visible: true });
    const source = (await call('GET', `${arr1}/api/v1/luns/lun-db1/initiators`)).body as { initiators: string[] };
    assert.deepEqual(source.initiators, [WWPN_H1], 'granting the clone leaves the source alone');

    assert.equal((await call('DELETE', `${arr1}/api/v1/luns/lun-db1-drill`)).status, 204);
    assert.equal((await call('GET', `${arr1}/api/v1/luns/lun-db1-drill`)).status, 404);
    assert.deepEqual(world.lunsVisibleTo(IQN_H2), [], 'deleting the clone drops its masking');
    assert.equal((await call('DELETE', `${arr1}/api/v1/luns/lun-db1-drill`)).status, 404);
    const notClone = await call('DELETE', `${arr1}/api/v1/luns/lun-db1`);
    assert.equal(notClone.status, 409);
    assert.deepEqual(
      world.recorder.events({ source: 'san' }).filter((e) => e.action.includes('clone')).map((e) => e.action),
      ['clone', 'delete-clone'],
    );
  });

  test('san simulator - a clone granted over HTTP is visible to the host in the world and counted for it', async () => {
    const grantsBefore = world.recorder.count('san', 'grant', 'h2');
    assert.equal((await call('POST', `${arr1}/api/v1/luns/lun-app1/clones`, { body: { cloneId: 'lun-app1-drill' } })).status, 201);
    assert.equal(world.hasLun('lun-app1-drill'), true);
    assert.equal(world.canSee('h2', 'lun-app1-drill'), false, 'a new clone is masked from everyone');

    assert.equal((await call('PUT', `${arr1}/api/v1/luns/lun-app1-drill/initiators/${enc(IQN_H2)}`)).status, 201);
    assert.equal(world.canSee('h2', 'lun-app1-drill'), true);
    assert.equal(world.recorder.count('san', 'grant', 'h2'), grantsBefore + 1);

    assert.equal((await call('DELETE', `${arr1}/api/v1/luns/lun-app1-drill`)).status, 204);
    assert.equal(world.hasLun('lun-app1-drill'), false);
    assert.equal(world.canSee('h2', 'lun-app1-drill'), false);
  });

  test('san simulator - an array with credentials demands basic auth', async () => {
    const anonymous = await call('GET', `${arr2}/api/v1/luns`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic/);
    assert.equal((anonymous.body as { error: { code: string } }).error.code, 'unauthorized');
    assert.equal((await call('GET', `${arr2}/api/v1/luns`, { auth: 'admin:wrong' })).status, 401);
    assert.equal((await call('GET', `${arr2}/api/v1/luns`, { auth })).status, 200);
  });
});
