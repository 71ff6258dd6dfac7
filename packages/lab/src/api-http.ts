/**
 * The HTTP plumbing of the lab's small JSON APIs (storage arrays,
 * hypervisors): the error body every failure uses
 * (`{ error: { code, message } }`), bounded request bodies, method dispatch,
 * decoded path segments, basic-auth checking and loopback listening.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request an API refuses, with the HTTP status, error code and headers it answers. */
export class LabApiError extends Error {
  override name = 'LabApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

const MAX_JSON_BYTES = 64 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length });
  res.end(data);
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

/**
 * A server whose handler answers every failure with the error body; anything
 * not a LabApiError is a 500. `onError` sees each failure first (to count it).
 */
export function createApiServer(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>, onError: (err: LabApiError) => void): Server {
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const apiError = err instanceof LabApiError ? err : new LabApiError(500, 'internal', err instanceof Error ? err.message : String(err));
      onError(apiError);
      if (res.headersSent) return void res.destroy();
      for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
      sendJson(res, apiError.status, { error: { code: apiError.code, message: apiError.message } });
    });
  });
}

/** Listens on `host:port` (0: any free port) and resolves with the bound port. */
export async function listen(server: Server, port: number, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

type Handler = () => void | Promise<void>;

/** Runs the handler for the request's method; 405 with `Allow` for any other. */
export async function methods(req: IncomingMessage, handlers: Partial<Record<string, Handler>>): Promise<void> {
  const handler = handlers[req.method ?? 'GET'];
  if (!handler) {
    const allow = Object.keys(handlers).join(', ');
    throw new LabApiError(405, 'method-not-allowed', `${req.method} is not allowed here (allowed: ${allow})`, { allow });
  }
  await handler();
}

/** The body as text; 413 once it passes `maxBytes` (`what` names it in the error). */
export async function readText(req: IncomingMessage, maxBytes: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new LabApiError(413, 'body-too-large', `${what} exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The parsed JSON body, undefined when empty; 400 when it is not JSON. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readText(req, MAX_JSON_BYTES, 'request body');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new LabApiError(400, 'invalid-body', 'request body is not valid JSON');
  }
}

/**
 * The path's non-empty segments after the raw (still encoded) `prefix`,
 * percent-decoded; undefined when the path does not start with the prefix,
 * 400 for a malformed segment.
 */
export function pathSegments(pathname: string, prefix: readonly string[] = []): string[] | undefined {
  const raw = pathname.split('/').filter((s) => s !== '');
  if (prefix.some((p, i) => raw[i] !== p)) return undefined;
  return raw.slice(prefix.length).map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw new LabApiError(400, 'invalid-path', `path segment "${segment}" is not valid percent-encoding`);
    }
  });
}

export function notFound(path: string): LabApiError {
  return new LabApiError(404, 'not-found', `no such resource: ${path}`);
}

/** Constant-time comparison of the request's basic credentials with the expected ones. */
export function basicAuthMatches(req: IncomingMessage, username: string, password: string): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Basic\s+(\S+)$/i.exec(header);
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1], 'base64');
  const expected = Buffer.from(`${username}:${password}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
