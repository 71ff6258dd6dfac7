/**
 * The running lab's control surface on 127.0.0.1: fault injection, counters
 * and the event log, for the CLI (`firebreak burn rack r2`) and for tests that
 * drive the lab from another process.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { describeIssues, Id } from '@firebreak/shared';
import type { Faults } from './faults.ts';
import { labSources, type LabRecorder } from './recorder.ts';
import type { World } from './world.ts';

export const FaultRequest = z.discriminatedUnion('fault', [
  z.object({ fault: z.literal('burn-rack'), rack: Id }),
  z.object({ fault: z.literal('kill-host'), host: Id }),
  z.object({ fault: z.literal('isolate-host'), host: Id, isolated: z.boolean().default(true) }),
  z.object({ fault: z.literal('bmc-unreachable'), host: Id }),
  z.object({ fault: z.literal('bmc-slow'), host: Id, latencyMs: z.number().int().positive() }),
  z.object({ fault: z.literal('bmc-fail'), host: Id, requests: z.number().int().positive().default(1) }),
  z.object({ fault: z.literal('bmc-ok'), host: Id }),
  z.object({ fault: z.literal('switch-slow'), switch: Id, latencyMs: z.number().int().positive(), jitterMs: z.number().int().nonnegative().default(0) }),
  z.object({ fault: z.literal('switch-ok'), switch: Id }),
  z.object({ fault: z.literal('health'), host: Id, health: z.enum(['OK', 'Warning', 'Critical']) }),
  z.object({ fault: z.literal('flap-host'), host: Id, periodMs: z.number().int().positive().default(2_000), cycles: z.number().int().positive().default(3) }),
  z.object({ fault: z.literal('restore-host'), host: Id }),
]);
export type FaultRequest = z.input<typeof FaultRequest>;

export const LabSettings = z.object({
  bootServiceUrl: z.url().optional(),
  trapReceivers: z.array(z.string().regex(/^[\w.-]+:\d+$/, 'expected host:port')).optional(),
});
export type LabSettings = z.infer<typeof LabSettings>;

export interface ControlApiDeps {
  world: World;
  recorder: LabRecorder;
  faults: Faults;
  /** What GET /v1/lab answers: endpoints, inventory path and the like. */
  describe(): unknown;
  configure(settings: LabSettings): void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function applyFault(deps: ControlApiDeps, req: z.output<typeof FaultRequest>): unknown {
  const { faults, world } = deps;
  if ('host' in req && !world.hasHost(req.host)) throw new HttpError(404, `no host "${req.host}" in the lab`);
  if ('switch' in req && !world.inventory.switches.some((s) => s.id === req.switch)) throw new HttpError(404, `no switch "${req.switch}" in the lab`);
  switch (req.fault) {
    case 'burn-rack':
      if (!world.inventory.racks.some((r) => r.id === req.rack)) throw new HttpError(404, `no rack "${req.rack}" in the lab`);
      return { hosts: faults.burnRack(req.rack) };
    case 'kill-host':
      return faults.killHost(req.host);
    case 'isolate-host':
      return faults.isolateHost(req.host, req.isolated);
    case 'bmc-unreachable':
      return faults.setBmc(req.host, { mode: 'unreachable' });
    case 'bmc-slow':
      return faults.setBmc(req.host, { mode: 'slow', latencyMs: req.latencyMs });
    case 'bmc-fail':
      return faults.setBmc(req.host, { mode: 'fail', requests: req.requests });
    case 'bmc-ok':
      return faults.setBmc(req.host, { mode: 'ok' });
    case 'switch-slow':
      return faults.setSwitch(req.switch, { mode: 'slow', latencyMs: req.latencyMs, jitterMs: req.jitterMs });
    case 'switch-ok':
      return faults.setSwitch(req.switch, { mode: 'ok' });
    case 'health':
      return faults.setHealth(req.host, req.health);
    case 'flap-host':
      return faults.flapHost(req.host, { periodMs: req.periodMs, cycles: req.cycles });
    case 'restore-host':
      return faults.restoreHost(req.host);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 1_000_000) throw new HttpError(413, 'request body over 1 MB');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new HttpError(400, describeIssues(result.error));
  return result.data;
}

async function route(deps: ControlApiDeps, req: IncomingMessage): Promise<unknown> {
  const url = new URL(req.url ?? '/', 'http://lab');
  const key = `${req.method} ${url.pathname}`;
  if (key === 'GET /v1/lab') return deps.describe();
  if (key === 'GET /v1/counters') return deps.recorder.counters();
  if (key === 'GET /v1/events') {
    const q = url.searchParams;
    const source = q.get('source');
    if (source !== null && !(labSources as readonly string[]).includes(source)) {
      throw new HttpError(400, `source must be one of ${labSources.join(', ')}`);
    }
    const sinceSeq = q.get('sinceSeq');
    return deps.recorder.events({
      ...(source !== null && { source: source as (typeof labSources)[number] }),
      ...(q.get('action') !== null && { action: q.get('action') as string }),
      ...(q.get('host') !== null && { host: q.get('host') as string }),
      ...(sinceSeq !== null && { sinceSeq: Number(sinceSeq) }),
    });
  }
  const hostMatch = /^GET \/v1\/hosts\/([^/]+)$/.exec(key);
  if (hostMatch?.[1]) {
    const id = decodeURIComponent(hostMatch[1]);
    if (!deps.world.hasHost(id)) throw new HttpError(404, `no host "${id}" in the lab`);
    const { host, bmc, ...runtime } = deps.world.host(id);
    return { id, rack: host.rack, role: host.role, bmc: { ...bmc }, ...runtime };
  }
  if (key === 'POST /v1/faults') return (await Promise.resolve(applyFault(deps, parse(FaultRequest, await readJson(req))))) ?? { ok: true };
  if (key === 'PUT /v1/settings') {
    deps.configure(parse(LabSettings, await readJson(req)));
    return { ok: true };
  }
  throw new HttpError(404, `no route ${key}`);
}

export interface ControlApi {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startControlApi(deps: ControlApiDeps, port = 0): Promise<ControlApi> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    route(deps, req).then(
      (body) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body ?? { ok: true }));
      },
      (err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
