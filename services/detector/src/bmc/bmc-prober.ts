/**
 * The detector's second channel: before a host is declared failed, its BMC is
 * asked over Redfish, through the production RedfishPowerDriver, whether the
 * machine is on and healthy. A host that stopped heartbeating while its BMC
 * says "on, OK" is isolated, not dead, and must not be failed over.
 *
 * Probes are short (one deadline covers the whole probe), never throw, and
 * reuse one driver per BMC endpoint and system, because a Redfish session
 * costs a login round trip and BMCs allow few of them.
 */
import { DriverError, RedfishPowerDriver } from '@firebreak/drivers';
import { inventoryIndex, type Evidence, type FailureCause, type Host, type Inventory, type Logger } from '@firebreak/shared';
import { Slots } from './slots.ts';

/** What the BMC said, exactly the `bmc` field of a verdict's evidence. */
export type BmcEvidence = NonNullable<Evidence['bmc']>;

export interface BmcProbe {
  probe(hostId: string, signal?: AbortSignal): Promise<BmcEvidence>;
}

export interface BmcProberOptions {
  /** Deadline of one whole probe, and of each request in it. Default 1000 ms. */
  timeoutMs?: number;
  /** PEM text or path, replacing every BMC's `tls.caBundle`. */
  caBundle?: string;
  /** Where `env:` credential references are looked up. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Probes in flight at once, across all BMCs; more wait their turn. Default 32. */
  maxConcurrent?: number;
}

export type BmcFailureCause = Extract<FailureCause, 'bmc-unreachable' | 'bmc-power-off' | 'bmc-critical' | 'heartbeat-lost'>;
export type BmcVerdict = { kind: 'suspect' } | { kind: 'failed'; cause: BmcFailureCause };

const DEFAULT_TIMEOUT_MS = 1_000;
const DEFAULT_MAX_CONCURRENT = 32;

/**
 * What a silent host's BMC evidence means. Power off, Critical health or no
 * answer: failed. On and not Critical: suspect (isolated), including a BMC
 * that reports no Health at all, since the power state is what tells a
 * running machine from a dead one. A BMC that answered without a usable
 * power state cannot vouch for the host: failed on the lost heartbeats.
 */
export function classify(evidence: BmcEvidence): BmcVerdict {
  if (!evidence.reachable) return { kind: 'failed', cause: 'bmc-unreachable' };
  if (evidence.powerState === 'off') return { kind: 'failed', cause: 'bmc-power-off' };
  if (evidence.health === 'Critical') return { kind: 'failed', cause: 'bmc-critical' };
  if (evidence.powerState === 'on') return { kind: 'suspect' };
  return { kind: 'failed', cause: 'heartbeat-lost' };
}

export class BmcProber implements BmcProbe {
  readonly #hosts: ReadonlyMap<string, Host>;
  readonly #options: BmcProberOptions;
  readonly #timeoutMs: number;
  readonly #slots: Slots;
  /** Keyed by BMC address and system id. */
  readonly #drivers = new Map<string, Promise<RedfishPowerDriver>>();
  #closed = false;

  constructor(inventory: Inventory, options: BmcProberOptions = {}) {
    this.#hosts = inventoryIndex(inventory).hostsById;
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#slots = new Slots(options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
  }

  /** Power state and health of the host's system; failures come back as `reachable: false` (or unknown state) with the reason. */
  async probe(hostId: string, signal?: AbortSignal): Promise<BmcEvidence> {
    const host = this.#hosts.get(hostId);
    if (host === undefined) return { reachable: false, error: `no host "${hostId}" in the inventory` };
    if (this.#closed) return { reachable: false, error: 'the BMC prober is closed' };
    // The deadline starts once a slot is held: time spent queued behind other probes must not read as an unreachable BMC.
    const release = await this.#slots.acquire(signal);
    if (release === undefined) return { reachable: false, error: 'probe cancelled before it started' };
    // A controller per probe rather than AbortSignal.any over the caller's signal: on Node 20 each `any`
    // leaves about half a kilobyte behind on a long-lived source signal such as the poller's.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException(`no answer within ${this.#timeoutMs} ms`, 'TimeoutError')), this.#timeoutMs);
    const onAbort = (): void => deadline.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.#probe(host, deadline.signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      release();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const drivers = [...this.#drivers.values()];
    this.#drivers.clear();
    await Promise.all(drivers.map(async (d) => (await d.catch(() => undefined))?.close()));
  }

  async #probe(host: Host, deadline: AbortSignal): Promise<BmcEvidence> {
    let failure: unknown;
    // One retry while the deadline allows: a keep-alive socket the BMC just closed, or one busy answer, must not become a failover.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const { powerState, health } = await (await this.#driver(host)).status(deadline);
        return { reachable: true, powerState, health };
      } catch (err) {
        failure = err;
        if (err instanceof DriverError && err.httpStatus === 401) await this.#forget(host);
        if (deadline.aborted || !(err instanceof DriverError) || !err.retryable) break;
      }
    }
    const error = failure instanceof Error ? failure.message : String(failure);
    this.#options.logger?.debug({ host: host.id, bmc: host.bmc.address, error }, 'bmc probe failed');
    // An HTTP answer means the BMC is up but could not tell us the state.
    if (failure instanceof DriverError && failure.httpStatus !== undefined) return { reachable: true, powerState: 'unknown', health: 'unknown', error };
    return { reachable: false, error };
  }

  #driver(host: Host): Promise<RedfishPowerDriver> {
    const key = driverKey(host);
    let driver = this.#drivers.get(key);
    if (driver === undefined) {
      const { caBundle, env, logger } = this.#options;
      driver = RedfishPowerDriver.fromInventory(host.bmc, {
        requestTimeoutMs: this.#timeoutMs,
        ...(caBundle !== undefined && { caBundle }),
        ...(env !== undefined && { env }),
        ...(logger !== undefined && { logger }),
      });
      // A failed set-up (unreadable credentials) is retried on the next probe, not cached.
      driver.catch(() => {
        if (this.#drivers.get(key) === driver) this.#drivers.delete(key);
      });
      this.#drivers.set(key, driver);
    }
    return driver;
  }

  /** Drops a driver whose credentials were refused, so the next probe resolves them again (they may have been rotated). */
  async #forget(host: Host): Promise<void> {
    const key = driverKey(host);
    const driver = this.#drivers.get(key);
    this.#drivers.delete(key);
    await (await driver?.catch(() => undefined))?.close();
  }
}

function driverKey(host: Host): string {
  return `${host.bmc.address} ${host.bmc.systemId ?? ''}`;
}
