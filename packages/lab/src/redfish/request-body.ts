/**
 * Request bodies, accepted the way strict BMC web servers accept them: a
 * declared Content-Length (a chunked body is refused with 411 before anything
 * else happens), JSON only, and small.
 */
import type { IncomingMessage } from 'node:http';
import { redfishErrors } from './redfish-error.ts';

const BODY_METHODS = new Set(['POST', 'PATCH', 'PUT']);
export const MAX_BODY_BYTES = 64 * 1024;

/** Throws 411 for a chunked body or a body method without Content-Length, 413 for an oversized one. */
export function checkBodyFraming(req: IncomingMessage): void {
  const declared = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined) throw redfishErrors.lengthRequired();
  if (BODY_METHODS.has(req.method ?? '') && declared === undefined) throw redfishErrors.lengthRequired();
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw redfishErrors.payloadTooLarge(MAX_BODY_BYTES);
}

/** The parsed JSON object of the body (undefined when empty); 415 or 400 for anything else. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  if (Number(req.headers['content-length'] ?? 0) === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw redfishErrors.unsupportedMediaType(type === '' ? '(none)' : type);
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw redfishErrors.malformedJson();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw redfishErrors.malformedJson();
  return value as Record<string, unknown>;
}
