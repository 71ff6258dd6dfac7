/**
 * One error family for Firebreak. `retryable` separates transient failures
 * (retry with backoff) from permanent ones (report, do not retry).
 */
export const errorCodes = {
  invalidMessage: 'INVALID_MESSAGE',
  invalidConfig: 'INVALID_CONFIG',
  invalidInventory: 'INVALID_INVENTORY',
  leaseLost: 'LEASE_LOST',
  staleFencingToken: 'STALE_FENCING_TOKEN',
  ledgerConflict: 'LEDGER_CONFLICT',
  transient: 'TRANSIENT',
  permanent: 'PERMANENT',
  timeout: 'TIMEOUT',
  internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof errorCodes)[keyof typeof errorCodes];

export interface FirebreakErrorOptions {
  code: ErrorCode;
  retryable: boolean;
  cause?: unknown;
}

export class FirebreakError extends Error {
  override name = 'FirebreakError';
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(message: string, options: FirebreakErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.retryable = options.retryable;
  }

  static transient(message: string, cause?: unknown): FirebreakError {
    return new FirebreakError(message, { code: errorCodes.transient, retryable: true, cause });
  }

  static permanent(message: string, cause?: unknown): FirebreakError {
    return new FirebreakError(message, { code: errorCodes.permanent, retryable: false, cause });
  }
}

/** A message failed its schema; never retryable, it goes to the dead-letter stream. */
export class InvalidMessageError extends FirebreakError {
  override name = 'InvalidMessageError';
  constructor(message: string, cause?: unknown) {
    super(message, { code: errorCodes.invalidMessage, retryable: false, cause });
  }
}

export class ConfigError extends FirebreakError {
  override name = 'ConfigError';
  constructor(message: string) {
    super(message, { code: errorCodes.invalidConfig, retryable: false });
  }
}

/** Normalises anything thrown into a FirebreakError; unknown errors are retryable. */
export function toFirebreakError(err: unknown): FirebreakError {
  if (err instanceof FirebreakError) return err;
  if (err instanceof Error) {
    return new FirebreakError(err.message, { code: errorCodes.internal, retryable: true, cause: err });
  }
  return new FirebreakError(String(err), { code: errorCodes.internal, retryable: true });
}
