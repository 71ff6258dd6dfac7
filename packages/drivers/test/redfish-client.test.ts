import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { Secret, errorCodes } from '@firebreak/shared';
import { freePort } from '@firebreak/shared/testing';
import { DriverError } from '../src/driver-error.ts';
import { RedfishClient, bmcOrigin, type RedfishClientOptions } from '../src/power/redfish-client.ts';
import { parseRetryAfter } from '../src/http-json.ts';
import { httpError, isRetryableStatus } from '../src/power/redfish-errors.ts';
import { ROOT_WITH_SESSIONS, json, redfishBody, startFakeBmc, type FakeBmc, type FakeHandler } from './fake-bmc.ts';

const PASSWORD = 'Very-Secret-Pa55';
const BASIC = Buffer.from(`admin:${PASSWORD}`).toString('base64');

const ctx = { method: 'POST', path: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', endpoint: '127.0.0.1:8443', credentialsRef: 'env:BMC' };
const noScrub = (text: string): string => text;

/** Every text an error shows: message, stack, inspection (with its cause) and JSON. */
function allText(err: unknown): string {
  return [String(err), (err as Error).stack ?? '', inspect(err, { depth: 6 }), JSON.stringify(err)].join('\n');
}

function assertNoSecrets(err: unknown): void {
  const text = allText(err);
  assert.ok(!text.includes(PASSWORD), `password leaked: ${text}`);
  assert.ok(!text.includes(BASIC), `basic token leaked: ${text}`);
}

describe('redfish-errors', () => {
  test('redfish-errors - a Redfish error body becomes a DriverError naming the request and the extended messages', () => {
    const body = redfishBody('Base.1.12.ActionParameterValueNotInList', 'The value Explode for the parameter ResetType is not in the list of acceptable values.');
    const err = httpError(ctx, 400, body, undefined, noScrub);
    assert.ok(err instanceof DriverError);
    assert.equal(err.code, errorCodes.permanent);
    assert.equal(err.retryable, false);
    assert.equal(err.httpStatus, 400);
    assert.deepEqual(err.messageIds, ['Base.1.12.GeneralError', 'Base.1.12.ActionParameterValueNotInList']);
    assert.match(err.message, /^redfish POST \/redfish\/v1\/Systems\/1\/Actions\/ComputerSystem\.Reset at 127\.0\.0\.1:8443: HTTP 400/);
    assert.match(err.message, /ResetType is not in the list/);
    assert.doesNotMatch(err.message, /general error/);
  });

  test('redfish-errors - 4xx are permanent except 408, 412 and 429; every 5xx is transient', () => {
    const table: [number, boolean][] = [
      [400, false],
      [401, false],
      [403, false],
      [404, false],
      [405, false],
      [409, false],
      [411, false],
      [408, true],
      [412, true],
      [429, true],
      [500, true],
      [502, true],
      [503, true],
      [504, true],
    ];
    for (const [status, retryable] of table) {
      assert.equal(isRetryableStatus(status), retryable, String(status));
      const err = httpError(ctx, status, undefined, undefined, noScrub);
      assert.equal(err.retryable, retryable, String(status));
      assert.equal(err.code, retryable ? errorCodes.transient : errorCodes.permanent);
    }
  });

  test('redfish-errors - 401 names the credentials reference, never the credentials', () => {
    const err = httpError(ctx, 401, redfishBody('Base.1.12.NoValidSession', 'There is no valid session.'), undefined, noScrub);
    assert.match(err.message, /refused the credentials of env:BMC/);
  });

  test('redfish-errors - Retry-After in seconds or as a date', () => {
    assert.equal(parseRetryAfter('5'), 5_000);
    assert.equal(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1)), 10_000);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(httpError(ctx, 503, undefined, '2', noScrub).retryAfterMs, 2_000);
  });

  test('redfish-errors - text from the BMC goes through the scrubber', () => {
    const body = redfishBody('Base.1.12.ResourceAtUriUnauthorized', `login for admin with password ${PASSWORD} refused`);
    const err = httpError(ctx, 401, body, undefined, (t) => t.replaceAll(PASSWORD, '[REDACTED]'));
    assertNoSecrets(err);
    assert.match(err.message, /\[REDACTED\]/);
  });

  test('redfish-errors - plain HTTP and credentials in the address are refused', () => {
    assert.throws(() => bmcOrigin('http://127.0.0.1:8000'), /only https/);
    assert.throws(
      () => bmcOrigin(`https://admin:${PASSWORD}@127.0.0.1:8443`),
      (err: unknown) => {
        assert.ok(err instanceof DriverError && !err.retryable);
        assertNoSecrets(err);
        return true;
      },
    );
    assert.equal(bmcOrigin('127.0.0.1:8443').host, '127.0.0.1:8443');
  });
});

describe('redfish-client', () => {
  const bmcs: FakeBmc[] = [];
  const clients: RedfishClient[] = [];
  const silent: TcpServer[] = [];
  const sockets: Socket[] = [];

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close(AbortSignal.timeout(500))));
    for (const s of sockets) s.destroy();
    for (const s of silent) s.close();
    for (const b of bmcs) b.close();
  });

  async function fake(handler: FakeHandler): Promise<FakeBmc> {
    const bmc = await startFakeBmc(handler);
    bmcs.push(bmc);
    return bmc;
  }

  /** A client of a fake BMC (trusting its certificate), or of a bare address. */
  function client(target: FakeBmc | string, options: Partial<RedfishClientOptions> = {}): RedfishClient {
    const c = new RedfishClient({
      address: typeof target === 'string' ? target : target.address,
      auth: 'session',
      username: 'admin',
      password: new Secret(PASSWORD),
      tls: { verify: true, caBundle: typeof target === 'string' ? undefined : target.caPem },
      credentialsRef: 'env:BMC',
      requestTimeoutMs: 1_000,
      ...options,
    });
    clients.push(c);
    return c;
  }

  const signal = (): AbortSignal => AbortSignal.timeout(3_000);

  test('redfish-client - bodies carry Content-Length and JSON content type, never chunked', async () => {
    const bmc = await fake((req, res) => (req.path.endsWith('Reset') ? res.writeHead(204).end() : json(res, 200, {})));
    await client(bmc, { auth: 'basic' }).post('/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { ResetType: 'On' }, signal());
    const post = bmc.seen.find((s) => s.method === 'POST');
    assert.ok(post);
    assert.equal(post.headers['content-length'], String(Buffer.byteLength('{"ResetType":"On"}')));
    assert.equal(post.headers['transfer-encoding'], undefined);
    assert.match(post.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(post.headers['odata-version'], '4.0');
    assert.equal(post.headers.authorization, `Basic ${BASIC}`);
  });

  test('redfish-client - session login, token on requests, one re-login on 401, logout on close', async () => {
    let tokens = 0;
    let expired = false;
    const bmc = await fake((req, res) => {
      if (req.path === '/redfish/v1/') return json(res, 200, ROOT_WITH_SESSIONS);
      if (req.method === 'POST' && req.path === '/redfish/v1/SessionService/Sessions') {
        tokens += 1;
        return json(res, 201, { Id: String(tokens) }, { 'x-auth-token': `tok-${tokens}`, location: `/redfish/v1/SessionService/Sessions/${tokens}` });
      }
      if (req.method === 'DELETE') return res.writeHead(204).end();
      // The first token expires after one use.
      if (req.headers['x-auth-token'] === 'tok-1' && expired) return json(res, 401, redfishBody('Base.1.12.NoValidSession', 'no session'));
      expired = true;
      return json(res, 200, { Id: '1' });
    });
    const c = client(bmc);
    await c.get('/redfish/v1/Systems/1', signal());
    await c.get('/redfish/v1/Systems/1', signal());
    assert.equal(tokens, 2, 'one re-login after the 401');
    const login = bmc.seen.find((s) => s.method === 'POST');
    assert.deepEqual(JSON.parse(login?.body ?? '{}'), { UserName: 'admin', Password: PASSWORD });
    assert.ok(bmc.seen.filter((s) => s.path === '/redfish/v1/Systems/1').every((s) => s.headers.authorization === undefined));
    await c.close();
    const logout = bmc.seen.at(-1);
    assert.equal(logout?.method, 'DELETE');
    assert.equal(logout?.path, '/redfish/v1/SessionService/Sessions/2');
    assert.equal(logout?.headers['x-auth-token'], 'tok-2');
  });

  test('redfish-client - a second 401 after re-login is a permanent error', async () => {
    const bmc = await fake((req, res) => {
      if (req.path === '/redfish/v1/') return json(res, 200, ROOT_WITH_SESSIONS);
      if (req.method === 'POST') return json(res, 201, {}, { 'x-auth-token': 'tok', location: '/redfish/v1/SessionService/Sessions/1' });
      return json(res, 401, redfishBody('Base.1.12.NoValidSession', 'no session'));
    });
    await assert.rejects(client(bmc).get('/redfish/v1/Systems/1', signal()), (err: unknown) => err instanceof DriverError && err.httpStatus === 401 && !err.retryable);
    assert.equal(bmc.seen.filter((s) => s.method === 'POST').length, 2);
  });

  test('redfish-client - auto falls back to basic when Sessions answers 405', async () => {
    const bmc = await fake((req, res) => {
      if (req.path === '/redfish/v1/') return json(res, 200, ROOT_WITH_SESSIONS);
      if (req.method === 'POST') return json(res, 405, redfishBody('Base.1.12.OperationNotAllowed', 'not here'));
      return json(res, 200, { Id: '1' });
    });
    const c = client(bmc, { auth: 'auto' });
    await c.get('/redfish/v1/Systems/1', signal());
    assert.equal(await c.authMode(signal()), 'basic');
    assert.equal(bmc.seen.at(-1)?.headers.authorization, `Basic ${BASIC}`);
  });

  test('redfish-client - a BMC echoing the credentials back cannot leak them into errors', async () => {
    const bmc = await fake((req, res) => {
      if (req.path === '/redfish/v1/') return json(res, 200, ROOT_WITH_SESSIONS);
      const echoed = `${req.body} ${req.headers.authorization ?? ''}`;
      return json(res, 401, redfishBody('Base.1.12.ResourceAtUriUnauthorized', `bad login: ${echoed}`));
    });
    for (const auth of ['session', 'basic'] as const) {
      await assert.rejects(client(bmc, { auth }).get('/redfish/v1/Systems/1', signal()), (err: unknown) => {
        assert.ok(err instanceof DriverError);
        assert.equal(err.httpStatus, 401);
        assert.match(err.message, /bad login/);
        assertNoSecrets(err);
        return true;
      });
    }
  });

  test('redfish-client - 429 with Retry-After is transient and says when to retry', async () => {
    const bmc = await fake((_req, res) => json(res, 429, redfishBody('Base.1.12.ServiceTemporarilyUnavailable', 'busy'), { 'retry-after': '3' }));
    await assert.rejects(client(bmc, { auth: 'basic' }).get('/redfish/v1/Systems/1', signal()), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.retryable, true);
      assert.equal(err.retryAfterMs, 3_000);
      return true;
    });
  });

  test('redfish-client - connection refused is transient', async () => {
    const port = await freePort();
    await assert.rejects(client(`127.0.0.1:${port}`, { auth: 'basic' }).get('/redfish/v1/', signal()), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.retryable, true);
      assert.match(err.message, /connection failed \(ECONNREFUSED\)/);
      assertNoSecrets(err);
      return true;
    });
  });

  test('redfish-client - a BMC that never answers times out; the caller can abort sooner', async () => {
    const server = createTcpServer((socket) => sockets.push(socket));
    silent.push(server);
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const c = client(`127.0.0.1:${port}`, { auth: 'basic', requestTimeoutMs: 150 });
    const started = Date.now();
    await assert.rejects(c.get('/redfish/v1/', signal()), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.code, errorCodes.timeout);
      assert.equal(err.retryable, true);
      assert.match(err.message, /no answer within 150 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 1_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(client(`127.0.0.1:${port}`, { auth: 'basic' }).get('/redfish/v1/', controller.signal), /aborted by the caller/);
    // A caller's deadline (a TimeoutError reason) is a timeout, not an abort.
    await assert.rejects(client(`127.0.0.1:${port}`, { auth: 'basic' }).get('/redfish/v1/', AbortSignal.timeout(50)), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.code, errorCodes.timeout);
      assert.match(err.message, /the caller's deadline passed/);
      return true;
    });
  });
});
