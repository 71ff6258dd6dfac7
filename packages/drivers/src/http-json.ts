/**
 * JSON over HTTP for the drivers of APIs in Firebreak's own style (the lab's
 * SAN and hypervisor APIs, the boot service): each request bounded by the
 * caller's signal and its own timeout, errors sent as
 * `{ error: { code, message } }`, 408, 429 and 5xx worth retrying. The body
 * and Retry-After parsers serve the Redfish client too, which keeps its own
 * transport because it needs a per-BMC TLS agent that fetch does not take.
 */
import { redactUrl } from '@firebreak/shared';
import { DriverError } from './driver-error.ts';

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Names the request in errors, e.g. `san arr1 GET /luns`. */
  what: string;
  /** Per request, within `signal`. */
  timeoutMs: number;
  signal: AbortSignal;
  /** Follows "connection refused" in errors, e.g. `is the array up?`. */
  refusedHint: string;
}

export interface HttpReply {
  status: number;
  /** 2xx. */
  ok: boolean;
  text: string;
  retryAfter: string | undefined;
}

const MAX_SNIPPET = 200;

/** One request; an answer of any status comes back, a failure before one throws a DriverError. */
export async function httpRequest(request: HttpRequest): Promise<HttpReply> {
  const { what, signal, timeoutMs } = request;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      redirect: 'manual',
      signal: AbortSignal.any([signal, timeout]),
      ...(request.body !== undefined && { body: request.body }),
    });
    return { status: res.status, ok: res.ok, text: await res.text(), retryAfter: res.headers.get('retry-after') ?? undefined };
  } catch (err) {
    if (signal.aborted) throw DriverError.timeout(`${what}: the caller's deadline passed`, err);
    if (timeout.aborted) throw DriverError.timeout(`${what}: no answer within ${timeoutMs} ms`, err);
    throw DriverError.transient(`${what}: ${networkReason(err, request.refusedHint)}`, err);
  }
}

/** A non-2xx answer: 408, 429 and 5xx are transient (with the device's Retry-After), the rest permanent; `hint` says what to fix. */
export function statusError(what: string, reply: HttpReply, hint?: string): DriverError {
  const { code, message } = apiError(reply.text);
  const said = `${what}: ${reply.status} ${hint === undefined ? '' : `${hint}: `}${message ?? `HTTP ${reply.status}`}`;
  const details = { httpStatus: reply.status, ...(code !== undefined && { messageIds: [code] }) };
  if (!isTransientStatus(reply.status)) return DriverError.permanent(said, undefined, details);
  const retryAfterMs = parseRetryAfter(reply.retryAfter);
  return DriverError.transient(said, undefined, { ...details, ...(retryAfterMs !== undefined && { retryAfterMs }) });
}

export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The API's `{ error: { code, message } }`, else the start of whatever it sent. */
export function apiError(text: string): { code: string | undefined; message: string | undefined } {
  const error = (parseBody(text) as { error?: unknown } | null | undefined)?.error;
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    return { code: typeof code === 'string' ? code : undefined, message: typeof message === 'string' ? message : undefined };
  }
  const snippet = text.trim().slice(0, MAX_SNIPPET);
  return { code: undefined, message: snippet === '' ? undefined : snippet };
}

/** Parsed JSON; the text itself when it is not JSON; undefined when empty. */
export function parseBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Seconds or an HTTP date, as Retry-After allows. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * `raw` as an http(s) base URL without a trailing slash. `what` names it in
 * errors (`san arr1: address`), `expected` shows the right form, and
 * `credentialsFix` says where credentials go instead of the URL.
 */
export function httpBase(raw: string, what: string, expected: string, credentialsFix: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw DriverError.permanent(`${what} "${redactUrl(raw)}" is not ${expected}`);
  }
  // Never echo a URL with userinfo: it would be a credential.
  if (url.username !== '' || url.password !== '') throw DriverError.permanent(`${what} carries credentials; ${credentialsFix}`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function networkReason(err: unknown, refusedHint: string): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code === 'ECONNREFUSED') return `connection refused (ECONNREFUSED); ${refusedHint}`;
  if (code !== undefined) return `unreachable (${code})`;
  return err instanceof Error ? err.message : String(err);
}
