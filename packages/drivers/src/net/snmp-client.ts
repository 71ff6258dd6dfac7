/**
 * Promise-returning SNMPv2c GET, SET and subtree walk on one switch, over one
 * net-snmp session, with the caller's AbortSignal and DriverErrors that never
 * carry the community.
 */
import type { Secret } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { snmp, type Session, type Varbind } from './net-snmp.ts';
import { abortError, noSuchObject, snmpError, type SnmpContext } from './snmp-errors.ts';

export interface SnmpClientOptions {
  switchId: string;
  /** `host:port`, `[v6]:port`, or a host alone for port 161. */
  address: string;
  community: Secret;
  /** Named in messages in place of the community. */
  credentialsRef: string;
  /** Per attempt. Default 2 s. */
  timeoutMs?: number;
  /** Resends after a timeout. Default 1. */
  retries?: number;
}

const DEFAULT_TIMEOUT_MS = 2_000;
const DEFAULT_RETRIES = 1;
const MAX_REPETITIONS = 32;

export function parseAddress(address: string): { host: string; port: number; transport: 'udp4' | 'udp6' } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]/]+))(?::(\d{1,5}))?$/.exec(address);
  const port = match?.[3] === undefined ? 161 : Number(match[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !(port >= 1 && port <= 65_535)) {
    throw DriverError.permanent(`snmp: switch address "${address}" is not host:port (like 10.0.0.2:161)`);
  }
  return { host, port, transport: match?.[1] === undefined ? 'udp4' : 'udp6' };
}

export class SnmpClient {
  readonly #options: SnmpClientOptions;
  readonly #target: ReturnType<typeof parseAddress>;
  readonly #timeoutMs: number;
  readonly #retries: number;
  #session: Session | undefined;

  constructor(options: SnmpClientOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#retries = options.retries ?? DEFAULT_RETRIES;
    this.#target = parseAddress(options.address);
  }

  /** Values of `oids`; a missing instance is an error naming it. */
  get(oids: string[], signal: AbortSignal): Promise<Varbind[]> {
    return this.#call('get', signal, (session, done) =>
      session.get(oids, (error, varbinds) => {
        const missing = varbinds?.find((vb) => snmp.isVarbindError(vb));
        if (!error && missing) done(null, undefined, noSuchObject(this.#context('get'), missing.oid));
        else done(error, varbinds ?? []);
      }),
    );
  }

  set(varbinds: Varbind[], signal: AbortSignal): Promise<Varbind[]> {
    return this.#call('set', signal, (session, done) => session.set(varbinds, (error, result) => done(error, result ?? [])));
  }

  /** Every instance under `oid` (GETBULK). */
  walk(oid: string, signal: AbortSignal): Promise<Varbind[]> {
    return this.#call('walk', signal, (session, done) => {
      const rows: Varbind[] = [];
      session.subtree(
        oid,
        MAX_REPETITIONS,
        (varbinds) => void rows.push(...varbinds.filter((vb) => !snmp.isVarbindError(vb))),
        (error) => done(error, rows),
      );
    });
  }

  close(): void {
    this.#session?.close();
    this.#session = undefined;
  }

  #context(operation: string): SnmpContext {
    const { switchId, address, credentialsRef } = this.#options;
    return { operation, switchId, address, credentialsRef, timeoutMs: this.#timeoutMs, retries: this.#retries };
  }

  #ensureSession(): Session {
    if (this.#session) return this.#session;
    const { host, port, transport } = this.#target;
    const session = snmp.createSession(host, this.#options.community.reveal(), {
      port,
      transport,
      version: snmp.Version2c,
      timeout: this.#timeoutMs,
      retries: this.#retries,
    });
    // Socket errors also fail the request in flight; the listener keeps them from crashing the process.
    session.on('error', () => {
      if (this.#session === session) this.#session = undefined;
      session.close();
    });
    this.#session = session;
    return session;
  }

  #call<T>(
    operation: string,
    signal: AbortSignal,
    run: (session: Session, done: (error: Error | null, value?: T, failure?: DriverError) => void) => void,
  ): Promise<T> {
    const ctx = this.#context(operation);
    const secret = this.#options.community.reveal();
    if (signal.aborted) return Promise.reject(abortError(ctx, signal.reason));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(abortError(ctx, signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (error: Error | null, value?: T, failure?: DriverError): void => {
        signal.removeEventListener('abort', onAbort);
        if (failure) reject(failure);
        else if (error) reject(snmpError(ctx, error, secret));
        else resolve(value as T);
      };
      try {
        run(this.#ensureSession(), settle);
      } catch (err) {
        settle(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }
}
