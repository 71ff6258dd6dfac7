/**
 * Simulated BMCs: one HTTPS Redfish endpoint per distinct `bmc.address` of
 * the inventory, each serving its hosts as ComputerSystems over the world.
 * They behave like strict real BMCs rather than the easiest server: verified
 * TLS with a certificate made at start, session or basic auth, 411 for a
 * chunked body, resets that land after a delay, and the fault knobs of each
 * host's `bmc` runtime (unreachable, slow, failing). Each endpoint's
 * requests in hand are counted (`recorder.peakInFlight('bmc', address)`), so
 * a test sees the concurrency a BMC got, not what a client believes it sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RecordOptions } from '../recorder.ts';
import type { World } from '../world.ts';
import { DelayedPower } from './delayed-power.ts';
import { endpointModels, type EndpointModel } from './endpoints.ts';
import { RedfishError, redfishErrors } from './redfish-error.ts';
import { checkBodyFraming } from './request-body.ts';
import { matchRoute, systemIdOf, type Reply } from './routes.ts';
import { sameAccount, type Account } from './sessions.ts';
import { makeBmcCertificate } from './tls.ts';

export interface BmcSimulatorOptions {
  /** How long after an accepted reset the power changes. Default 1000 ms. */
  powerDelayMs?: number;
  /** BMC addresses (as the inventory names them) that have no SessionService: basic auth only. */
  withoutSessionService?: readonly string[];
  /** Idle sessions expire after this long. Default 30 minutes. */
  sessionTimeoutMs?: number;
  /** Where `env:` credential references are looked up. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface BmcEndpoint {
  /** As the inventory names it. */
  address: string;
  /** `https://127.0.0.1:<port>` */
  url: string;
  /** The hosts whose systems this endpoint serves. */
  hosts: string[];
}

export interface BmcSimulator {
  endpoints: BmcEndpoint[];
  /** The certificate every endpoint serves; clients use it as their CA bundle. */
  caCertPem: string;
  /** The reset a host's BMC accepted that has not landed yet (`On`, `ForceOff` …). */
  pendingReset(hostId: string): string | undefined;
  stop(): Promise<void>;
}

interface Shared {
  world: World;
  power: DelayedPower;
  stopping: AbortSignal;
}

export async function startBmcSimulator(world: World, options: BmcSimulatorOptions = {}): Promise<BmcSimulator> {
  const models = await endpointModels(world.inventory, {
    withoutSessionService: options.withoutSessionService ?? [],
    sessionTimeoutMs: options.sessionTimeoutMs ?? 30 * 60_000,
    env: options.env ?? process.env,
  });
  const cert = await makeBmcCertificate();
  const stopController = new AbortController();
  const shared: Shared = { world, power: new DelayedPower(world, options.powerDelayMs ?? 1000), stopping: stopController.signal };
  const servers: Server[] = [];
  try {
    for (const ep of models) {
      const server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
        // Counted from arrival until answered or dropped: what the BMC itself has in hand.
        const done = world.recorder.inFlight('bmc', ep.address);
        void serve(shared, ep, req, res).finally(done);
      });
      servers.push(server);
      await listen(server, ep);
    }
  } catch (err) {
    await closeAll(servers);
    throw err;
  }
  return {
    endpoints: models.map((ep) => ({
      address: ep.address,
      url: `https://127.0.0.1:${ep.port}`,
      hosts: [...ep.systems.values()].map((s) => s.hostId),
    })),
    caCertPem: cert.certPem,
    pendingReset: (hostId) => shared.power.pendingFor(hostId),
    async stop() {
      stopController.abort();
      shared.power.stop();
      await closeAll(servers);
    },
  };
}

function listen(server: Server, ep: EndpointModel): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`lab: cannot serve BMC ${ep.address} on 127.0.0.1:${ep.port} (${err.code ?? err.message})`, { cause: err })),
    );
    server.listen(ep.port, '127.0.0.1', resolve);
  });
}

async function closeAll(servers: readonly Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          if (!server.listening) return resolve();
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    ),
  );
}

function pathOf(url: string | undefined): string {
  const path = new URL(url ?? '/', 'https://bmc.invalid').pathname;
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

/** X-Auth-Token of a live session, or basic credentials of one of the endpoint's accounts. */
function authenticate(ep: EndpointModel, req: IncomingMessage): Account {
  const token = req.headers['x-auth-token'];
  if (typeof token === 'string' && ep.sessions !== undefined) {
    const session = ep.sessions.authenticate(token);
    if (session === undefined) throw redfishErrors.noValidSession();
    return session.account;
  }
  const auth = req.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const given = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    const account = colon > 0 ? ep.accounts.find((a) => sameAccount(a, given)) : undefined;
    if (account !== undefined) return account;
  }
  throw redfishErrors.noValidSession();
}

async function serve(shared: Shared, ep: EndpointModel, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { world, power } = shared;
  const method = req.method ?? 'GET';
  const path = pathOf(req.url);
  const systemId = systemIdOf(path);
  const system = systemId === undefined ? undefined : ep.systems.get(systemId);
  const host = system?.hostId;
  const record = (action: string, opts: RecordOptions = {}): void => world.recorder.record('bmc', action, opts);
  try {
    // Faults first: a dark BMC answers nothing at all, a slow one is slow before it checks anything.
    const bmc = system === undefined ? undefined : world.host(system.hostId).bmc;
    const dark = bmc !== undefined ? !bmc.reachable : [...ep.systems.values()].every((s) => !world.host(s.hostId).bmc.reachable);
    if (dark) {
      record('dropped', { host, countOnly: true });
      req.socket.destroy();
      return;
    }
    if (bmc !== undefined && bmc.extraLatencyMs > 0) await sleep(bmc.extraLatencyMs, undefined, { signal: shared.stopping });
    if (bmc !== undefined && bmc.failNext > 0) {
      bmc.failNext -= 1;
      record('injected-failure', { host, detail: { method, path } });
      throw redfishErrors.internalError();
    }
    checkBodyFraming(req);

    const match = matchRoute(path);
    if (match === undefined || (match.route.sessionService === true && ep.sessions === undefined)) throw redfishErrors.notFound(path);
    const { route, params } = match;
    const handler = route.methods[method];
    if (handler === undefined) throw redfishErrors.methodNotAllowed(method, path, Object.keys(route.methods));
    const account = route.public?.includes(method) === true ? undefined : authenticate(ep, req);
    if (route.perSystem === true) {
      if (system === undefined) throw redfishErrors.notFound(path);
      if (!sameAccount(system.account, account)) throw redfishErrors.insufficientPrivilege();
    }
    send(res, await handler({ world, power, ep, req, path, params, account, system, record }));
  } catch (err) {
    if (shared.stopping.aborted) {
      req.socket.destroy();
      return;
    }
    if (!(err instanceof RedfishError)) {
      record('internal-error', { host, detail: { method, path, message: err instanceof Error ? err.message : String(err) } });
    } else if (err.status === 401) {
      record('auth-failed', { host, detail: { method, path } });
    } else if (err.status < 500) {
      record('rejected', { host, detail: { method, path, status: err.status, messageId: err.messageId } });
    }
    const e = err instanceof RedfishError ? err : redfishErrors.internalError();
    // Strict BMC web servers drop the connection after refusing a body they would not read.
    const close = e.status === 411 || e.status === 413 ? { connection: 'close' } : {};
    send(res, { status: e.status, body: e.body(), headers: { ...e.headers, ...close } });
  }
}

function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  const payload = reply.body === undefined ? undefined : Buffer.from(JSON.stringify(reply.body), 'utf8');
  res.writeHead(reply.status, {
    'odata-version': '4.0',
    'cache-control': 'no-cache',
    ...(payload !== undefined && { 'content-type': 'application/json; charset=utf-8', 'content-length': String(payload.byteLength) }),
    ...reply.headers,
  });
  res.end(payload);
}
