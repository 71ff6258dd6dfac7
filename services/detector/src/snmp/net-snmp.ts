/**
 * Typed view of the part of `net-snmp` the detector uses: the notification
 * receiver. The package is CommonJS and ships no type declarations; loading it
 * through `require` keeps these types local instead of declaring the module
 * for the whole program (the lab does the same for its own needs, and the
 * detector may not import the lab at run time).
 */
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { createRequire } from 'node:module';

export interface Varbind {
  oid: string;
  type: number;
  value: unknown;
}

/** What the receiver's callback gets for a packet it refused; `rinfo` names the sender. */
export interface SnmpError extends Error {
  rinfo?: RemoteInfo;
}

/** A trap or inform as the receiver parsed it; v1 traps carry `generic`/`specific`. */
export interface Notification {
  pdu: { type: number; varbinds: Varbind[]; generic?: number; specific?: number };
  rinfo: RemoteInfo;
}

export interface Receiver {
  getAuthorizer(): { addCommunity(community: string): void };
  close(callback?: () => void): void;
}

export interface ReceiverOptions {
  port: number;
  address: string;
  /** Makes the receiver's socket, so the caller can wait for it to listen. */
  dgramModule: { createSocket(type: 'udp4' | 'udp6'): UdpSocket };
}

interface NetSnmp {
  PduType: { Trap: number; InformRequest: number; TrapV2: number };
  TrapType: { LinkDown: number; LinkUp: number };
  createReceiver(options: ReceiverOptions, callback: (error: SnmpError | null, notification?: Notification) => void): Receiver;
}

export const snmp = createRequire(import.meta.url)('net-snmp') as NetSnmp;
