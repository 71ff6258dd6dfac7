import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { errorCodes, type StorageArray } from '@firebreak/shared';
import { freePort } from '@firebreak/shared/testing';
import { LabRecorder, startSanSimulator, World, type SanSimulator } from '@firebreak/lab';
import { DriverError } from '../src/driver-error.ts';
import { SanRestStorageDriver } from '../src/storage/san-rest.driver.ts';
import { sanFixture, sanInventory } from '@firebreak/lab/testing';

const WWPN_H1 = sanFixture.wwpnH1;
const IQN_H2 = sanFixture.iqnH2;
/** h3's HBA sits on fabric san-b: masking alone never makes a san-a LUN visible to it. */
const WWPN_H3 = sanFixture.wwpnH3;
const PASSWORD = 'San-Driver-Pass-7';
const env = { FB_TEST_SAN: `admin:${PASSWORD}`, FB_TEST_SAN_WRONG: 'admin:not-the-password' };


const signal = (ms = 5_000): AbortSignal => AbortSignal.timeout(ms);

function isDriverError(check: (err: DriverError) => void): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof DriverError, `expected a DriverError, got ${String(err)}`);
    check(err);
    return true;
  };
}

describe('storage-san', () => {
  let world: World;
  let san: SanSimulator;
  let arr1: SanRestStorageDriver;
  let arr2: SanRestStorageDriver;
  const array = (id: string): StorageArray => world.inventory.storageArrays.find((a) => a.id === id) ?? assert.fail(`no array ${id}`);
  const count = (action: string, host?: string) => world.recorder.count('san', action, host);

  before(async () => {
    world = new World(sanInventory(await freePort(), await freePort()), new LabRecorder());
    san = await startSanSimulator(world, { env });
    arr1 = await SanRestStorageDriver.fromInventory(array('arr1'), { env, pollIntervalMs: 10 });
    arr2 = await SanRestStorageDriver.fromInventory(array('arr2'), { env, pollIntervalMs: 10 });
    await arr1.validate();
    await arr2.validate();
  });
  after(async () => {
    await arr1?.close();
    await arr2?.close();
    await san?.stop();
  });

  test('storage-san - grant makes the LUN visible to the host; a repeat grant sends nothing', async () => {
    assert.equal(world.canSee('h2', 'lun-app1'), false);
    const grants = count('grant', 'h2');

    const first = await arr1.grant('lun-app1', IQN_H2, signal());
    assert.equal(first.done, true, first.message);
    assert.equal(world.canSee('h2', 'lun-app1'), true);
    assert.equal(await arr1.canSee(IQN_H2, 'lun-app1', signal()), true);

    const again = await arr1.grant('lun-app1', IQN_H2, signal());
    assert.equal(again.done, true, again.message);
    assert.match(again.message, /already granted/);
    assert.equal(count('grant', 'h2'), grants + 1, 'the array saw exactly one grant');
    assert.deepEqual(await arr1.list(IQN_H2, signal()), ['lun-app1']);
  });

  test('storage-san - revoke hides the LUN from the host; a repeat revoke sends nothing', async () => {
    const revokes = count('revoke', 'h2');
    const first = await arr1.revoke('lun-app1', IQN_H2, signal());
    assert.equal(first.done, true, first.message);
    assert.equal(world.canSee('h2', 'lun-app1'), false);

    const again = await arr1.revoke('lun-app1', IQN_H2, signal());
    assert.equal(again.done, true, again.message);
    assert.match(again.message, /already revoked/);
    assert.equal(count('revoke', 'h2'), revokes + 1);
    assert.deepEqual(await arr1.list(IQN_H2, signal()), []);
  });

  test('storage-san - list names every LUN of the array, or those masked to one initiator', async () => {
    assert.deepEqual(await arr1.list(undefined, signal()), ['lun-app1', 'lun-db1']);
    assert.deepEqual(await arr1.list(WWPN_H1.toUpperCase(), signal()), ['lun-db1']);
    assert.deepEqual(await arr2.list(undefined, signal()), ['lun-x']);
  });

  test('storage-san - revokeAll fences the initiator from every LUN of that array only', async () => {
    assert.equal((await arr1.grant('lun-app1', WWPN_H1, signal())).done, true);
    assert.equal((await arr2.grant('lun-x', WWPN_H1, signal())).done, true);
    const fences = count('revoke-all', 'h1');

    const fence = await arr1.revokeAll(WWPN_H1, signal());
    assert.equal(fence.done, true, fence.message);
    assert.match(fence.message, /revoked lun-app1, lun-db1/);
    assert.equal(world.canSee('h1', 'lun-db1'), false);
    assert.equal(world.canSee('h1', 'lun-app1'), false);
    assert.equal(world.canSee('h1', 'lun-x'), true, 'the other array keeps its masking');

    const again = await arr1.revokeAll(WWPN_H1, signal());
    assert.equal(again.done, true);
    assert.match(again.message, /already fenced/);
    assert.equal(count('revoke-all', 'h1'), fences + 1);

    assert.equal((await arr2.revoke('lun-x', WWPN_H1, signal())).done, true);
    assert.equal((await arr1.grant('lun-db1', WWPN_H1, signal())).done, true);
  });

  test('storage-san - a clone is created masked, can be granted, and is deleted with its masking', async () => {
    const clones = count('clone');
    const created = await arr1.clone('lun-db1', 'lun-db1-drill', signal());
    assert.equal(created.done, true, created.message);
    assert.equal(world.hasLun('lun-db1-drill'), true);
    assert.equal(world.canSee('h2', 'lun-db1-drill'), false, 'a new clone is masked from everyone');
    const again = await arr1.clone('lun-db1', 'lun-db1-drill', signal());
    assert.equal(again.done, true);
    assert.match(again.message, /already there/);
    assert.equal(count('clone'), clones + 1);
    assert.deepEqual((await arr1.luns(signal())).find((l) => l.id === 'lun-db1-drill')?.cloneOf, 'lun-db1');

    assert.equal((await arr1.grant('lun-db1-drill', IQN_H2, signal())).done, true);
    assert.equal(world.canSee('h2', 'lun-db1-drill'), true);
    assert.deepEqual(world.initiatorsOf('lun-db1'), [WWPN_H1], 'the source LUN keeps its masking');

    const deletes = count('delete-clone');
    const deleted = await arr1.deleteClone('lun-db1-drill', signal());
    assert.equal(deleted.done, true, deleted.message);
    assert.equal(world.hasLun('lun-db1-drill'), false);
    assert.equal(world.canSee('h2', 'lun-db1-drill'), false);
    const deletedAgain = await arr1.deleteClone('lun-db1-drill', signal());
    assert.equal(deletedAgain.done, true);
    assert.match(deletedAgain.message, /nothing to delete/);
    assert.equal(count('delete-clone'), deletes + 1);
    // The undo of a grant on a deleted clone still succeeds.
    assert.equal((await arr1.revoke('lun-db1-drill', IQN_H2, signal())).done, true);
  });

  test('storage-san - refuses to delete an original LUN or to reuse its id as a clone', async () => {
    await assert.rejects(
      arr1.deleteClone('lun-db1', signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, false);
        assert.match(err.message, /not a clone/);
      }),
    );
    assert.equal(world.hasLun('lun-db1'), true);
    await assert.rejects(arr1.clone('lun-app1', 'lun-db1', signal()), isDriverError((err) => assert.match(err.message, /original LUN/)));
  });

  test('storage-san - a malformed initiator is a permanent error naming the expected forms, and nothing is sent', async () => {
    const rejected = count('rejected');
    for (const bad of ['50:01:43:80:12:34', 'iqn.bad', 'h2']) {
      await assert.rejects(
        arr1.grant('lun-app1', bad, signal()),
        isDriverError((err) => {
          assert.equal(err.retryable, false);
          assert.equal(err.code, errorCodes.permanent);
          assert.match(err.message, new RegExp(`"${bad}"`));
          assert.match(err.message, /WWPN \(eight hex pairs/);
          assert.match(err.message, /IQN \(iqn\.YYYY-MM/);
        }),
      );
    }
    assert.equal(count('rejected'), rejected, 'the array never saw the bad requests');
  });

  test('storage-san - an unknown LUN is a permanent error carrying the array message', async () => {
    await assert.rejects(
      arr1.grant('lun-nope', IQN_H2, signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, false);
        assert.equal(err.httpStatus, 404);
        assert.deepEqual(err.messageIds, ['lun-not-found']);
        assert.match(err.message, /no LUN "lun-nope" on array arr1/);
      }),
    );
  });

  test('storage-san - revoking access to a LUN that does not exist (a clone never made) is done: nobody can see it', async () => {
    const step = await arr1.revoke('lun-nope', IQN_H2, signal());
    assert.equal(step.done, true);
    assert.deepEqual(step.observed, { visible: false });
  });

  test('storage-san - masked but kept off by zoning is reported as not done, not as success', async () => {
    const driver = await SanRestStorageDriver.fromInventory(array('arr1'), { env, pollIntervalMs: 10, settleWaitMs: 100 });
    const step = await driver.grant('lun-app1', WWPN_H3, signal());
    assert.equal(step.done, false);
    assert.match(step.message, /masked .* but not visible yet \(zoning\?\)/);
    assert.equal(step.retryAfterMs, 10);
    assert.equal((await driver.revoke('lun-app1', WWPN_H3, signal())).done, true);
  });

  test('storage-san - refused credentials are permanent and never appear in the error', async () => {
    const wrong = await SanRestStorageDriver.fromInventory({ ...array('arr2'), credentialsRef: 'env:FB_TEST_SAN_WRONG' }, { env });
    await assert.rejects(
      wrong.list(undefined, signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, false);
        assert.equal(err.httpStatus, 401);
        assert.match(err.message, /credentials env:FB_TEST_SAN_WRONG refused/);
        const shown = `${err.message} ${JSON.stringify(err)} ${String(err.stack)}`;
        assert.doesNotMatch(shown, /not-the-password|San-Driver-Pass/);
      }),
    );
  });

  test('storage-san - an unreachable array is a transient error', async () => {
    const address = `http://127.0.0.1:${await freePort()}`;
    const driver = await SanRestStorageDriver.fromInventory({ ...array('arr1'), address });
    await assert.rejects(
      driver.grant('lun-app1', IQN_H2, signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, true);
        assert.equal(err.code, errorCodes.transient);
        assert.match(err.message, /san arr1 GET \/luns\/lun-app1\/initiators: connection refused/);
      }),
    );
  });

  test('storage-san - refuses an array of another driver and an address that carries credentials', async () => {
    await assert.rejects(SanRestStorageDriver.fromInventory({ ...array('arr1'), driver: 'fc-zoning' }), /not one this driver speaks/);
    const driver = await SanRestStorageDriver.fromInventory({ ...array('arr1'), address: `http://admin:${PASSWORD}@127.0.0.1:1` });
    await assert.rejects(
      driver.validate(),
      isDriverError((err) => {
        assert.match(err.message, /carries credentials/);
        assert.doesNotMatch(err.message, new RegExp(PASSWORD));
      }),
    );
  });
});

describe('storage-san busy array', () => {
  let server: Server;
  let address: string;
  let reply: { status: number; headers?: Record<string, string>; delayMs?: number } = { status: 200 };

  before(async () => {
    server = createServer((_req, res) => {
      const { status, headers = {}, delayMs = 0 } = reply;
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify({ error: { code: 'busy', message: 'controller failover in progress' } }));
      }, delayMs);
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const driver = (requestTimeoutMs?: number) =>
    new SanRestStorageDriver({
      array: { id: 'busy', fabric: 'san-a', driver: 'lab-san', address },
      ...(requestTimeoutMs !== undefined && { requestTimeoutMs }),
    });

  test('storage-san busy array - 5xx and 429 are transient and carry Retry-After', async () => {
    for (const status of [503, 429]) {
      reply = { status, headers: { 'retry-after': '2' } };
      await assert.rejects(
        driver().list(undefined, signal()),
        isDriverError((err) => {
          assert.equal(err.retryable, true, String(status));
          assert.equal(err.httpStatus, status);
          assert.equal(err.retryAfterMs, 2_000);
          assert.match(err.message, /controller failover in progress/);
        }),
      );
    }
  });

  test('storage-san busy array - an array that does not answer in time is a retryable timeout', async () => {
    reply = { status: 200, delayMs: 500 };
    await assert.rejects(
      driver(50).list(undefined, signal()),
      isDriverError((err) => {
        assert.equal(err.code, errorCodes.timeout);
        assert.equal(err.retryable, true);
      }),
    );
  });
});
