/**
 * LUN masking, fencing and drill clones on one storage array through its REST
 * API (`/api/v1`, the lab's SAN, inventory `driver: 'lab-san'`). Every change
 * is preceded by a read, so asking again sends nothing, and followed by
 * reading visibility back: an array accepting a mask change is not yet a host
 * seeing (or no longer seeing) the LUN. A mask changes one initiator at a
 * time (PUT or DELETE of one member), never as a list written whole, so two
 * managers' grants cannot undo each other the way switch PortList SETs can;
 * the executor still holds the array's device lock around each change.
 */
import { Initiator, resolveCredentials, type Credentials, type StorageArray } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { httpBase, httpRequest, parseBody, statusError } from '../http-json.ts';
import { settle, type ReadBackCheck } from '../read-back.ts';
import type { StepResult, StorageCapability, StorageDriver } from '../driver.ts';

/** Inventory `driver` values this driver speaks for. */
export const SAN_REST_DRIVERS: readonly string[] = ['lab-san'];

export interface SanRestStorageDriverOptions {
  array: StorageArray;
  /** `resolveCredentials(array.credentialsRef)`; none when the array takes anonymous requests. */
  credentials?: Credentials;
  /** Between visibility reads while a change lands. Default 200 ms. */
  pollIntervalMs?: number;
  /** Longest wait for a change to show, when the signal allows that long. Default 30 s. */
  settleWaitMs?: number;
  /** Per HTTP request, within the caller's signal. Default 10 s. */
  requestTimeoutMs?: number;
}

/** A LUN as the array lists it. */
export interface SanLun {
  id: string;
  array: string;
  sizeGiB: number;
  /** The LUN this one was cloned from; undefined for an original. */
  cloneOf: string | undefined;
  initiators: string[];
}

interface Reply {
  status: number;
  body: unknown;
}

const DEFAULT_POLL_MS = 200;
const DEFAULT_SETTLE_MS = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const API = '/api/v1';

const enc = encodeURIComponent;

export class SanRestStorageDriver implements StorageDriver {
  readonly name = 'lab-san';
  readonly capabilities: readonly StorageCapability[] = ['grant', 'revoke', 'list', 'revoke-all', 'clone', 'visibility'];
  readonly #array: StorageArray;
  readonly #credentials: Credentials | undefined;
  readonly #pollMs: number;
  readonly #settleMs: number;
  readonly #requestTimeoutMs: number;

  constructor(options: SanRestStorageDriverOptions) {
    this.#array = options.array;
    this.#credentials = options.credentials;
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.#settleMs = options.settleWaitMs ?? DEFAULT_SETTLE_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** Resolves the array's `credentialsRef` (if any) and builds the driver. */
  static async fromInventory(
    array: StorageArray,
    options: Omit<SanRestStorageDriverOptions, 'array' | 'credentials'> & { env?: NodeJS.ProcessEnv } = {},
  ): Promise<SanRestStorageDriver> {
    if (!SAN_REST_DRIVERS.includes(array.driver)) {
      throw DriverError.permanent(`san ${array.id}: driver "${array.driver}" is not one this driver speaks (${SAN_REST_DRIVERS.join(', ')})`);
    }
    const { env, ...rest } = options;
    const credentials = array.credentialsRef === undefined ? undefined : await resolveCredentials(array.credentialsRef, env);
    return new SanRestStorageDriver({ ...rest, array, ...(credentials !== undefined && { credentials }) });
  }

  async validate(): Promise<void> {
    this.#base();
    this.#authorization();
  }

  close(): Promise<void> {
    // Plain fetch: no session to end; the global agent owns the sockets.
    return Promise.resolve();
  }

  async grant(lun: string, initiator: string, signal: AbortSignal): Promise<StepResult> {
    const id = parseInitiator(initiator);
    const masked = includes(await this.#initiatorsOf(lun, signal), id);
    if (!masked) await this.#call('PUT', `/luns/${enc(lun)}/initiators/${enc(id)}`, signal);
    const how = masked ? 'already granted' : 'granted';
    return this.#settle(signal, `${lun} visible to ${id}`, how, async () => {
      if (await this.canSee(id, lun, signal)) return { observed: { visible: true } };
      // Masked but invisible: zoning keeps the initiator's fabric from the array; another PUT would not help.
      return `${lun} masked to ${id} but not visible yet (zoning?)`;
    });
  }

  async revoke(lun: string, initiator: string, signal: AbortSignal): Promise<StepResult> {
    const id = parseInitiator(initiator);
    const current = await this.#initiatorsOf(lun, signal, { absentOk: true });
    // No such LUN (a drill stopped before its clone was made): nobody can see it, which is what a revoke ensures.
    if (current === undefined) return { done: true, observed: { visible: false }, message: `no LUN "${lun}" on array ${this.#array.id}; nothing to revoke` };
    const masked = includes(current, id);
    if (masked) await this.#call('DELETE', `/luns/${enc(lun)}/initiators/${enc(id)}`, signal);
    const how = masked ? 'revoked' : 'already revoked';
    return this.#settle(signal, `${lun} hidden from ${id}`, how, async () =>
      (await this.canSee(id, lun, signal)) ? `${lun} still visible to ${id}` : { observed: { visible: false } },
    );
  }

  async revokeAll(initiator: string, signal: AbortSignal): Promise<StepResult> {
    const id = parseInitiator(initiator);
    const masked = await this.#maskedTo(id, signal);
    if (masked.length > 0) await this.#call('DELETE', `/initiators/${enc(id)}`, signal);
    const how = masked.length > 0 ? `revoked ${masked.join(', ')}` : 'already fenced';
    return this.#settle(signal, `${id} fenced from every LUN on ${this.#array.id}`, how, async () => {
      const still = await this.#maskedTo(id, signal);
      for (const lun of masked) if (!still.includes(lun) && (await this.canSee(id, lun, signal))) still.push(lun);
      return still.length === 0 ? { observed: { luns: [] } } : `${id} still sees ${still.join(', ')}`;
    });
  }

  async list(initiator: string | undefined, signal: AbortSignal): Promise<string[]> {
    if (initiator === undefined) return (await this.luns(signal)).map((l) => l.id);
    return this.#maskedTo(parseInitiator(initiator), signal);
  }

  /** The LUNs masked to one initiator: one small answer, not the array's whole LUN list (thousands on a big array). */
  async #maskedTo(initiator: string, signal: AbortSignal): Promise<string[]> {
    const path = `/initiators/${enc(initiator)}`;
    const { body } = await this.#call('GET', path, signal);
    const luns = (body as { luns?: unknown } | undefined)?.luns;
    if (!isStrings(luns)) throw this.#malformed(`GET ${path}`, 'no "luns" list');
    return luns;
  }

  /** Every LUN of the array with its masking. */
  async luns(signal: AbortSignal): Promise<SanLun[]> {
    const { body } = await this.#call('GET', '/luns', signal);
    const luns = (body as { luns?: unknown } | undefined)?.luns;
    if (!Array.isArray(luns)) throw this.#malformed('GET /luns', 'no "luns" array');
    return luns.map((l: unknown) => lunOf(l) ?? throwError(this.#malformed('GET /luns', 'a LUN without id, array or initiators')));
  }

  async clone(lun: string, cloneId: string, signal: AbortSignal): Promise<StepResult> {
    const existing = await this.#lun(cloneId, signal);
    if (existing !== undefined && existing.cloneOf !== lun) {
      const what = existing.cloneOf === undefined ? 'an original LUN' : `a clone of ${existing.cloneOf}`;
      throw DriverError.permanent(`san ${this.#array.id}: "${cloneId}" already exists as ${what}, not a clone of ${lun}`);
    }
    // 409: another executor created it between our read and the POST; the read-back decides.
    if (existing === undefined) await this.#call('POST', `/luns/${enc(lun)}/clones`, signal, { body: { cloneId }, allow: [409] });
    const how = existing === undefined ? 'created' : 'already there';
    return this.#settle(signal, `${cloneId} is a clone of ${lun}`, how, async () => {
      const now = await this.#lun(cloneId, signal);
      if (now === undefined) return `${cloneId} not listed yet`;
      if (now.cloneOf !== lun) throw DriverError.permanent(`san ${this.#array.id}: "${cloneId}" appeared as a clone of ${now.cloneOf ?? 'nothing'}, not ${lun}`);
      return undefined;
    });
  }

  async deleteClone(cloneId: string, signal: AbortSignal): Promise<StepResult> {
    const existing = await this.#lun(cloneId, signal);
    if (existing === undefined) return { done: true, message: `no LUN "${cloneId}" on array ${this.#array.id}; nothing to delete` };
    // Checked here, not left to the array: a mistyped id must never take a production LUN with it.
    if (existing.cloneOf === undefined) throw DriverError.permanent(`san ${this.#array.id}: "${cloneId}" is not a clone; refusing to delete it`);
    await this.#call('DELETE', `/luns/${enc(cloneId)}`, signal, { allow: [404] });
    return this.#settle(signal, `clone ${cloneId} gone`, 'deleted', async () =>
      (await this.#lun(cloneId, signal)) === undefined ? undefined : `${cloneId} still listed`,
    );
  }

  async canSee(initiator: string, lun: string, signal: AbortSignal): Promise<boolean> {
    const id = parseInitiator(initiator);
    const { body } = await this.#call('GET', `/visibility?initiator=${enc(id)}&lun=${enc(lun)}`, signal);
    const visible = (body as { visible?: unknown } | undefined)?.visible;
    if (typeof visible !== 'boolean') throw this.#malformed('GET /visibility', 'no boolean "visible"');
    return visible;
  }

  async #initiatorsOf(lun: string, signal: AbortSignal): Promise<string[]>;
  async #initiatorsOf(lun: string, signal: AbortSignal, options: { absentOk: true }): Promise<string[] | undefined>;
  async #initiatorsOf(lun: string, signal: AbortSignal, options: { absentOk?: boolean } = {}): Promise<string[] | undefined> {
    const path = `/luns/${enc(lun)}/initiators`;
    const { status, body } = await this.#call('GET', path, signal, { allow: options.absentOk ? [404] : [] });
    if (status === 404) return undefined;
    const initiators = (body as { initiators?: unknown } | undefined)?.initiators;
    if (!isStrings(initiators)) throw this.#malformed(`GET ${path}`, 'no "initiators" list');
    return initiators;
  }

  /** The LUN, or undefined when the array has none by that id. */
  async #lun(id: string, signal: AbortSignal): Promise<SanLun | undefined> {
    const { status, body } = await this.#call('GET', `/luns/${enc(id)}`, signal, { allow: [404] });
    if (status === 404) return undefined;
    return lunOf(body) ?? throwError(this.#malformed(`GET /luns/${id}`, 'a LUN without id, array or initiators'));
  }

  #settle(signal: AbortSignal, goal: string, how: string, pending: () => Promise<ReadBackCheck>): Promise<StepResult> {
    return settle(goal, how, pending, { pollMs: this.#pollMs, waitMs: this.#settleMs, signal });
  }

  /** One request; statuses in `allow` come back instead of throwing. */
  async #call(method: string, path: string, signal: AbortSignal, options: { body?: unknown; allow?: readonly number[] } = {}): Promise<Reply> {
    const what = `san ${this.#array.id} ${method} ${path.split('?')[0] ?? path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    const authorization = this.#authorization();
    if (authorization !== undefined) headers.authorization = authorization;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const reply = await httpRequest({
      method,
      url: `${this.#base()}${API}${path}`,
      headers,
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
      what,
      timeoutMs: this.#requestTimeoutMs,
      signal,
      refusedHint: 'is the array up?',
    });
    const { status } = reply;
    if (reply.ok || options.allow?.includes(status)) {
      const body = parseBody(reply.text);
      if (body !== undefined && typeof body !== 'object') {
        throw DriverError.permanent(`${what}: answered ${status} with a body that is not a JSON object; is ${this.#array.address} a SAN API?`);
      }
      return { status, body };
    }
    if (status === 401 || status === 403) {
      const ref = this.#array.credentialsRef;
      throw statusError(what, reply, ref === undefined ? 'no credentials configured' : `credentials ${ref} refused`);
    }
    throw statusError(what, reply);
  }

  #base(): string {
    return httpBase(this.#array.address, `san ${this.#array.id}: address`, 'http(s)://host:port', 'use credentialsRef');
  }

  #authorization(): string | undefined {
    const ref = this.#array.credentialsRef;
    if (ref === undefined) return undefined;
    const { username, password } = this.#credentials ?? {};
    if (username === undefined || password === undefined) {
      throw DriverError.permanent(`san ${this.#array.id}: credentials ${ref} need a username and a password`);
    }
    return `Basic ${Buffer.from(`${username}:${password.reveal()}`).toString('base64')}`;
  }

  #malformed(request: string, why: string): DriverError {
    return DriverError.permanent(`san ${this.#array.id} ${request}: unexpected answer (${why})`);
  }
}

function parseInitiator(raw: string): string {
  const result = Initiator.safeParse(raw);
  if (result.success) return result.data;
  throw DriverError.permanent(`initiator "${raw}": ${result.error.issues[0]?.message ?? 'not a WWPN or an iSCSI IQN'}`);
}

/** Arrays may fold IQNs to lower case; initiators compare without case. */
function includes(list: readonly string[], initiator: string): boolean {
  const wanted = initiator.toLowerCase();
  return list.some((i) => i.toLowerCase() === wanted);
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function lunOf(value: unknown): SanLun | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || typeof v.array !== 'string' || !isStrings(v.initiators)) return undefined;
  return {
    id: v.id,
    array: v.array,
    sizeGiB: typeof v.sizeGiB === 'number' ? v.sizeGiB : 0,
    cloneOf: typeof v.cloneOf === 'string' ? v.cloneOf : undefined,
    initiators: v.initiators,
  };
}

function throwError(err: Error): never {
  throw err;
}
