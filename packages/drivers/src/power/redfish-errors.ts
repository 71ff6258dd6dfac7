/**
 * Turns what a Redfish service (or the network in between) answered into a
 * DriverError that says what failed and whether retrying can help. Every text
 * that came from the device goes through `scrub`, so a BMC that echoes the
 * login back cannot leak the password into logs.
 */
import { DriverError } from '../driver-error.ts';
import { isTransientStatus, parseRetryAfter } from '../http-json.ts';

/** Replaces secrets in device-provided text. */
export type Scrub = (text: string) => string;

export interface RequestContext {
  method: string;
  path: string;
  /** `host:port` of the BMC. */
  endpoint: string;
  /** Names the credentials in messages in place of the credentials. */
  credentialsRef?: string | undefined;
}

const MAX_DETAIL = 600;

interface RedfishMessage {
  MessageId?: unknown;
  Message?: unknown;
}

/** `error.code`, `error.message` and the `@Message.ExtendedInfo` of a Redfish error body. */
export function parseRedfishError(body: unknown): { code?: string; message?: string; extended: { id?: string; message?: string }[] } {
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  if (typeof error !== 'object' || error === null) return { extended: [] };
  const info = error['@Message.ExtendedInfo'];
  const extended = (Array.isArray(info) ? (info as RedfishMessage[]) : []).map((m) => ({
    ...(typeof m?.MessageId === 'string' && { id: m.MessageId }),
    ...(typeof m?.Message === 'string' && { message: m.Message }),
  }));
  return {
    ...(typeof error['code'] === 'string' && { code: error['code'] }),
    ...(typeof error['message'] === 'string' && { message: error['message'] }),
    extended,
  };
}

function truncate(text: string): string {
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}…` : text;
}

function describeBody(body: unknown, scrub: Scrub): { detail: string; messageIds: string[] } {
  const parsed = parseRedfishError(body);
  const messageIds = [parsed.code, ...parsed.extended.map((m) => m.id)].filter((id): id is string => id !== undefined);
  // The extended messages say what went wrong; `error.message` is mostly "a general error has occurred".
  const extended = parsed.extended.map((m) => [m.id, m.message].filter(Boolean).join(': '));
  const parts = (extended.some((p) => p !== '') ? extended : [parsed.code, parsed.message]).filter((p): p is string => p !== undefined && p !== '');
  if (parts.length > 0) return { detail: truncate(scrub([...new Set(parts)].join('; '))), messageIds: [...new Set(messageIds)] };
  if (typeof body === 'string' && body.trim() !== '') return { detail: truncate(scrub(body.trim())), messageIds: [] };
  return { detail: '', messageIds: [] };
}

function hint(status: number, ctx: RequestContext): string {
  const creds = ctx.credentialsRef === undefined ? 'the configured credentials' : `the credentials of ${ctx.credentialsRef}`;
  switch (status) {
    case 401:
      return `the BMC refused ${creds}`;
    case 403:
      return `the account of ${creds} may not do this`;
    case 404:
      return 'no such resource on this BMC';
    case 405:
      return 'the BMC does not allow this method here';
    case 411:
      return 'the BMC requires Content-Length on request bodies';
    case 412:
      return 'the resource changed since it was read (ETag mismatch)';
    case 429:
      return 'the BMC is rate limiting';
    case 503:
      return 'the BMC is busy';
    default:
      return status >= 500 ? 'the BMC failed' : 'the BMC rejected the request';
  }
}

/**
 * 4xx are permanent (asking again the same way fails again) except 408, 412
 * (re-read and retry) and 429; every 5xx is transient.
 */
export function isRetryableStatus(status: number): boolean {
  return isTransientStatus(status) || status === 412;
}

export function httpError(
  ctx: RequestContext,
  status: number,
  body: unknown,
  retryAfter: string | undefined,
  scrub: Scrub,
): DriverError {
  const { detail, messageIds } = describeBody(body, scrub);
  const message = `redfish ${ctx.method} ${ctx.path} at ${ctx.endpoint}: HTTP ${status}, ${hint(status, ctx)}${detail === '' ? '' : ` (${detail})`}`;
  const retryAfterMs = parseRetryAfter(retryAfter);
  const details = { httpStatus: status, messageIds, ...(retryAfterMs !== undefined && { retryAfterMs }) };
  return isRetryableStatus(status) ? DriverError.transient(message, undefined, details) : DriverError.permanent(message, undefined, details);
}

/** OpenSSL's verification failures: retrying cannot fix a certificate. */
const tlsVerifyCodes = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A failure before any HTTP answer: TLS verification (permanent) or the connection (transient). */
export function networkError(ctx: RequestContext, err: unknown): DriverError {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const what = `redfish ${ctx.method} ${ctx.path} at ${ctx.endpoint}`;
  if (code !== undefined && tlsVerifyCodes.has(code)) {
    return DriverError.permanent(
      `${what}: TLS verification failed (${code}); the BMC's certificate does not match the CA bundle configured for it ` +
        '(set bmc.tls.caBundle to the CA that signed it, or opt out explicitly with bmc.tls.verify: false)',
      err,
    );
  }
  const reason = code ?? (err instanceof Error ? err.message : String(err));
  return DriverError.transient(`${what}: connection failed (${reason})`, err);
}

/** The caller's signal or the per-request timeout ended the request. */
export function abortError(ctx: RequestContext, reason: unknown, timedOutAfterMs: number | undefined): DriverError {
  const what = `redfish ${ctx.method} ${ctx.path} at ${ctx.endpoint}`;
  if (timedOutAfterMs !== undefined) return DriverError.timeout(`${what}: no answer within ${timedOutAfterMs} ms`);
  const isTimeout = reason instanceof Error && reason.name === 'TimeoutError';
  return isTimeout
    ? DriverError.timeout(`${what}: the caller's deadline passed`)
    : DriverError.transient(`${what}: aborted by the caller`);
}
