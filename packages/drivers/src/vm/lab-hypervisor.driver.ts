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
import { apiError, httpBase, httpRequest, isTransientStatus, parseBody, statusError, type HttpReply } from '../http-json.ts';
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

  async validate(): Promise<void> {
    this.#base();
    if (this.#endpoint.credentialsRef !== undefined) {
      throw DriverError.permanent(`${this.where}: the lab's hypervisor API takes no credentials; remove credentialsRef ${this.#endpoint.credentialsRef}`);
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
    const reply = await this.#call('GET', `/domains/${enc(name)}`, name, signal, { allow: [404] });
    if (reply.status === 404) return this.#absent(name, reply.text);
    const b = parseBody(reply.text) as { state?: unknown; xml?: unknown } | undefined;
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
  #absent(name: string, text: string): undefined {
    const { code, message } = apiError(text);
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
  ): Promise<HttpReply> {
    const what = `vm ${name} on ${this.where}: ${method} ${path}`;
    const reply = await httpRequest({
      method,
      url: `${this.#base()}${path}`,
      headers: { accept: 'application/json', ...(options.xml !== undefined && { 'content-type': 'application/xml' }) },
      ...(options.xml !== undefined && { body: options.xml }),
      what,
      timeoutMs: this.#requestTimeoutMs,
      signal,
      refusedHint: 'is the lab running?',
    });
    if (reply.ok || options.allow?.includes(reply.status)) return reply;
    const { code } = apiError(reply.text);
    // Another caller got there first: the read-back decides.
    if (code !== undefined && options.benign?.includes(code)) return reply;
    if (code === 'domain-not-found' && !isTransientStatus(reply.status)) throw DriverError.permanent(`${what}: not defined; define it first`, undefined, { httpStatus: reply.status, messageIds: [code] });
    throw statusError(what, reply);
  }

  #base(): string {
    const { uri } = this.#endpoint;
    return httpBase(uri, `hypervisor ${this.#host ?? 'lab'}: uri`, 'http(s)://127.0.0.1:<port>/hypervisors/<host>', 'the lab takes none');
  }

  #malformed(name: string, method: string, why: string): DriverError {
    return DriverError.permanent(`vm ${name} on ${this.where}: ${method}: unexpected answer (${why})`);
  }
}
