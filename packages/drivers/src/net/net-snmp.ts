/**
 * Typed view of the manager side of `net-snmp` that the net driver uses. The
 * package is CommonJS and ships no type declarations; loading it through
 * `require` keeps these types local instead of declaring the module for the
 * whole program (as the lab does for its agent side).
 */
import { createRequire } from 'node:module';

export interface Varbind {
  oid: string;
  type: number;
  value: unknown;
}

/** What net-snmp passes to callbacks: RequestFailedError, RequestTimedOutError, ResponseInvalidError, socket errors. */
export interface SnmpError extends Error {
  /** The error-status of a failed request (`ErrorStatus`), on RequestFailedError. */
  status?: number;
  /** errno-style code, on socket errors. */
  code?: string | number;
}

export interface SessionOptions {
  port?: number;
  retries?: number;
  timeout?: number;
  backoff?: number;
  version?: number;
  transport?: 'udp4' | 'udp6';
}

export type DoneCallback = (error: SnmpError | null) => void;
export type VarbindsCallback = (error: SnmpError | null, varbinds?: Varbind[]) => void;

export interface Session {
  get(oids: string[], callback: VarbindsCallback): void;
  set(varbinds: Varbind[], callback: VarbindsCallback): void;
  /** Calls `feed` per response (return true to stop), then `done`. */
  subtree(oid: string, maxRepetitions: number, feed: (varbinds: Varbind[]) => boolean | void, done: DoneCallback): void;
  close(): void;
  on(event: 'error', listener: (error: Error) => void): this;
}

interface NetSnmp {
  Version2c: number;
  ObjectType: { Integer: number; OctetString: number; Gauge: number; NoSuchObject: number; NoSuchInstance: number; EndOfMibView: number };
  /** Both directions: number → name and name → number. */
  ErrorStatus: Record<string | number, string | number> & {
    GeneralError: number;
    ResourceUnavailable: number;
    CommitFailed: number;
  };
  RowStatus: Record<'active' | 'createAndGo', number>;
  RequestTimedOutError: new (...args: never[]) => SnmpError;
  RequestFailedError: new (...args: never[]) => SnmpError;
  ResponseInvalidError: new (...args: never[]) => SnmpError;
  isVarbindError(varbind: Varbind): boolean;
  createSession(target: string, community: string, options: SessionOptions): Session;
}

export const snmp = createRequire(import.meta.url)('net-snmp') as NetSnmp;
