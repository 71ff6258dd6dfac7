/**
 * Boot entries on Firebreak's boot service (services/boot) through its admin
 * API. What counts is what a booting host gets, so reads go to the script the
 * service serves at /boot/<mac>.ipxe, parsed as the lab's hosts parse it:
 * nothing is sent when that already boots the entry, and a change is done
 * only once the served script says so.
 */
import { Mac, parseBootScript, sameBootAttach, type BootAttach } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { httpBase, httpRequest, statusError, type HttpReply } from '../http-json.ts';
import { settle, type ReadBackCheck } from '../read-back.ts';
import type { BootCapability, BootDriver, BootEntry, StepResult } from '../driver.ts';

export interface BootServiceDriverOptions {
  /** The boot service's base URL, e.g. http://10.0.0.5:8081. */
  url: string;
  /** Between reads while a change lands. Default 200 ms. */
  pollIntervalMs?: number;
  /** Longest wait for a change to show, when the signal allows that long. Default 10 s. */
  settleWaitMs?: number;
  /** Per HTTP request, within the caller's signal. Default 10 s. */
  requestTimeoutMs?: number;
}

const DEFAULT_POLL_MS = 200;
const DEFAULT_SETTLE_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export class BootServiceDriver implements BootDriver {
  readonly name = 'firebreak-boot';
  readonly capabilities: readonly BootCapability[] = ['configure', 'clear', 'read', 'restore'];
  readonly #base: string;
  readonly #pollMs: number;
  readonly #settleMs: number;
  readonly #requestTimeoutMs: number;

  constructor(options: BootServiceDriverOptions) {
    this.#base = httpBase(options.url, 'boot service URL', 'http(s)://host:port', 'the boot service takes none');
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.#settleMs = options.settleWaitMs ?? DEFAULT_SETTLE_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  static fromUrl(url: string, options: Omit<BootServiceDriverOptions, 'url'> = {}): BootServiceDriver {
    return new BootServiceDriver({ ...options, url });
  }

  /** The URL was checked when the driver was built; nothing else to check without a request. */
  validate(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    // Plain fetch: no session to end; the global agent owns the sockets.
    return Promise.resolve();
  }

  async configure(mac: string, entry: BootEntry, signal: AbortSignal): Promise<StepResult> {
    const id = parseMac(mac);
    const goal = `${id} boots server ${entry.server} from image ${entry.image}${entry.attach ? ` ${describeAttach(entry.attach)}` : ''}`;
    const before = await this.read(id, signal);
    // The read just made is the read-back: what a booting host gets already boots the entry.
    if (before !== undefined && sameEntry(before, entry)) return { done: true, message: `${goal} (already configured)`, observed: servedOf(before) };
    await this.#call('PUT', `/v1/hosts/${id}`, signal, bodyOf(entry));
    return this.#settle(signal, goal, 'configured', async () => {
      const served = await this.read(id, signal);
      if (served !== undefined && sameEntry(served, entry)) return { observed: servedOf(served) };
      if (served === undefined) return `no script served for ${id} yet`;
      const attached = served.attach ? describeAttach(served.attach) : "on its server's own VLANs and LUNs";
      return `the script for ${id} still boots server ${served.server} from ${served.imageUrl} ${attached}`;
    });
  }

  async clear(mac: string, signal: AbortSignal): Promise<StepResult> {
    const id = parseMac(mac);
    const goal = `${id} has no boot entry`;
    // Nothing served: the read just made is the read-back.
    if ((await this.read(id, signal)) === undefined) return { done: true, message: `${goal} (already clear)`, observed: { cleared: true } };
    // DELETE also takes the DHCP entry; the service answers 204 either way.
    await this.#call('DELETE', `/v1/hosts/${id}`, signal);
    return this.#settle(signal, goal, 'cleared', async () =>
      (await this.read(id, signal)) === undefined ? { observed: { cleared: true } } : `a script is still served for ${id}`,
    );
  }

  async restore(mac: string, entry: BootEntry | undefined, signal: AbortSignal): Promise<StepResult> {
    const id = parseMac(mac);
    const goal = entry === undefined ? `${id} has no boot entry (restored)` : `${id} boots exactly ${describeEntry(entry)} (restored)`;
    const before = await this.read(id, signal);
    // The read just made is the read-back: what a booting host gets is already the entry.
    if (identical(before, entry)) return { done: true, message: `${goal}: already so`, observed: restoredOf(before) };
    if (entry === undefined) await this.#call('DELETE', `/v1/hosts/${id}`, signal);
    else await this.#call('PUT', `/v1/hosts/${id}`, signal, bodyOf(entry));
    return this.#settle(signal, goal, entry === undefined ? 'deleted' : 'put back', async () => {
      const served = await this.read(id, signal);
      if (identical(served, entry)) return { observed: restoredOf(served) };
      return served === undefined ? `no script served for ${id} yet` : `the script for ${id} boots ${describeEntry(served)}`;
    });
  }

  async read(mac: string, signal: AbortSignal): Promise<BootEntry | undefined> {
    const id = parseMac(mac);
    const path = `/boot/${id}.ipxe`;
    const { status, text } = await this.#call('GET', path, signal, undefined, [404]);
    if (status === 404) return undefined;
    try {
      return parseBootScript(text);
    } catch (err) {
      throw DriverError.permanent(`boot service ${this.#base} GET ${path}: served a script that is not a Firebreak boot script (${(err as Error).message}); is ${this.#base} the boot service?`);
    }
  }

  #settle(signal: AbortSignal, goal: string, how: string, pending: () => Promise<ReadBackCheck>): Promise<StepResult> {
    return settle(goal, how, pending, { pollMs: this.#pollMs, waitMs: this.#settleMs, signal });
  }

  /** One request; statuses in `allow` come back instead of throwing. */
  async #call(method: string, path: string, signal: AbortSignal, body?: unknown, allow: readonly number[] = []): Promise<HttpReply> {
    const what = `boot service ${this.#base} ${method} ${path}`;
    const reply = await httpRequest({
      method,
      url: `${this.#base}${path}`,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      what,
      timeoutMs: this.#requestTimeoutMs,
      signal,
      refusedHint: 'is the boot service up?',
    });
    if (reply.ok || allow.includes(reply.status)) return reply;
    throw statusError(what, reply);
  }
}

function parseMac(raw: string): string {
  const result = Mac.safeParse(raw);
  if (result.success) return result.data;
  throw DriverError.permanent(`mac "${raw}": ${result.error.issues[0]?.message ?? 'not a MAC address'}`);
}

/** What the executor reports of a served entry. */
function servedOf(served: BootEntry): Record<string, unknown> {
  return { server: served.server, image: served.image, ...(served.attach && { attach: served.attach }) };
}

/** The entry as the boot service takes it. */
function bodyOf(entry: BootEntry): Record<string, unknown> {
  const { attach } = entry;
  return { server: entry.server, image: entry.image, imageUrl: entry.imageUrl, ...(attach && { attach: { vlans: attach.vlans, luns: attach.luns } }) };
}

/** What a restore reports: the entry served, imageUrl included, or null. */
function restoredOf(served: BootEntry | undefined): Record<string, unknown> {
  return { entry: served === undefined ? null : bodyOf(served) };
}

/**
 * The same entry, or both none. Attachments compare as sets, as the boot
 * service compares them: it keeps an entry that differs only in their order
 * as it is, so no restore could set the order alone.
 */
function identical(served: BootEntry | undefined, wanted: BootEntry | undefined): boolean {
  if (served === undefined || wanted === undefined) return served === wanted;
  return sameEntry(served, wanted);
}

function describeEntry(entry: BootEntry): string {
  return `server ${entry.server} from image ${entry.image} (${entry.imageUrl})${entry.attach ? ` ${describeAttach(entry.attach)}` : ''}`;
}

function sameEntry(served: BootEntry | undefined, wanted: BootEntry): boolean {
  return (
    served !== undefined &&
    served.server === wanted.server &&
    served.image === wanted.image &&
    served.imageUrl === wanted.imageUrl &&
    sameBootAttach(served.attach, wanted.attach)
  );
}

function describeAttach(attach: BootAttach): string {
  return `on VLANs ${attach.vlans.join(',')} with LUNs ${attach.luns.length > 0 ? attach.luns.join(',') : 'none'}`;
}
