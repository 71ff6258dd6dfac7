/**
 * The boot service: an admin API the executor's boot driver writes entries
 * through, and the scripts network-booting hosts fetch.
 *
 *   PUT    /v1/hosts/<mac>   {server, image, imageUrl, attach?: {vlans, luns}}  → 201 new, 200 changed or unchanged
 *   GET    /v1/hosts/<mac>   → the entry, or 404
 *   DELETE /v1/hosts/<mac>   → 204, whether or not there was one
 *   GET    /v1/hosts         → {hosts: [...]}
 *   GET    /boot/<mac>.ipxe  → the host's iPXE script, or 404 (the first stage then boots locally)
 *   GET    /boot/chain.ipxe  → the first stage, for DHCP/TFTP to hand out
 *   GET    /healthz
 *
 * MACs in paths may come in any case, ":" or "-" separated or bare.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { writeFile, rename } from 'node:fs/promises';
import { z } from 'zod';
import { BootAttach, Id, type Logger } from '@firebreak/shared';
import { BootStore, type BootRecord } from './boot-store.ts';
import { renderChainScript } from './chain-script.ts';
import { dnsmasqSnippet } from './dnsmasq.ts';
import { canonicalMac, macFormatHint } from './mac.ts';

export interface BootRequestRecord {
  method: string;
  /** As the client sent it, percent-encoding included. */
  path: string;
  status: number;
  /** The canonical MAC the request was about, when it named one. */
  mac?: string;
  remote?: string;
}

export interface BootServiceOptions {
  /** Where entries live; created when missing, loaded when present. */
  dir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /**
   * The URL hosts reach this service at, for the first stage written into
   * dnsmasq's snippet. Without it the snippet names the bound address and
   * GET /boot/chain.ipxe names whatever Host the client used.
   */
  publicUrl?: string;
  logger?: Logger;
  /** Called after every answered request: what was asked and what was answered. */
  onRequest?: (record: BootRequestRecord) => void;
}

export interface BootService {
  /** The bound address, e.g. http://127.0.0.1:8081. */
  readonly url: string;
  /** The dnsmasq snippet to include with conf-file=. */
  readonly dnsmasqConf: string;
  stop(): Promise<void>;
}

const bootableUrl = z
  .string()
  .refine((value) => {
    // Printable ASCII only: a space or newline would end the chain command and start another.
    if (!/^[!-~]+$/.test(value)) return false;
    try {
      return ['http:', 'https:', 'tftp:'].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, 'must be an http://, https:// or tftp:// URL without spaces');

/**
 * What PUT /v1/hosts/<mac> takes. `attach`, when given, names the VLANs and
 * LUNs the instance uses instead of its server's own (a drill's twins and
 * clones); the script carries them as fb-vlans and fb-luns.
 */
export const BootEntryBody = z.object({ server: Id, image: Id, imageUrl: bootableUrl, attach: BootAttach.optional() });

const MAX_BODY_BYTES = 64 * 1024;
const hostHeader = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly allow?: readonly string[],
  ) {
    super(message);
  }
}

export async function startBootService(options: BootServiceOptions): Promise<BootService> {
  const { logger, onRequest } = options;
  // Absolute: dnsmasq reads the hosts directory named in the snippet from its own working directory.
  const store = await BootStore.open(resolve(options.dir), logger);

  const server = createServer((req, res) => {
    const record: BootRequestRecord = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0 };
    if (req.socket.remoteAddress !== undefined) record.remote = req.socket.remoteAddress;
    handle(req, res, record)
      .catch((err: unknown) => {
        if (err instanceof HttpError) return sendError(res, err);
        logger?.error({ err, method: record.method, path: record.path }, 'boot service request failed');
        return sendError(res, new HttpError(500, 'internal', `the boot service failed: ${(err as Error).message}`));
      })
      .finally(() => {
        record.status = res.statusCode;
        const level = record.path.startsWith('/boot/') ? 'info' : 'debug';
        logger?.[level]({ ...record }, 'boot service request');
        onRequest?.(record);
      });
  });

  const handle = async (req: IncomingMessage, res: ServerResponse, record: BootRequestRecord): Promise<void> => {
    const pathname = new URL(record.path, 'http://boot').pathname;
    const method = record.method;
    if (pathname === '/healthz') return only(method, ['GET', 'HEAD'], () => sendText(res, 200, 'ok\n'));

    const boot = /^\/boot\/([^/]+)\.ipxe$/.exec(pathname);
    if (boot?.[1] !== undefined) {
      const name = decode(boot[1]);
      return only(method, ['GET', 'HEAD'], () => {
        if (name === 'chain') return sendText(res, 200, renderChainScript(options.publicUrl ?? baseUrlOf(req, url)));
        const mac = macOf(name);
        record.mac = mac;
        const script = store.script(mac);
        if (script === undefined) return sendText(res, 404, `no boot entry for ${mac}\n`);
        return sendText(res, 200, script);
      });
    }

    if (pathname === '/v1/hosts') return only(method, ['GET'], () => sendJson(res, 200, { hosts: store.list() }));

    const host = /^\/v1\/hosts\/([^/]+)$/.exec(pathname);
    if (host?.[1] !== undefined) {
      const mac = macOf(decode(host[1]));
      record.mac = mac;
      switch (method) {
        case 'GET': {
          const entry = store.get(mac);
          if (!entry) throw new HttpError(404, 'not-found', `no boot entry for ${mac}`);
          return sendJson(res, 200, entry);
        }
        case 'PUT': {
          const parsed = BootEntryBody.safeParse(await readJson(req));
          if (!parsed.success) throw new HttpError(400, 'invalid-input', describe(parsed.error));
          const { attach, ...identity } = parsed.data;
          const entry: BootRecord = { mac, ...identity, ...(attach !== undefined && { attach }) };
          const outcome = await store.put(entry);
          if (outcome !== 'unchanged') logger?.info({ ...entry, outcome }, 'boot entry written');
          return sendJson(res, outcome === 'created' ? 201 : 200, { ...entry, outcome });
        }
        case 'DELETE': {
          if (await store.delete(mac)) logger?.info({ mac }, 'boot entry deleted');
          res.writeHead(204).end();
          return;
        }
        default:
          throw methodNotAllowed(method, ['GET', 'PUT', 'DELETE']);
      }
    }
    throw new HttpError(404, 'not-found', `no such resource: ${pathname}`);
  };

  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;

  const dnsmasqConf = join(store.dir, 'dnsmasq.conf');
  const snippet = dnsmasqSnippet({ path: dnsmasqConf, hostsDir: store.hostsDir, chainUrl: `${(options.publicUrl ?? url).replace(/\/+$/, '')}/boot/chain.ipxe` });
  try {
    await writeFile(`${dnsmasqConf}.tmp`, snippet, { flush: true });
    await rename(`${dnsmasqConf}.tmp`, dnsmasqConf);
  } catch (err) {
    server.close();
    throw err;
  }
  logger?.info({ url, dir: options.dir, entries: store.list().length }, 'boot service listening');

  return {
    url,
    dnsmasqConf,
    async stop(): Promise<void> {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
      // A write whose client went away still finishes: disk and the answer it would have got agree.
      await store.settled();
    },
  };
}

function only(method: string, allowed: readonly string[], answer: () => void): void {
  if (!allowed.includes(method)) throw methodNotAllowed(method, allowed);
  answer();
}

function methodNotAllowed(method: string, allowed: readonly string[]): HttpError {
  return new HttpError(405, 'method-not-allowed', `${method} not allowed here; use ${allowed.join(', ')}`, allowed);
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'invalid-input', `mac: "${segment}" is not valid percent-encoding`);
  }
}

function macOf(raw: string): string {
  const mac = canonicalMac(raw);
  if (mac === undefined) throw new HttpError(400, 'invalid-input', `mac: "${raw.slice(0, 64)}" is not a MAC address (${macFormatHint})`);
  return mac;
}

/** The base URL the client itself used, so the first stage chains back the same way. */
function baseUrlOf(req: IncomingMessage, fallback: string): string {
  const host = req.headers.host;
  return host !== undefined && hostHeader.test(host) ? `http://${host}` : fallback;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'too-large', `body: larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'invalid-input', 'body: not JSON (expected {"server", "image", "imageUrl"} and optionally "attach": {"vlans", "luns"})');
  }
}

/** Every problem, each led by the field it is about. */
function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message.replace(/^Invalid input: /, '')}`).join('; ');
}

function sendText(res: ServerResponse, status: number, text: string): void {
  // A cache between host and service must never hand out an entry that was changed or cleared.
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err.allow !== undefined) res.setHeader('allow', err.allow.join(', '));
  sendJson(res, err.status, { error: { code: err.code, message: err.message } });
}
