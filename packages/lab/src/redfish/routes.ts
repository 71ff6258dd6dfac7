/**
 * The Redfish resources one simulated BMC endpoint serves and what each
 * method does to the world. Authentication, faults and framing are handled
 * before a handler runs (bmc-simulator.ts); handlers see an authenticated
 * account and, for per-system resources, the system.
 */
import type { IncomingMessage } from 'node:http';
import type { RecordOptions } from '../recorder.ts';
import type { BootEnabled, BootTarget, World } from '../world.ts';
import type { DelayedPower } from './delayed-power.ts';
import type { EndpointModel, SystemEntry } from './endpoints.ts';
import { redfishErrors } from './redfish-error.ts';
import { readJsonBody } from './request-body.ts';
import * as r from './resources.ts';
import { sameAccount, type Account } from './sessions.ts';

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Call {
  world: World;
  power: DelayedPower;
  ep: EndpointModel;
  req: IncomingMessage;
  path: string;
  /** Captured groups of the route's pattern. */
  params: readonly string[];
  /** Undefined only on public methods. */
  account: Account | undefined;
  /** Set on per-system routes. */
  system: SystemEntry | undefined;
  record(action: string, options?: RecordOptions): void;
}

type Handler = (call: Call) => Reply | Promise<Reply>;

export interface Route {
  pattern: RegExp;
  methods: Readonly<Record<string, Handler>>;
  /** Methods served without authentication. */
  public?: readonly string[];
  /** 404 on endpoints without a SessionService. */
  sessionService?: boolean;
  /** The first group is a system (or its manager or chassis) Id. */
  perSystem?: boolean;
}

const ok = (body: unknown, headers?: Record<string, string>): Reply => ({ status: 200, body, ...(headers && { headers }) });

function need<T>(value: T | undefined, call: Call): T {
  if (value === undefined) throw redfishErrors.notFound(call.path);
  return value;
}

/** Systems the caller's account may manage. */
function visible(call: Call): SystemEntry[] {
  return [...call.ep.systems.values()].filter((s) => sameAccount(s.account, call.account));
}

function login(call: Call, body: Record<string, unknown> | undefined): Reply {
  const sessions = need(call.ep.sessions, call);
  const user = body?.['UserName'];
  const password = body?.['Password'];
  if (typeof user !== 'string') throw redfishErrors.propertyMissing('UserName');
  if (typeof password !== 'string') throw redfishErrors.propertyMissing('Password');
  const account = call.ep.accounts.find((a) => a.username === user && a.password === password);
  if (account === undefined) throw redfishErrors.unauthorized(r.SESSIONS);
  const s = sessions.create(account);
  call.record('login', { detail: { endpoint: call.ep.address, session: s.id } });
  return { status: 201, body: r.session(s.id, account.username), headers: { 'x-auth-token': s.token, location: `${r.SESSIONS}/${s.id}` } };
}

function systemReply(call: Call, system: SystemEntry): Reply {
  const resource = r.system(system.id, call.world.host(system.hostId), call.power.pendingFor(system.hostId));
  return ok(resource, { etag: String(resource['@odata.etag']) });
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], property: string): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw redfishErrors.propertyValueNotInList(String(value), property);
  return value as T;
}

/** PATCH of a ComputerSystem: only the Boot override is writable, all or nothing. */
async function patchSystem(call: Call): Promise<Reply> {
  const system = need(call.system, call);
  const rt = call.world.host(system.hostId);
  const current = r.system(system.id, rt, call.power.pendingFor(system.hostId));
  const ifMatch = call.req.headers['if-match'];
  if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== current['@odata.etag']) throw redfishErrors.preconditionFailed();
  const body = (await readJsonBody(call.req)) ?? {};
  for (const key of Object.keys(body)) {
    if (key !== 'Boot') throw key in current ? redfishErrors.propertyNotWritable(key) : redfishErrors.propertyUnknown(key);
  }
  const boot = body['Boot'];
  if (typeof boot !== 'object' || boot === null) throw redfishErrors.propertyMissing('Boot');
  const b = boot as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!['BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode'].includes(key)) throw redfishErrors.propertyUnknown(`Boot/${key}`);
  }
  const target = oneOf<BootTarget>(b['BootSourceOverrideTarget'], r.bootTargets, 'Boot/BootSourceOverrideTarget');
  const enabled = oneOf<BootEnabled>(b['BootSourceOverrideEnabled'], r.bootEnabledValues, 'Boot/BootSourceOverrideEnabled');
  oneOf(b['BootSourceOverrideMode'], ['UEFI'], 'Boot/BootSourceOverrideMode');
  if (target !== undefined) rt.bootTarget = target;
  // A target without Enabled means "once", as BMCs do; target None turns the override off.
  if (enabled !== undefined) rt.bootEnabled = enabled;
  else if (target === 'None') rt.bootEnabled = 'Disabled';
  else if (target !== undefined && rt.bootEnabled === 'Disabled') rt.bootEnabled = 'Once';
  call.record(rt.bootTarget === 'Pxe' && rt.bootEnabled !== 'Disabled' ? 'set-boot-pxe' : 'set-boot', {
    host: system.hostId,
    detail: { target: rt.bootTarget, enabled: rt.bootEnabled },
  });
  return systemReply(call, system);
}

const resetActions: Record<r.ResetType, string> = {
  On: 'power-on',
  ForceOff: 'power-off',
  GracefulShutdown: 'graceful-shutdown',
  ForceRestart: 'force-restart',
};

async function reset(call: Call): Promise<Reply> {
  const system = need(call.system, call);
  const action = 'ComputerSystem.Reset';
  const type = (await readJsonBody(call.req))?.['ResetType'];
  if (type === undefined) throw redfishErrors.actionParameterMissing(action, 'ResetType');
  if (typeof type !== 'string' || !(r.resetTypes as readonly string[]).includes(type)) {
    throw redfishErrors.actionParameterValueNotInList(String(type), 'ResetType', action);
  }
  call.power.request(system.hostId, type as r.ResetType);
  call.record(resetActions[type as r.ResetType], { host: system.hostId, detail: { resetType: type } });
  return { status: 204 };
}

const routes: readonly Route[] = [
  {
    pattern: /^\/redfish$/,
    public: ['GET'],
    methods: {
      GET: (call) => {
        call.record('get-versions', { countOnly: true });
        return ok({ v1: `${r.ROOT}/` });
      },
    },
  },
  {
    pattern: /^\/redfish\/v1$/,
    public: ['GET'],
    methods: {
      GET: (call) => {
        call.record('get-service-root', { countOnly: true });
        return ok(r.serviceRoot(call.ep.sessions !== undefined, call.ep.uuid));
      },
    },
  },
  {
    pattern: /^\/redfish\/v1\/SessionService$/,
    sessionService: true,
    methods: {
      GET: (call) => {
        call.record('get-session-service', { countOnly: true });
        return ok(r.sessionService(Math.round((call.ep.sessions?.timeoutMs ?? 0) / 1000)));
      },
    },
  },
  {
    pattern: /^\/redfish\/v1\/SessionService\/Sessions$/,
    sessionService: true,
    public: ['POST'],
    methods: {
      GET: (call) => {
        call.record('list-sessions', { countOnly: true });
        return ok(r.sessionsCollection(need(call.ep.sessions, call).ids()));
      },
      POST: async (call) => login(call, await readJsonBody(call.req)),
    },
  },
  {
    pattern: /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)$/,
    sessionService: true,
    methods: {
      GET: (call) => {
        const s = need(call.ep.sessions?.get(call.params[0] ?? ''), call);
        call.record('get-session', { countOnly: true });
        return ok(r.session(s.id, s.account.username));
      },
      DELETE: (call) => {
        if (call.ep.sessions?.delete(call.params[0] ?? '') !== true) throw redfishErrors.notFound(call.path);
        call.record('logout', { detail: { endpoint: call.ep.address, session: call.params[0] } });
        return { status: 204 };
      },
    },
  },
  {
    pattern: /^\/redfish\/v1\/Systems$/,
    methods: {
      GET: (call) => {
        call.record('list-systems', { countOnly: true });
        return ok(r.systemsCollection(visible(call).map((s) => s.id)));
      },
    },
  },
  {
    pattern: /^\/redfish\/v1\/Systems\/([^/]+)$/,
    perSystem: true,
    methods: {
      GET: (call) => {
        const system = need(call.system, call);
        call.record('get-system', { host: system.hostId, countOnly: true });
        return systemReply(call, system);
      },
      PATCH: patchSystem,
    },
  },
  { pattern: /^\/redfish\/v1\/Systems\/([^/]+)\/Actions\/ComputerSystem\.Reset$/, perSystem: true, methods: { POST: reset } },
  {
    pattern: /^\/redfish\/v1\/Managers$/,
    methods: {
      GET: (call) => {
        call.record('list-managers', { countOnly: true });
        return ok(r.managersCollection(visible(call).map((s) => s.id)));
      },
    },
  },
  {
    pattern: /^\/redfish\/v1\/Managers\/([^/]+)$/,
    perSystem: true,
    methods: {
      GET: (call) => {
        const system = need(call.system, call);
        call.record('get-manager', { host: system.hostId, countOnly: true });
        return ok(r.manager(system.id, call.world.host(system.hostId)));
      },
    },
  },
  {
    pattern: /^\/redfish\/v1\/Chassis$/,
    methods: {
      GET: (call) => {
        call.record('list-chassis', { countOnly: true });
        return ok(r.chassisCollection(visible(call).map((s) => s.id)));
      },
    },
  },
  {
    pattern: /^\/redfish\/v1\/Chassis\/([^/]+)$/,
    perSystem: true,
    methods: {
      GET: (call) => {
        const system = need(call.system, call);
        call.record('get-chassis', { host: system.hostId, countOnly: true });
        return ok(r.chassis(system.id, call.world.host(system.hostId)));
      },
    },
  },
];

export function matchRoute(path: string): { route: Route; params: string[] } | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}

/** The per-system Id a path addresses, before authentication (faults are per system). */
export function systemIdOf(path: string): string | undefined {
  const m = /^\/redfish\/v1\/(?:Systems|Managers|Chassis)\/([^/]+)/.exec(path);
  return m?.[1] === undefined ? undefined : decodeURIComponent(m[1]);
}
