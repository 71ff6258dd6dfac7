/**
 * Boot entries on Firebreak's boot service (services/boot) through its admin
 * API. What counts is what a booting host gets, so reads go to the script the
 * service serves at /boot/<mac>.ipxe, parsed as the lab's hosts parse it:
 * nothing is sent when that already boots the entry, and a change is done
 * only once the served script says so.
 */
import { Mac, parseBootScript, redactUrl } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { readBack } from '../read-back.ts';
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

interface Reply {
  status: number;
  text: string;
}

const DEFAULT_POLL_MS = 200;
const DEFAULT_SETTLE_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export class BootServiceDriver implements BootDriver {
  readonly name = 'firebreak-boot';
  readonly capabilities: readonly BootCapability[] = ['configure', 'clear', 'read'];
  readonly #base: string;
  readonly #pollMs: number;
  readonly #settleMs: number;
  readonly #requestTimeoutMs: number;

  constructor(options: BootServiceDriverOptions) {
    this.#base = baseOf(options.url);
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
    const goal = `${id} boots server ${entry.server} from image ${entry.image}`;
    const there = sameEntry(await this.read(id, signal), entry);
    if (!there) {
      await this.#call('PUT', `/v1/hosts/${id}`, signal, { server: entry.server, image: entry.image, imageUrl: entry.imageUrl });
    }
    return this.#settle(signal, goal, there ? 'already configured' : 'configured', async () => {
      const served = await this.read(id, signal);
      if (sameEntry(served, entry)) return undefined;
      return served === undefined ? `no script served for ${id} yet` : `the script for ${id} still boots server ${served.server} from ${served.imageUrl}`;
    });
  }

  async clear(mac: string, signal: AbortSignal): Promise<StepResult> {
    const id = parseMac(mac);
    const there = (await this.read(id, signal)) !== undefined;
    // DELETE also takes the DHCP entry; the service answers 204 either way.
    if (there) await this.#call('DELETE', `/v1/hosts/${id}`, signal);
    return this.#settle(signal, `${id} has no boot entry`, there ? 'cleared' : 'already clear', async () =>
      (await this.read(id, signal)) === undefined ? undefined : `a script is still served for ${id}`,
    );
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

  async #settle(signal: AbortSignal, goal: string, how: string, pending: () => Promise<string | undefined>): Promise<StepResult> {
    const r = await readBack(pending, { pollMs: this.#pollMs, waitMs: this.#settleMs, signal });
    if (r.held) return { done: true, message: `${goal} (${how}; read back after ${r.elapsedMs} ms)` };
    return { done: false, retryAfterMs: this.#pollMs, message: `${goal}: ${how}, not read back yet; ${r.last}` };
  }

  /** One request; statuses in `allow` come back instead of throwing. */
  async #call(method: string, path: string, signal: AbortSignal, body?: unknown, allow: readonly number[] = []): Promise<Reply> {
    const what = `boot service ${this.#base} ${method} ${path}`;
    const timeout = AbortSignal.timeout(this.#requestTimeoutMs);
    let status: number;
    let text: string;
    try {
      const res = await fetch(`${this.#base}${path}`, {
        method,
        redirect: 'manual',
        signal: AbortSignal.any([signal, timeout]),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      if (signal.aborted) throw DriverError.timeout(`${what}: the caller's deadline passed`, err);
      if (timeout.aborted) throw DriverError.timeout(`${what}: no answer within ${this.#requestTimeoutMs} ms`, err);
      throw DriverError.transient(`${what}: ${networkReason(err)}`, err);
    }
    if ((status >= 200 && status < 300) || allow.includes(status)) return { status, text };
    const said = errorMessageOf(text) ?? `HTTP ${status}`;
    if (status === 408 || status === 429 || status >= 500) throw DriverError.transient(`${what}: ${status} ${said}`, undefined, { httpStatus: status });
    throw DriverError.permanent(`${what}: ${status} ${said}`, undefined, { httpStatus: status });
  }
}

function baseOf(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw DriverError.permanent(`boot service URL "${redactUrl(raw)}" is not http(s)://host:port`);
  }
  // Never echo a URL with userinfo: it would be a credential.
  if (url.username !== '' || url.password !== '') throw DriverError.permanent('boot service URL carries credentials; the boot service takes none');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw DriverError.permanent(`boot service URL "${redactUrl(raw)}" is not http(s)://host:port`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function parseMac(raw: string): string {
  const result = Mac.safeParse(raw);
  if (result.success) return result.data;
  throw DriverError.permanent(`mac "${raw}": ${result.error.issues[0]?.message ?? 'not a MAC address'}`);
}

function sameEntry(served: BootEntry | undefined, wanted: BootEntry): boolean {
  return served !== undefined && served.server === wanted.server && served.image === wanted.image && served.imageUrl === wanted.imageUrl;
}

/** The service's `{ error: { message } }`, else the start of whatever it sent. */
function errorMessageOf(text: string): string | undefined {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } } | null)?.error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // not JSON: fall through to the raw text
  }
  const snippet = text.trim().slice(0, 200);
  return snippet === '' ? undefined : snippet;
}

function networkReason(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED); is the boot service up?';
  if (code !== undefined) return `unreachable (${code})`;
  return err instanceof Error ? err.message : String(err);
}
