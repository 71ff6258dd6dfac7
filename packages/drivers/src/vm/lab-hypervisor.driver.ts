/**
 * VMs on one of the lab's simulated hypervisors, over its HTTP API (inventory
 * `hypervisor: { driver: 'lab', uri: 'http://127.0.0.1:<port>/hypervisors/<host>' }`).
 * The API takes the same domain XML libvirt does and answers reads with the
 * definition it holds, so the ensure semantics and the comparison of
 * definitions are those of the libvirt driver. A hypervisor host that is not
 * up (503) is a transient error, as an unreachable libvirt is.
 */
import type { Host, HypervisorEndpoint } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { DomainVmDriver, type DomainRead, type DomainState, type DomainVmDriverOptions } from './domain-vm-driver.ts';

/** Inventory `hypervisor.driver` values this driver speaks for. */
export const LAB_HYPERVISOR_DRIVERS: readonly string[] = ['lab'];

export interface LabHypervisorVmDriverOptions extends DomainVmDriverOptions {
  endpoint: HypervisorEndpoint;
  /** The hypervisor host's inventory id, for messages. */
  host?: string;
  /** Per HTTP request, within the caller's signal. Default 10 s. */
  requestTimeoutMs?: number;
}

interface Reply {
  status: number;
  body: unknown;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

const enc = encodeURIComponent;

export class LabHypervisorVmDriver extends DomainVmDriver {
  readonly name = 'lab';
  readonly #endpoint: HypervisorEndpoint;
  readonly #host: string | undefined;
  readonly #requestTimeoutMs: number;

  constructor(options: LabHypervisorVmDriverOptions) {
    super(options);
    this.#endpoint = options.endpoint;
    this.#host = options.host;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  static fromInventory(host: Host, options: Omit<LabHypervisorVmDriverOptions, 'endpoint' | 'host'> = {}): LabHypervisorVmDriver {
    const endpoint = host.hypervisor;
    if (endpoint === undefined) throw DriverError.permanent(`host ${host.id}: no hypervisor endpoint in the inventory (hypervisor: { driver, uri })`);
    if (!LAB_HYPERVISOR_DRIVERS.includes(endpoint.driver)) {
      throw DriverError.permanent(`host ${host.id}: hypervisor driver "${endpoint.driver}" is not one this driver speaks (${LAB_HYPERVISOR_DRIVERS.join(', ')})`);
    }
    return new LabHypervisorVmDriver({ ...options, endpoint, host: host.id });
  }

  validate(): Promise<void> {
    try {
      this.#base();
      if (this.#endpoint.credentialsRef !== undefined) {
        throw DriverError.permanent(`${this.where}: the lab's hypervisor API takes no credentials; remove credentialsRef ${this.#endpoint.credentialsRef}`);
      }
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  close(): Promise<void> {
    // Plain fetch: no session to end.
    return Promise.resolve();
  }

  protected get where(): string {
    const id = this.#host ?? 'lab';
    try {
      return `hypervisor ${id} (lab ${this.#base()})`;
    } catch {
      return `hypervisor ${id} (lab)`;
    }
  }

  protected async readDomain(name: string, signal: AbortSignal): Promise<DomainRead | undefined> {
    const { status, body } = await this.#call('GET', `/domains/${enc(name)}`, name, signal, { allow: [404] });
    if (status === 404) return this.#absent(name, body);
    const b = body as { state?: unknown; xml?: unknown } | undefined;
    if (typeof b?.xml !== 'string') throw this.#malformed(name, 'GET', 'no "xml" string');
    return { state: this.#stateOf(name, b.state), xml: b.xml };
  }

  protected async readState(name: string, signal: AbortSignal): Promise<DomainState | undefined> {
    return (await this.readDomain(name, signal))?.state;
  }

  protected async defineDomain(name: string, xml: string, signal: AbortSignal): Promise<void> {
    await this.#call('PUT', `/domains/${enc(name)}`, name, signal, { xml });
  }

  protected async startDomain(name: string, signal: AbortSignal): Promise<void> {
    await this.#call('POST', `/domains/${enc(name)}/start`, name, signal, { benign: ['domain-active'] });
  }

  protected resumeDomain(name: string, signal: AbortSignal): Promise<void> {
    // The lab never pauses a domain; starting is the nearest thing.
    return this.startDomain(name, signal);
  }

  protected async destroyDomain(name: string, signal: AbortSignal): Promise<void> {
    await this.#call('POST', `/domains/${enc(name)}/stop`, name, signal, { benign: ['domain-not-running', 'domain-not-found'] });
  }

  protected async undefineDomain(name: string, signal: AbortSignal): Promise<void> {
    await this.#call('DELETE', `/domains/${enc(name)}`, name, signal, { benign: ['domain-not-found'] });
  }

  /** A 404 for the domain means absent; for the hypervisor itself it is a configuration error. */
  #absent(name: string, body: unknown): undefined {
    const { code, message } = errorOf(body);
    if (code === 'domain-not-found') return undefined;
    throw DriverError.permanent(`vm ${name} on ${this.where}: ${message ?? 'not found'}; is the inventory's hypervisor.uri right?`, undefined, {
      httpStatus: 404,
      ...(code !== undefined && { messageIds: [code] }),
    });
  }

  #stateOf(name: string, state: unknown): DomainState {
    if (state === 'running' || state === 'stopped') return state;
    throw this.#malformed(name, 'GET', `state ${JSON.stringify(state)}`);
  }

  async #call(
    method: string,
    path: string,
    name: string,
    signal: AbortSignal,
    options: { xml?: string; allow?: readonly number[]; benign?: readonly string[] } = {},
  ): Promise<Reply> {
    const what = `vm ${name} on ${this.where}: ${method} ${path}`;
    const timeout = AbortSignal.timeout(this.#requestTimeoutMs);
    let status: number;
    let text: string;
    try {
      const res = await fetch(`${this.#base()}${path}`, {
        method,
        headers: { accept: 'application/json', ...(options.xml !== undefined && { 'content-type': 'application/xml' }) },
        redirect: 'manual',
        signal: AbortSignal.any([signal, timeout]),
        ...(options.xml !== undefined && { body: options.xml }),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      if (signal.aborted) throw DriverError.timeout(`${what}: the caller's deadline passed`, err);
      if (timeout.aborted) throw DriverError.timeout(`${what}: no answer within ${this.#requestTimeoutMs} ms`, err);
      throw DriverError.transient(`${what}: ${networkReason(err)}`, err);
    }
    const body = parseBody(text);
    if ((status >= 200 && status < 300) || options.allow?.includes(status)) return { status, body };
    const { code, message } = errorOf(body);
    // Another caller got there first: the read-back decides.
    if (code !== undefined && options.benign?.includes(code)) return { status, body };
    const said = message ?? `HTTP ${status}`;
    const details = { httpStatus: status, ...(code !== undefined && { messageIds: [code] }) };
    if (status === 503 || status === 429 || status >= 500) throw DriverError.transient(`${what}: ${status} ${said}`, undefined, details);
    if (code === 'domain-not-found') throw DriverError.permanent(`${what}: not defined; define it first`, undefined, details);
    throw DriverError.permanent(`${what}: ${status} ${said}`, undefined, details);
  }

  #base(): string {
    const id = this.#host ?? 'lab';
    const { uri } = this.#endpoint;
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw DriverError.permanent(`hypervisor ${id}: uri "${uri}" is not a URL (expected http://127.0.0.1:<port>/hypervisors/<host>)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw DriverError.permanent(`hypervisor ${id}: uri must be http(s)://…, not ${url.protocol}`);
    if (url.username !== '' || url.password !== '') throw DriverError.permanent(`hypervisor ${id}: uri carries credentials; the lab takes none`);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  }

  #malformed(name: string, method: string, why: string): DriverError {
    return DriverError.permanent(`vm ${name} on ${this.where}: ${method}: unexpected answer (${why})`);
  }
}

function parseBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function errorOf(body: unknown): { code: string | undefined; message: string | undefined } {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (typeof error === 'object' && error !== null) {
    return { code: typeof error.code === 'string' ? error.code : undefined, message: typeof error.message === 'string' ? error.message : undefined };
  }
  const snippet = typeof body === 'string' ? body.trim().slice(0, 200) : '';
  return { code: undefined, message: snippet === '' ? undefined : snippet };
}

function networkReason(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED); is the lab running?';
  if (code !== undefined) return `unreachable (${code})`;
  return err instanceof Error ? err.message : String(err);
}
