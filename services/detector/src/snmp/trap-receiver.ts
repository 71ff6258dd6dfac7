/**
 * Receives the switches' SNMP linkDown/linkUp notifications (v2c traps and
 * informs, and v1 generic traps) and names the host behind the port through
 * the inventory. A port going down is often the first sign of a dead host:
 * the switch sees carrier loss before three heartbeats have been missed.
 *
 * Anything else arriving on the port (garbage, a wrong community, SNMPv3
 * without a user) is counted and dropped; the receiver keeps going.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { inventoryIndex, resolveCredentials, switchPortKey, type Inventory, type Logger, type Switch } from '@firebreak/shared';
import { loadNetSnmp, type Notification, type SnmpError, type Varbind } from '@firebreak/shared/net-snmp';

const snmp = loadNetSnmp(import.meta.url);

export const trapOids = {
  /** SNMPv2-MIB snmpTrapOID.0: which notification a v2 trap is. */
  snmpTrapOid: '1.3.6.1.6.3.1.1.4.1.0',
  linkDown: '1.3.6.1.6.3.1.1.5.3',
  linkUp: '1.3.6.1.6.3.1.1.5.4',
  /** IF-MIB ifIndex column; the instance is `<ifIndex>.<n>` = switch port n. */
  ifIndex: '1.3.6.1.2.1.2.2.1.1',
} as const;

export interface LinkEvent {
  /** The inventory host cabled to the port, null when no host is. */
  host: string | null;
  switch: string;
  port: number;
  state: 'up' | 'down';
  /** When the trap arrived (epoch ms). */
  at: number;
}

export interface TrapStats {
  /** Notifications accepted (right community, parsed), of any kind. */
  received: number;
  linkDown: number;
  linkUp: number;
  /** Link notifications from no inventory switch, or for a port no host is cabled to. */
  unmapped: number;
  /** Packets that were not SNMP, not a notification, or a link notification without an ifIndex. */
  malformed: number;
  /** Well-formed packets with a community (or v3 user) this receiver does not accept. */
  refused: number;
}

export interface TrapReceiverOptions {
  /** UDP port to listen on; 0 picks a free one (see `TrapReceiver.port`). */
  port: number;
  address?: string;
  inventory: Inventory;
  /** Accepted v1/v2c communities; when none are given, every inventory switch's (`switchCommunities`). */
  communities?: readonly string[];
  /** Where `env:` credential references are looked up when resolving the switches' communities. */
  env?: NodeJS.ProcessEnv;
  onLink(event: LinkEvent): void;
  logger?: Logger;
}

export interface TrapReceiver {
  readonly port: number;
  stats(): TrapStats;
  stop(): Promise<void>;
}

/** Distinct sources logged at warn level per kind of trouble; the rest go to debug, so a flood cannot flood the log. */
const MAX_NOTED_SOURCES = 1_024;

/** The communities of every inventory switch (`credentialsRef` → `community`); switches without one are skipped. */
export async function switchCommunities(inventory: Inventory, env?: NodeJS.ProcessEnv): Promise<string[]> {
  const resolved = await Promise.all(inventory.switches.map((sw) => resolveCredentials(sw.credentialsRef, env)));
  const communities = resolved.map((c) => c.community?.reveal()).filter((c): c is string => c !== undefined && c !== '');
  return [...new Set(communities)];
}

export async function startTrapReceiver(options: TrapReceiverOptions): Promise<TrapReceiver> {
  const { inventory, onLink, logger } = options;
  const address = options.address ?? '127.0.0.1';
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new RangeError(`trap receiver: port must be 0-65535, got ${options.port}`);
  }
  const communities = options.communities?.length ? options.communities : await switchCommunities(inventory, options.env);
  if (communities.length === 0) throw new RangeError('trap receiver: no community to accept (no inventory switch has one)');

  const stats: TrapStats = { received: 0, linkDown: 0, linkUp: 0, unmapped: 0, malformed: 0, refused: 0 };
  const senderOf = senderIndex(inventory.switches);
  const { switchPortToHost } = inventoryIndex(inventory);
  const noted = new Set<string>();
  const note = (kind: string, from: string, fields: Record<string, unknown>, message: string): void => {
    const key = `${kind} ${from}`;
    const first = !noted.has(key) && noted.size < MAX_NOTED_SOURCES;
    if (first) noted.add(key);
    if (first) logger?.warn({ from, ...fields }, message);
    else logger?.debug({ from, ...fields }, message);
  };

  const onNotification = ({ pdu, rinfo }: Notification): void => {
    stats.received++;
    const state = linkStateOf(pdu);
    if (state === undefined) return;
    const from = `${rinfo.address}:${rinfo.port}`;
    const port = ifIndexOf(pdu.varbinds);
    if (port === undefined) {
      stats.malformed++;
      note('no-ifindex', from, {}, 'snmp link trap without an ifIndex varbind; dropped');
      return;
    }
    if (state === 'down') stats.linkDown++;
    else stats.linkUp++;
    const sw = senderOf(rinfo.address, rinfo.port);
    if (sw === undefined) {
      stats.unmapped++;
      note('unknown-switch', from, { port }, 'snmp link trap from no inventory switch; dropped');
      return;
    }
    const host = switchPortToHost.get(switchPortKey(sw.id, port))?.id ?? null;
    if (host === null) {
      stats.unmapped++;
      note('unknown-port', from, { switch: sw.id, port }, 'snmp link trap for a port no inventory host is cabled to');
    }
    onLink({ host, switch: sw.id, port, state, at: Date.now() });
  };

  const onBadPacket = (error: SnmpError, rinfo: RemoteInfo): void => {
    const from = `${rinfo.address}:${rinfo.port}`;
    // RequestFailedError is net-snmp's "no such community / user"; its message quotes what the sender sent, so only the name is logged.
    if (error.name === 'RequestFailedError') {
      stats.refused++;
      note('refused', from, { reason: error.name }, 'snmp packet with a community this receiver does not accept; dropped');
    } else {
      stats.malformed++;
      note('malformed', from, { reason: error.name }, 'malformed snmp packet; dropped');
    }
  };

  const sockets: UdpSocket[] = [];
  const receiver = snmp.createReceiver(
    {
      port: options.port,
      address,
      dgramModule: {
        createSocket: (type) => {
          const socket = createSocket(type);
          // net-snmp binds `port || 162`, which turns "any free port" into 162: bind the port asked for.
          const bind = socket.bind.bind(socket);
          socket.bind = ((_port: number, bindAddress: string) => bind(options.port, bindAddress)) as UdpSocket['bind'];
          sockets.push(socket);
          return socket;
        },
      },
    },
    (error, notification) => {
      // Runs inside the socket's message handler: a throw here would take the process down.
      try {
        if (error?.rinfo !== undefined) onBadPacket(error, error.rinfo);
        else if (error) logger?.error({ err: error.message }, 'snmp trap receiver socket error');
        else if (notification) onNotification(notification);
      } catch (err) {
        logger?.error({ err }, 'snmp trap handling failed');
      }
    },
  );
  for (const community of communities) receiver.getAuthorizer().addCommunity(community);
  const [socket] = sockets;
  if (socket === undefined) throw new Error('trap receiver: net-snmp opened no socket');
  try {
    await once(socket, 'listening');
  } catch (err) {
    receiver.close();
    throw new Error(`trap receiver: cannot listen on udp ${address}:${options.port} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  const { port } = socket.address();
  logger?.info({ address, port, switches: inventory.switches.length }, 'snmp trap receiver listening');

  let stopped: Promise<void> | undefined;
  return {
    port,
    stats: () => ({ ...stats }),
    stop() {
      stopped ??= new Promise((resolve) => receiver.close(() => resolve()));
      return stopped;
    },
  };
}

/** 'down' / 'up' for a link notification, undefined for any other. */
function linkStateOf(pdu: Notification['pdu']): 'up' | 'down' | undefined {
  if (pdu.type === snmp.PduType.Trap) {
    if (pdu.generic === snmp.TrapType.LinkDown) return 'down';
    if (pdu.generic === snmp.TrapType.LinkUp) return 'up';
    return undefined;
  }
  const trapOid = pdu.varbinds.find((vb) => vb.oid === trapOids.snmpTrapOid)?.value;
  if (trapOid === trapOids.linkDown) return 'down';
  if (trapOid === trapOids.linkUp) return 'up';
  return undefined;
}

/** The port a link notification is about: its ifIndex varbind (value, else the instance suffix). */
function ifIndexOf(varbinds: readonly Varbind[]): number | undefined {
  const vb = varbinds.find((v) => v.oid.startsWith(`${trapOids.ifIndex}.`));
  if (vb === undefined) return undefined;
  const n = typeof vb.value === 'number' ? vb.value : Number(vb.oid.slice(trapOids.ifIndex.length + 1));
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

/** `host:port`, `[v6]:port` or a bare host (port 161). */
function splitAddress(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address);
  return match?.[1] !== undefined ? { host: match[1], port: Number(match[2]) } : { host: address.replace(/^\[|\]$/g, ''), port: 161 };
}

/**
 * Which switch sent a trap. The exact `ip:port` first: an agent that sends
 * from its own socket (as the lab's switches do) is named by its source port
 * even when several agents share an address. Else the IP, when exactly one
 * switch has it: real switches send traps from an ephemeral port.
 */
function senderIndex(switches: readonly Switch[]): (ip: string, port: number) => Switch | undefined {
  const byEndpoint = new Map<string, Switch>();
  const byIp = new Map<string, Switch[]>();
  for (const sw of switches) {
    const { host, port } = splitAddress(sw.address);
    byEndpoint.set(`${host}:${port}`, sw);
    byIp.set(host, [...(byIp.get(host) ?? []), sw]);
  }
  return (ip, port) => {
    const exact = byEndpoint.get(`${ip}:${port}`);
    if (exact !== undefined) return exact;
    const candidates = byIp.get(ip);
    return candidates?.length === 1 ? candidates[0] : undefined;
  };
}
