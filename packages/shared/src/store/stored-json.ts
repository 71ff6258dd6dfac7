/**
 * JSON in and out of Redis. Whatever comes back is checked with a schema:
 * another version of Firebreak, or a person with redis-cli, may have written it.
 */
import { z } from 'zod';
import { FirebreakError, errorCodes, type ErrorCode } from '../errors.ts';

/** `JSON.stringify` returns undefined for undefined, functions and symbols; refuse those instead of storing nothing. */
export function encodeJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw FirebreakError.permanent(`${what} cannot be stored: it is not serialisable as JSON`, err);
  }
  if (text === undefined) throw FirebreakError.permanent(`${what} cannot be stored: it is not a JSON value`);
  return text;
}

export function decodeJson<T>(text: string, schema: z.ZodType<T>, what: string, code: ErrorCode = errorCodes.permanent): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FirebreakError(`${what} in Redis is not valid JSON`, { code, retryable: false, cause: err });
  }
  return checkStored(value, schema, what, code);
}

export function checkStored<T>(value: unknown, schema: z.ZodType<T>, what: string, code: ErrorCode = errorCodes.permanent): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new FirebreakError(`${what} in Redis does not match its schema: ${z.prettifyError(parsed.error)}`, {
      code,
      retryable: false,
      cause: parsed.error,
    });
  }
  return parsed.data;
}
