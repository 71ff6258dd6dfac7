/**
 * Turns what net-snmp reports into a DriverError that says which switch and
 * object failed and whether retrying can help. net-snmp's own messages may
 * quote the community (ResponseInvalidError "Community '…' in request does
 * not match…"), so messages are built here and causes are scrubbed copies.
 */
import { DriverError } from '../driver-error.ts';
import { snmp, type SnmpError } from './net-snmp.ts';
import { nameOf } from './oids.ts';

export interface SnmpContext {
  /** `get`, `set` or `walk`. */
  operation: string;
  switchId: string;
  /** `host:port` of the agent. */
  address: string;
  credentialsRef: string;
  /** Per-attempt timeout and retries, to say how long the switch stayed silent. */
  timeoutMs: number;
  retries: number;
}

/** Error-statuses after which the same request may succeed: the agent was busy or could not commit. */
const transientStatuses = new Set<number>([snmp.ErrorStatus.GeneralError, snmp.ErrorStatus.ResourceUnavailable, snmp.ErrorStatus.CommitFailed]);

const where = (ctx: SnmpContext): string => `snmp ${ctx.operation} on switch ${ctx.switchId} at udp ${ctx.address}`;

/** `InconsistentValue` → `inconsistentValue`, as SNMPv2-PDU spells error-statuses. */
const statusName = (status: number): string => {
  const name = String(snmp.ErrorStatus[status] ?? `error-status ${status}`);
  return name.charAt(0).toLowerCase() + name.slice(1);
};

/** A copy of `err` whose message and stack cannot carry the secret. */
function scrubbed(err: unknown, secret: string): Error {
  const source = err instanceof Error ? err : new Error(String(err));
  const clean = (text: string): string => (secret === '' ? text : text.split(secret).join('[REDACTED]'));
  const copy = new Error(clean(source.message));
  copy.name = source.name;
  copy.stack = clean(source.stack ?? '');
  return copy;
}

export function snmpError(ctx: SnmpContext, err: unknown, secret: string): DriverError {
  const cause = scrubbed(err, secret);
  if (err instanceof snmp.RequestTimedOutError) {
    const waited = ctx.timeoutMs * (ctx.retries + 1);
    // SNMPv2c agents drop requests with a community they do not accept, so silence covers both.
    return DriverError.timeout(
      `${where(ctx)}: no answer within ${waited} ms (${ctx.retries + 1} attempts); the switch is unreachable or refuses the community of ${ctx.credentialsRef}`,
      cause,
    );
  }
  if (err instanceof snmp.RequestFailedError && typeof (err as SnmpError).status === 'number') {
    const status = (err as SnmpError).status as number;
    // net-snmp writes "<Status>: <oid of the failing varbind>".
    const oid = /: ([\d.]+)$/.exec(err.message)?.[1];
    const message = `${where(ctx)}: the switch answered ${statusName(status)}${oid === undefined ? '' : ` for ${nameOf(oid)}`}`;
    const details = { messageIds: [statusName(status)] };
    return transientStatuses.has(status) ? DriverError.transient(message, cause, details) : DriverError.permanent(message, cause, details);
  }
  if (err instanceof snmp.ResponseInvalidError) {
    return DriverError.transient(`${where(ctx)}: the switch sent an answer that does not match the request`, cause);
  }
  const code = (err as SnmpError | null)?.code;
  return DriverError.transient(`${where(ctx)}: ${code === undefined ? 'request failed' : `socket error ${code}`}`, cause);
}

/** The caller's signal ended the request; net-snmp cannot cancel it, its answer is ignored. */
export function abortError(ctx: SnmpContext, reason: unknown): DriverError {
  const isTimeout = reason instanceof Error && reason.name === 'TimeoutError';
  return isTimeout ? DriverError.timeout(`${where(ctx)}: the caller's deadline passed`) : DriverError.transient(`${where(ctx)}: aborted by the caller`);
}

/** A GET named an instance the switch does not have. */
export function noSuchObject(ctx: SnmpContext, oid: string): DriverError {
  return DriverError.permanent(`${where(ctx)}: no such object ${oid}`);
}
