/**
 * Typed view of `net-snmp`, the one SNMP library Firebreak speaks through: the
 * manager session (the net driver), the agent and its MIB (the lab's switches)
 * and the notification receiver (the detector). The package is CommonJS and
 * ships no type declarations, so the types live here once instead of a
 * `declare module` for the whole program. Shared does not depend on net-snmp:
 * `loadNetSnmp(import.meta.url)` resolves it from the calling package, which
 * must list it.
 */
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { createRequire } from 'node:module';

export interface Varbind {
  oid: string;
  type: number;
  value: unknown;
}

/** What net-snmp passes to callbacks: RequestFailedError, RequestTimedOutError, ResponseInvalidError, socket errors. */
export interface SnmpError extends Error {
  /** Where the offending packet came from, on errors an agent or receiver reports. */
  rinfo?: RemoteInfo;
  /** The error-status of a failed request (`ErrorStatus`), on RequestFailedError. */
  status?: number;
  /** errno-style code, on socket errors. */
  code?: string | number;
}

/** What a session does with its socket; a session accepts a `dgramModule` that makes something else. */
export interface SessionSocket {
  on(event: string, listener: (...args: never[]) => void): unknown;
  ref(): unknown;
  unref(): unknown;
  bind(port?: number, address?: string): unknown;
  close(): unknown;
  send(msg: Buffer, offset: number, length: number, port: number, address: string, callback: (error: Error | null) => void): unknown;
}

/** Makes the UDP socket an agent or receiver listens on, so the caller can hold it (wait for `listening`, bind it). */
export interface UdpSocketFactory {
  createSocket(type: 'udp4' | 'udp6'): UdpSocket;
}

export interface SessionOptions {
  port?: number;
  trapPort?: number;
  retries?: number;
  timeout?: number;
  backoff?: number;
  version?: number;
  transport?: 'udp4' | 'udp6';
  dgramModule?: { createSocket(type: 'udp4' | 'udp6'): SessionSocket };
}

export type DoneCallback = (error: SnmpError | null) => void;
export type VarbindsCallback = (error: SnmpError | null, varbinds?: Varbind[]) => void;

export interface Session {
  get(oids: string[], callback: VarbindsCallback): void;
  set(varbinds: Varbind[], callback: VarbindsCallback): void;
  /** Calls `feed` per response (return true to stop), then `done`. */
  subtree(oid: string, maxRepetitions: number, feed: (varbinds: Varbind[]) => boolean | void, done: DoneCallback): void;
  /** A v2c trap OID, or a v1 generic `TrapType`. */
  trap(typeOrOid: string | number, varbinds: Varbind[], callback: DoneCallback): void;
  close(): void;
  on(event: 'error', listener: (error: Error) => void): this;
}

export interface Authorizer {
  addCommunity(community: string): void;
}

/** A trap or inform as the receiver parsed it; v1 traps carry `generic`/`specific`. */
export interface Notification {
  pdu: { type: number; varbinds: Varbind[]; community?: string; generic?: number; specific?: number };
  rinfo: RemoteInfo;
}

export interface Receiver {
  getAuthorizer(): Authorizer;
  close(callback?: () => void): void;
}

export interface ReceiverOptions {
  port: number;
  address?: string;
  includeAuthentication?: boolean;
  dgramModule?: UdpSocketFactory;
}

export interface AgentOptions {
  port: number;
  address: string;
  /** net-snmp's Listener honours it as sessions do. */
  dgramModule?: UdpSocketFactory;
}

/** A parsed request as the agent's per-PDU handlers receive it. */
export interface RequestMessage {
  pdu: { type: number; varbinds: Varbind[] };
}

export type PduHandler = (socket: UdpSocket, message: RequestMessage, rinfo: RemoteInfo) => void;

export interface Agent {
  getAuthorizer(): Authorizer;
  getMib(): Mib;
  close(callback?: () => void): void;
  /*
   * The agent's per-PDU entry points (net-snmp internals, pinned by the lock
   * file). `onMsg` dispatches to them through `this`, so an instance may wrap
   * them to act before the MIB is read or written.
   */
  getRequest: PduHandler;
  getNextRequest: PduHandler;
  getBulkRequest: PduHandler;
  setRequest: PduHandler;
}

export interface MibRequestError {
  errorStatus: number;
}

/** One varbind of a request as a provider's handler sees it. */
export interface MibRequest {
  readonly oid: string;
  readonly operation: number;
  /** SET only: the value, already cast to the object's type; committed after the handler's `done()`. */
  setValue?: unknown;
  /** SET only: true in the test pass, where the handler validates; absent in the commit pass. */
  testSet?: boolean;
  done(error?: MibRequestError): void;
}

export interface TableColumn {
  number: number;
  name: string;
  type: number;
  maxAccess: number;
  rowStatus?: boolean;
  constraints?: { enumeration?: Record<string, string> };
}

interface ProviderBase {
  name: string;
  oid: string;
  maxAccess: number;
  handler?: (request: MibRequest) => void;
}

export interface ScalarProvider extends ProviderBase {
  type: number;
  scalarType: number;
}

export interface TableProvider extends ProviderBase {
  type: number;
  tableColumns: TableColumn[];
  tableIndex?: { columnName: string }[];
  tableAugments?: string;
  /** `null` turns off the agent's own row creation. */
  createHandler?: null;
}

export interface Mib {
  registerProvider(provider: ScalarProvider | TableProvider): void;
  setScalarValue(name: string, value: unknown): void;
  addTableRow(name: string, row: unknown[]): void;
  deleteTableRow(name: string, rowIndex: number[]): void;
  setTableSingleCell(name: string, column: number, rowIndex: number[], value: unknown): void;
}

type SnmpErrorClass = new (...args: never[]) => SnmpError;

export interface NetSnmp {
  Version1: number;
  Version2c: number;
  ObjectType: { Integer: number; OctetString: number; Gauge: number; NoSuchObject: number; NoSuchInstance: number; EndOfMibView: number };
  /** Both directions: number → name and name → number. */
  ErrorStatus: Record<string | number, string | number> & {
    GeneralError: number;
    ResourceUnavailable: number;
    CommitFailed: number;
    WrongValue: number;
    InconsistentValue: number;
    NotWritable: number;
  };
  PduType: { Trap: number; InformRequest: number; TrapV2: number; SetRequest: number };
  TrapType: { LinkDown: number; LinkUp: number };
  MibProviderType: { Scalar: number; Table: number };
  MaxAccess: Record<'not-accessible' | 'read-only' | 'read-write' | 'read-create', number>;
  RowStatus: Record<'active' | 'createAndGo' | 'createAndWait', number>;
  RequestTimedOutError: SnmpErrorClass;
  RequestFailedError: SnmpErrorClass;
  ResponseInvalidError: SnmpErrorClass;
  isVarbindError(varbind: Varbind): boolean;
  createSession(target: string, community: string, options: SessionOptions): Session;
  /** On an error the notification is absent. */
  createReceiver(options: ReceiverOptions, callback: (error: SnmpError | null, notification?: Notification) => void): Receiver;
  createAgent(options: AgentOptions, callback: (error: SnmpError | null, data: unknown) => void): Agent;
}

/** net-snmp as the package at `from` (its `import.meta.url`) resolves it. */
export function loadNetSnmp(from: string | URL): NetSnmp {
  return createRequire(from)('net-snmp') as NetSnmp;
}
