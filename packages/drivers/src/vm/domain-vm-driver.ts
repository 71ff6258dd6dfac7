/**
 * The ensure semantics every VM driver shares, over a hypervisor's raw verbs
 * (define, start, destroy, undefine, read). Each method reads first and sends
 * nothing when the domain is already where it should be, then reads the
 * result back: a hypervisor accepting `start` is not yet a running domain.
 * Subclasses speak one protocol (virsh, the lab's HTTP API) and say which
 * failures are transient.
 */
import { Id } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { settle, type ReadBackCheck } from '../read-back.ts';
import type { StepResult, VmCapability, VmDriver, VmSpec, VmState } from '../driver.ts';
import { definitionDiff, parseDomainXml, renderDomainXml, specProblems, type DomainXmlOptions } from './domain-xml.ts';

/** What a hypervisor reports of one domain; `paused` is active but not running its guest. */
export type DomainState = 'running' | 'paused' | 'stopped';

export interface DomainRead {
  state: DomainState;
  /** The persistent definition (libvirt's `dumpxml --inactive`). */
  xml: string;
}

export interface DomainVmDriverOptions {
  /** Between state reads while a change lands. Default 100 ms. */
  pollIntervalMs?: number;
  /** Longest wait for a change to show, when the signal allows that long. Default 15 s. */
  settleWaitMs?: number;
  /** How domains are rendered: domain type, host bridge. */
  domainXml?: Omit<DomainXmlOptions, 'uuid'>;
}

const DEFAULT_POLL_MS = 100;
const DEFAULT_SETTLE_MS = 15_000;

export abstract class DomainVmDriver implements VmDriver {
  abstract readonly name: string;
  readonly capabilities: readonly VmCapability[] = ['define', 'start', 'stop', 'undefine', 'state'];
  readonly #pollMs: number;
  readonly #settleMs: number;
  readonly #xmlOptions: Omit<DomainXmlOptions, 'uuid'>;

  constructor(options: DomainVmDriverOptions) {
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.#settleMs = options.settleWaitMs ?? DEFAULT_SETTLE_MS;
    this.#xmlOptions = options.domainXml ?? {};
  }

  abstract validate(): Promise<void>;
  abstract close(): Promise<void>;

  /** Names the hypervisor in messages (host id and scrubbed address), never credentials. */
  protected abstract get where(): string;
  /** The domain's state and persistent definition, or undefined when the hypervisor has no such domain. */
  protected abstract readDomain(name: string, signal: AbortSignal): Promise<DomainRead | undefined>;
  /** Undefined when absent; cheaper than `readDomain` where the protocol allows. */
  protected abstract readState(name: string, signal: AbortSignal): Promise<DomainState | undefined>;
  /** Creates or replaces the persistent definition. */
  protected abstract defineDomain(name: string, xml: string, signal: AbortSignal): Promise<void>;
  /** The verbs below may find the domain already there (a race with another caller): read-back decides. */
  protected abstract startDomain(name: string, signal: AbortSignal): Promise<void>;
  protected abstract resumeDomain(name: string, signal: AbortSignal): Promise<void>;
  /** Forced off, like pulling the power. */
  protected abstract destroyDomain(name: string, signal: AbortSignal): Promise<void>;
  protected abstract undefineDomain(name: string, signal: AbortSignal): Promise<void>;

  async define(spec: VmSpec, signal: AbortSignal): Promise<StepResult> {
    const problems = specProblems(spec);
    if (problems.length > 0) throw DriverError.permanent(`vm ${spec.name} on ${this.where}: invalid spec: ${problems.join('; ')}`);
    const current = await this.readDomain(spec.name, signal);
    const goal = `vm ${spec.name} defined on ${this.where}`;
    let how = 'defined';
    if (current !== undefined) {
      const existing = parseDomainXml(current.xml);
      const diff = definitionDiff(spec, existing);
      if (diff.length === 0) return { done: true, message: `${goal} (already defined as asked)`, observed: { state: vmState(current.state) } };
      if (current.state !== 'stopped') {
        throw DriverError.permanent(
          `vm ${spec.name} on ${this.where}: ${current.state} with a different definition (${diff.join('; ')}); stop it before redefining`,
        );
      }
      how = `redefined: ${diff.join('; ')}`;
      const uuid = existing.uuid;
      await this.defineDomain(spec.name, renderDomainXml(spec, { ...this.#xmlOptions, ...(uuid !== undefined && { uuid }) }), signal);
    } else {
      await this.defineDomain(spec.name, renderDomainXml(spec, this.#xmlOptions), signal);
    }
    return this.#settle(signal, goal, how, async () => {
      const now = await this.readDomain(spec.name, signal);
      if (now === undefined) return `vm ${spec.name} not listed yet`;
      const left = definitionDiff(spec, parseDomainXml(now.xml));
      return left.length === 0 ? { observed: { state: vmState(now.state) } } : `definition still differs: ${left.join('; ')}`;
    });
  }

  async start(name: string, signal: AbortSignal): Promise<StepResult> {
    this.#checkName(name);
    const state = await this.readState(name, signal);
    const goal = `vm ${name} running on ${this.where}`;
    if (state === undefined) throw DriverError.permanent(`vm ${name} on ${this.where}: not defined; define it before starting it`);
    if (state === 'running') return { done: true, message: `${goal} (already running)`, observed: { state: 'running' } };
    if (state === 'paused') await this.resumeDomain(name, signal);
    else await this.startDomain(name, signal);
    return this.#settle(signal, goal, state === 'paused' ? 'resumed' : 'started', async () => {
      const now = await this.readState(name, signal);
      if (now === undefined) throw DriverError.permanent(`vm ${name} on ${this.where}: undefined while starting`);
      return now === 'running' ? { observed: { state: 'running' } } : `vm ${name} is ${now}`;
    });
  }

  async stop(name: string, signal: AbortSignal): Promise<StepResult> {
    this.#checkName(name);
    const state = await this.readState(name, signal);
    const goal = `vm ${name} stopped on ${this.where}`;
    if (state === undefined) return { done: true, message: `${goal} (not defined; nothing to stop)`, observed: { state: 'absent' } };
    if (state === 'stopped') return { done: true, message: `${goal} (already stopped)`, observed: { state: 'stopped' } };
    await this.destroyDomain(name, signal);
    return this.#settle(signal, goal, 'forced off', async () => {
      const now = await this.readState(name, signal);
      if (now === undefined) return { observed: { state: 'absent' } };
      return now === 'stopped' ? { observed: { state: 'stopped' } } : `vm ${name} is ${now}`;
    });
  }

  async undefine(name: string, signal: AbortSignal): Promise<StepResult> {
    this.#checkName(name);
    const state = await this.readState(name, signal);
    const goal = `vm ${name} absent from ${this.where}`;
    if (state === undefined) return { done: true, message: `${goal} (already absent)`, observed: { state: 'absent' } };
    if (state !== 'stopped') {
      const stopped = await this.stop(name, signal);
      if (!stopped.done) return { done: false, retryAfterMs: this.#pollMs, message: `${goal}: not undefined yet; ${stopped.message}` };
    }
    await this.undefineDomain(name, signal);
    return this.#settle(signal, goal, state === 'stopped' ? 'undefined' : 'forced off and undefined', async () =>
      (await this.readState(name, signal)) === undefined ? { observed: { state: 'absent' } } : `vm ${name} still defined`,
    );
  }

  async state(name: string, signal: AbortSignal): Promise<VmState> {
    this.#checkName(name);
    const state = await this.readState(name, signal);
    return state === undefined ? 'absent' : vmState(state);
  }

  /** Names reach command lines and URLs: only inventory ids, never something an option parser could take. */
  #checkName(name: string): void {
    if (!Id.safeParse(name).success) throw DriverError.permanent(`vm "${name}" on ${this.where}: not a domain name (1-128 letters, digits, "-" or "_")`);
  }

  #settle(signal: AbortSignal, goal: string, how: string, pending: () => Promise<ReadBackCheck>): Promise<StepResult> {
    return settle(goal, how, pending, { pollMs: this.#pollMs, waitMs: this.#settleMs, signal });
  }
}

/** A paused domain holds its memory and its name: for placement it is there, not stopped. */
function vmState(state: DomainState): VmState {
  return state === 'stopped' ? 'stopped' : 'running';
}
