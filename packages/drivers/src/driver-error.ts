import { FirebreakError, errorCodes, type ErrorCode } from '@firebreak/shared';

/** What a device said about a failure, for callers that branch on it; never credentials. */
export interface DriverErrorDetails {
  /** HTTP status of the device's answer, when there was one. */
  httpStatus?: number;
  /** Message registry ids the device reported (Redfish `MessageId`s). */
  messageIds?: readonly string[];
  /** The device asked to be retried after this long (HTTP Retry-After). */
  retryAfterMs?: number;
}

/**
 * A driver could not do what it was asked. `retryable` says whether trying
 * again may help (timeouts, busy or unreachable devices) or not (refused
 * credentials, unsupported operations, bad configuration). Messages name
 * devices, paths and credential references, never the credentials.
 */
export class DriverError extends FirebreakError {
  override name = 'DriverError';
  readonly httpStatus: number | undefined;
  readonly messageIds: readonly string[];
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { code: ErrorCode; retryable: boolean; cause?: unknown } & DriverErrorDetails) {
    super(message, { code: options.code, retryable: options.retryable, cause: options.cause });
    this.httpStatus = options.httpStatus;
    this.messageIds = options.messageIds ?? [];
    this.retryAfterMs = options.retryAfterMs;
  }

  static override transient(message: string, cause?: unknown, details: DriverErrorDetails = {}): DriverError {
    return new DriverError(message, { code: errorCodes.transient, retryable: true, cause, ...details });
  }

  static override permanent(message: string, cause?: unknown, details: DriverErrorDetails = {}): DriverError {
    return new DriverError(message, { code: errorCodes.permanent, retryable: false, cause, ...details });
  }

  /** The device did not answer in time; retryable. */
  static timeout(message: string, cause?: unknown): DriverError {
    return new DriverError(message, { code: errorCodes.timeout, retryable: true, cause });
  }
}

/**
 * What a step wrote was changed by someone else before it read the change
 * back (another manager's SET of the same PortList): waiting longer would not
 * bring the state back, so the read-back ends at once and the step is retried
 * from a fresh read. Retryable.
 */
export class ConcurrentWriteError extends DriverError {
  override name = 'ConcurrentWriteError';

  constructor(message: string) {
    super(message, { code: errorCodes.transient, retryable: true });
  }
}
