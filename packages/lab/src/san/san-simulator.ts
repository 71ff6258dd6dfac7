/**
 * The lab's storage arrays: one small REST API per array, at the address the
 * inventory gives it, for zoning and LUN masking (which initiator, a WWPN or
 * an IQN, may see which LUN) and for the LUN clones drills run on. Every
 * change lands in the world, where the simulated hosts look when they boot.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Id, Initiator, resolveCredentials, type StorageArray } from '@firebreak/shared';
import type { World } from '../world.ts';
import { basicAuthMatches, closeServer, createApiServer, LabApiError, listen, methods, notFound, pathSegments, readJson, sendEmpty, sendJson } from '../api-http.ts';

export interface SanSimulatorOptions {
  /** Where `env:` credential references are looked up; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface SanEndpoint {
  arrayId: string;
  url: string;
}

export interface SanSimulator {
  readonly endpoints: SanEndpoint[];
  /** Every LUN the arrays hold now, inventory LUNs and clones, by id. */
  luns(): LunRecord[];
  stop(): Promise<void>;
}

/** A LUN as the API shows it; a clone records the LUN it was cloned from. */
export interface LunRecord {
  id: string;
  array: string;
  sizeGiB: number;
  cloneOf?: string;
}

interface ArrayContext {
  array: StorageArray;
  credentials: { username: string; password: string } | undefined;
}

const PREFIX = ['api', 'v1'];

export async function startSanSimulator(world: World, options: SanSimulatorOptions = {}): Promise<SanSimulator> {
  const recorder = world.recorder;
  /** Sizes and clone origins of inventory LUNs and run-time clones: what the world does not keep. */
  const luns = new Map<string, LunRecord>(world.inventory.luns.map((l) => [l.id, { id: l.id, array: l.array, sizeGiB: l.sizeGiB }]));

  const view = (lun: LunRecord) => ({ ...lun, initiators: world.initiatorsOf(lun.id) });

  const lunOn = (ctx: ArrayContext, id: string): LunRecord => {
    const lun = luns.get(id);
    if (!lun || lun.array !== ctx.array.id) throw new LabApiError(404, 'lun-not-found', `no LUN "${id}" on array ${ctx.array.id}`);
    return lun;
  };

  /** The world's answer for an inventory host (masking and zoning); masking alone for an initiator no host owns. */
  const visible = (lun: LunRecord, initiator: string): boolean => {
    const host = world.hostOfInitiator(initiator);
    return host === undefined ? world.initiatorsOf(lun.id).includes(initiator) : world.canSee(host, lun.id);
  };

  const handle = async (ctx: ArrayContext, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { credentials } = ctx;
    if (credentials && !basicAuthMatches(req, credentials.username, credentials.password)) {
      recorder.record('san', 'unauthorized', { detail: { array: ctx.array.id, path: pathOf(req) } });
      throw new LabApiError(401, 'unauthorized', 'valid basic credentials required', { 'www-authenticate': 'Basic realm="firebreak-san"' });
    }
    const url = new URL(req.url ?? '/', 'http://san.invalid');
    const seg = pathSegments(url.pathname, PREFIX);
    if (seg === undefined) throw notFound(url.pathname);
    const [collection, id, sub, member] = seg;
    const arrayId = ctx.array.id;

    if (collection === 'luns' && seg.length === 1) {
      return methods(req, {
        GET: () => {
          recorder.record('san', 'list-luns', { countOnly: true });
          const mine = [...luns.values()].filter((l) => l.array === arrayId).sort((a, b) => a.id.localeCompare(b.id));
          sendJson(res, 200, { array: arrayId, luns: mine.map(view) });
        },
      });
    }
    if (collection === 'luns' && id !== undefined && seg.length === 2) {
      return methods(req, {
        GET: () => {
          recorder.record('san', 'get-lun', { countOnly: true });
          sendJson(res, 200, view(lunOn(ctx, id)));
        },
        DELETE: () => {
          const lun = lunOn(ctx, id);
          if (lun.cloneOf === undefined) throw new LabApiError(409, 'not-a-clone', `LUN "${id}" is not a clone; only clones can be deleted`);
          // Revoke one by one first so each host's san counters show it lost the clone.
          const revoked = world.initiatorsOf(id);
          for (const initiator of revoked) world.revoke(id, initiator);
          world.removeLun(id);
          luns.delete(id);
          recorder.record('san', 'delete-clone', { detail: { array: arrayId, lun: id, revoked } });
          sendEmpty(res, 204);
        },
      });
    }
    if (collection === 'luns' && id !== undefined && sub === 'initiators' && seg.length === 3) {
      return methods(req, {
        GET: () => {
          recorder.record('san', 'list-initiators', { countOnly: true });
          sendJson(res, 200, { lun: lunOn(ctx, id).id, initiators: world.initiatorsOf(id) });
        },
      });
    }
    if (collection === 'luns' && id !== undefined && sub === 'initiators' && member !== undefined && seg.length === 4) {
      return methods(req, {
        PUT: () => {
          const lun = lunOn(ctx, id);
          const initiator = parseInitiator(member);
          const added = !world.initiatorsOf(lun.id).includes(initiator);
          world.grant(lun.id, initiator);
          if (added) sendJson(res, 201, { lun: lun.id, initiator });
          else sendEmpty(res, 204);
        },
        DELETE: () => {
          const lun = lunOn(ctx, id);
          world.revoke(lun.id, parseInitiator(member));
          sendEmpty(res, 204);
        },
      });
    }
    if (collection === 'luns' && id !== undefined && sub === 'clones' && seg.length === 3) {
      return methods(req, {
        POST: async () => {
          const source = lunOn(ctx, id);
          const cloneId = parseCloneId(await readJson(req));
          if (luns.has(cloneId) || world.hasLun(cloneId)) throw new LabApiError(409, 'lun-exists', `a LUN "${cloneId}" already exists`);
          // A clone starts with nobody allowed to see it (a drill grants its own hosts):
          // removing the unknown id drops any masking granted under that name beforehand.
          world.removeLun(cloneId);
          world.addLun(cloneId, arrayId);
          const clone: LunRecord = { id: cloneId, array: arrayId, sizeGiB: source.sizeGiB, cloneOf: source.id };
          luns.set(cloneId, clone);
          recorder.record('san', 'clone', { detail: { array: arrayId, lun: source.id, clone: cloneId } });
          res.setHeader('location', `/api/v1/luns/${encodeURIComponent(cloneId)}`);
          sendJson(res, 201, view(clone));
        },
      });
    }
    if (collection === 'initiators' && id !== undefined && seg.length === 2) {
      const mineOnly = (): Set<string> => new Set([...luns.values()].filter((l) => l.array === arrayId).map((l) => l.id));
      return methods(req, {
        // The LUNs masked to one initiator on this array: a fence's check without listing every LUN.
        GET: () => {
          const initiator = parseInitiator(id);
          const mine = mineOnly();
          recorder.record('san', 'list-initiator-luns', { countOnly: true });
          sendJson(res, 200, { array: arrayId, initiator, luns: world.lunsVisibleTo(initiator).filter((l) => mine.has(l)).sort() });
        },
        DELETE: () => {
          const initiator = parseInitiator(id);
          const mine = mineOnly();
          const revoked = world.revokeAll(initiator, mine).sort();
          sendJson(res, 200, { array: arrayId, initiator, revoked });
        },
      });
    }
    if (collection === 'visibility' && seg.length === 1) {
      return methods(req, {
        GET: () => {
          const initiatorParam = url.searchParams.get('initiator');
          const lunParam = url.searchParams.get('lun');
          if (!initiatorParam || !lunParam) {
            throw new LabApiError(400, 'missing-parameter', 'visibility needs ?initiator=<WWPN or IQN>&lun=<lun id>');
          }
          const initiator = parseInitiator(initiatorParam);
          recorder.record('san', 'visibility', { host: world.hostOfInitiator(initiator), countOnly: true });
          const lun = lunOn(ctx, lunParam);
          sendJson(res, 200, { initiator, lun: lun.id, visible: visible(lun, initiator) });
        },
      });
    }
    throw notFound(url.pathname);
  };

  const servers: Server[] = [];
  const stopAll = () => Promise.all(servers.map(closeServer)).then(() => undefined);
  const endpoints: SanEndpoint[] = [];
  const seen = new Map<string, string>();
  try {
    for (const array of world.inventory.storageArrays) {
      const { host, port } = listenAddress(array);
      const other = seen.get(`${host}:${port}`);
      if (other !== undefined) throw new Error(`SAN simulator: arrays ${other} and ${array.id} both claim ${array.address}`);
      seen.set(`${host}:${port}`, array.id);
      const ctx: ArrayContext = { array, credentials: await arrayCredentials(array, options.env) };
      const server = createApiServer(
        (req, res) => handle(ctx, req, res),
        (err) => {
          if (err.status !== 401) recorder.record('san', 'rejected', { countOnly: true });
        },
      );
      servers.push(server);
      await listen(server, port, host);
      endpoints.push({ arrayId: array.id, url: `http://${host}:${port}` });
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    endpoints,
    luns: () => [...luns.values()].map((l) => ({ ...l })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    stop: stopAll,
  };
}

function parseInitiator(raw: string): string {
  const result = Initiator.safeParse(raw);
  if (result.success) return result.data.toLowerCase();
  const why = result.error.issues[0]?.message ?? 'not a WWPN or an iSCSI IQN';
  throw new LabApiError(400, 'invalid-initiator', `initiator "${raw}": ${why}`);
}

function parseCloneId(body: unknown): string {
  const cloneId = (body as { cloneId?: unknown } | undefined)?.cloneId;
  const result = Id.safeParse(cloneId);
  if (!result.success) {
    throw new LabApiError(400, 'invalid-body', `expected a JSON body { "cloneId": "<id>" }: cloneId ${result.error.issues[0]?.message ?? 'is invalid'}`);
  }
  return result.data;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

/** The loopback host and port an array's `http://127.0.0.1:<port>` address names. */
function listenAddress(array: StorageArray): { host: string; port: number } {
  let url: URL;
  try {
    url = new URL(array.address);
  } catch {
    throw new Error(`SAN simulator: array ${array.id} address "${array.address}" is not a URL (expected http://127.0.0.1:<port>)`);
  }
  if (url.protocol !== 'http:' || url.hostname !== '127.0.0.1' || url.port === '') {
    throw new Error(`SAN simulator: array ${array.id} address "${array.address}" must be http://127.0.0.1:<port>`);
  }
  return { host: url.hostname, port: Number(url.port) };
}

async function arrayCredentials(array: StorageArray, env: NodeJS.ProcessEnv | undefined): Promise<ArrayContext['credentials']> {
  if (array.credentialsRef === undefined) return undefined;
  const creds = await resolveCredentials(array.credentialsRef, env);
  if (creds.username === undefined || creds.password === undefined) {
    throw new Error(`SAN simulator: array ${array.id} credentials ${array.credentialsRef} need a username and a password`);
  }
  return { username: creds.username, password: creds.password.reveal() };
}
