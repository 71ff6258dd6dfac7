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
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeServer, createApiServer, LabApiError, listen, methods, notFound, pathSegments, readText, sendEmpty, sendJson } from '../api-http.ts';
import type { World } from '../world.ts';
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
    const seg = pathSegments(url.pathname, ['hypervisors']);
    if (seg === undefined) throw notFound(url.pathname);
    const [host, collection, name, action] = seg;

    if (host === undefined) {
      return methods(req, {
        GET: () => {
          const capable = world.inventory.hosts.filter((h) => h.hypervisorCapable || h.role === 'hypervisor');
          sendJson(res, 200, { hypervisors: capable.map((h) => ({ host: h.id, running: hypervisors.running(h.id) })) });
        },
      });
    }
    if (seg.length === 1) {
      return methods(req, {
        GET: () => {
          if (!world.hasHost(host)) throw new LabApiError(404, 'hypervisor-not-found', `no host "${host}" in the lab`);
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
    if (seg.length === 3) {
      return methods(req, {
        GET: () => {
          recorder.record('vm', 'read', { host, countOnly: true });
          const { state, phase, problems, xml } = hypervisors.domain(host, name);
          sendJson(res, 200, { name, state, phase, problems, xml });
        },
        PUT: async () => {
          const outcome = hypervisors.define(host, name, await readText(req, MAX_XML_BYTES, 'domain XML'));
          sendJson(res, outcome === 'created' ? 201 : 200, { name, outcome });
        },
        DELETE: () => {
          hypervisors.undefine(host, name);
          sendEmpty(res, 204);
        },
      });
    }
    if (seg.length === 4 && (action === 'start' || action === 'stop')) {
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

  const server = createApiServer(handle, () => recorder.record('vm', 'rejected', { countOnly: true }));
  const bound = await listen(server, port);
  return { url: `http://127.0.0.1:${bound}`, stop: () => closeServer(server) };
}
