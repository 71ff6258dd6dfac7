/**
 * The lab's hypervisors over HTTP, one server for all of them on 127.0.0.1.
 * A host's hypervisor lives at `/hypervisors/<host id>` (what generated
 * inventories put in `hypervisor.uri`); a host that is not running a
 * hypervisor answers 503, as an unreachable libvirt would.
 *
 *   GET    /hypervisors                               every hypervisor-capable host and whether it runs one
 *   GET    /hypervisors/<host>                        { host, running, image }
 *   GET    /hypervisors/<host>/domains                { domains: [{ name, state, phase }] }
 *   GET    /hypervisors/<host>/domains/<name>         { name, state, phase, problems, xml }
 *   PUT    /hypervisors/<host>/domains/<name>         body: libvirt domain XML; 201 created, 200 replaced or unchanged
 *   DELETE /hypervisors/<host>/domains/<name>         undefine a stopped domain; 204
 *   POST   /hypervisors/<host>/domains/<name>/start   204; 409 domain-active when it already runs
 *   POST   /hypervisors/<host>/domains/<name>/stop    forced off; 204; 409 domain-not-running
 *
 * Errors are `{ error: { code, message } }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sendEmpty, sendJson } from '../san/san-http.ts';
import type { World } from '../world.ts';
import { HypervisorApiError } from './hypervisor-error.ts';
import type { LabHypervisors } from './hypervisor-simulator.ts';

export interface HypervisorApi {
  readonly url: string;
  stop(): Promise<void>;
}

const MAX_XML_BYTES = 256 * 1024;

export async function startHypervisorApi(hypervisors: LabHypervisors, world: World, port: number): Promise<HypervisorApi> {
  const recorder = world.recorder;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://hypervisor.invalid');
    const seg = url.pathname.split('/').filter((s) => s !== '').map(decodeSegment);
    const [root, host, collection, name, action] = seg;
    if (root !== 'hypervisors') throw notFound(url.pathname);

    if (host === undefined) {
      return methods(req, {
        GET: () => {
          const capable = world.inventory.hosts.filter((h) => h.hypervisorCapable || h.role === 'hypervisor');
          sendJson(res, 200, { hypervisors: capable.map((h) => ({ host: h.id, running: hypervisors.running(h.id) })) });
        },
      });
    }
    if (seg.length === 2) {
      return methods(req, {
        GET: () => {
          if (!world.hasHost(host)) throw new HypervisorApiError(404, 'hypervisor-not-found', `no host "${host}" in the lab`);
          sendJson(res, 200, { host, running: hypervisors.running(host), image: world.host(host).image });
        },
      });
    }
    if (collection !== 'domains') throw notFound(url.pathname);
    if (name === undefined) {
      return methods(req, {
        GET: () => sendJson(res, 200, { domains: hypervisors.domains(host).map(({ name: n, state, phase }) => ({ name: n, state, phase })) }),
      });
    }
    if (seg.length === 4) {
      return methods(req, {
        GET: () => {
          recorder.record('vm', 'read', { host, countOnly: true });
          const { state, phase, problems, xml } = hypervisors.domain(host, name);
          sendJson(res, 200, { name, state, phase, problems, xml });
        },
        PUT: async () => {
          const outcome = hypervisors.define(host, name, await readText(req));
          sendJson(res, outcome === 'created' ? 201 : 200, { name, outcome });
        },
        DELETE: () => {
          hypervisors.undefine(host, name);
          sendEmpty(res, 204);
        },
      });
    }
    if (seg.length === 5 && (action === 'start' || action === 'stop')) {
      return methods(req, {
        POST: () => {
          if (action === 'start') hypervisors.start(host, name);
          else hypervisors.destroy(host, name);
          sendEmpty(res, 204);
        },
      });
    }
    throw notFound(url.pathname);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const apiError = err instanceof HypervisorApiError ? err : new HypervisorApiError(500, 'internal', err instanceof Error ? err.message : String(err));
      recorder.record('vm', 'rejected', { countOnly: true });
      if (res.headersSent) return void res.destroy();
      sendJson(res, apiError.status, { error: { code: apiError.code, message: apiError.message } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Handler = () => void | Promise<void>;

async function methods(req: IncomingMessage, handlers: Partial<Record<string, Handler>>): Promise<void> {
  const handler = handlers[req.method ?? 'GET'];
  if (!handler) {
    throw new HypervisorApiError(405, 'method-not-allowed', `${req.method} is not allowed here (allowed: ${Object.keys(handlers).join(', ')})`);
  }
  await handler();
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_XML_BYTES) throw new HypervisorApiError(413, 'body-too-large', `domain XML exceeds ${MAX_XML_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HypervisorApiError(400, 'invalid-path', `path segment "${segment}" is not valid percent-encoding`);
  }
}

function notFound(path: string): HypervisorApiError {
  return new HypervisorApiError(404, 'not-found', `no such resource: ${path}`);
}
