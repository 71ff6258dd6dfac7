/**
 * One switch's SNMP v2c agent: net-snmp's agent bound to the switch's own
 * address, answering from a SwitchMib that mirrors the world, and sending the
 * switch's traps from that same socket, so that a receiver sees them come from
 * the switch's address as it would from a real switch.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import type { Switch } from '@firebreak/shared';
import type { World } from '../world.ts';
import { snmp, type Agent, type PduHandler, type RequestMessage, type SessionSocket, type SnmpError, type Varbind } from './net-snmp.ts';
import { SwitchMib, type VlanTableRow } from './switch-mib.ts';
import { parseUdpAddress, type UdpAddress } from './udp-address.ts';

export interface SwitchAgent {
  readonly switchId: string;
  readonly address: string;
  /** Sends an SNMPv2c trap from the agent's address. */
  sendTrap(receiver: UdpAddress, oid: string, varbinds: Varbind[]): Promise<void>;
  /** The VLAN static table the agent would serve now. */
  vlanTable(): VlanTableRow[];
  close(): Promise<void>;
}

export async function startSwitchAgent(world: World, sw: Switch, community: string): Promise<SwitchAgent> {
  const { host, port } = parseUdpAddress(sw.address);
  const opened: UdpSocket[] = [];
  const dgramModule = {
    createSocket: (type: 'udp4' | 'udp6'): UdpSocket => {
      const created = createSocket(type);
      opened.push(created);
      return created;
    },
  };
  const onError = (error: SnmpError | null): void => {
    if (!error) return;
    // A request the agent would not serve: wrong community (no answer, as on a real switch) or a malformed packet.
    world.recorder.record('switch', error.rinfo ? 'refused' : 'agent-error', {
      detail: {
        switch: sw.id,
        reason: error.rinfo ? error.name : error.message,
        ...(error.rinfo && { from: `${error.rinfo.address}:${error.rinfo.port}` }),
      },
    });
  };
  const agent = snmp.createAgent({ port, address: host, dgramModule }, onError);
  // Requests held back by the switch's extra latency; dropped unanswered when the agent closes.
  const delayed = new Set<NodeJS.Timeout>();
  const [socket] = opened;
  if (!socket) throw new Error(`lab: net-snmp's agent for switch ${sw.id} opened no socket`);
  let mib: SwitchMib;
  try {
    agent.getAuthorizer().addCommunity(community);
    mib = new SwitchMib(world, sw, agent.getMib());
    syncBeforeEachRequest(agent, mib, world, sw.id, delayed);
    await once(socket, 'listening');
  } catch (err) {
    agent.close();
    throw new Error(`lab: switch ${sw.id} cannot serve SNMP on udp ${sw.address}: ${(err as Error).message}`, { cause: err });
  }

  // Traps leave through the agent's own socket; the session only borrows it to send.
  const borrowed: SessionSocket = {
    send: (msg, offset, length, toPort, toHost, callback) => socket.send(msg, offset, length, toPort, toHost, callback),
    on: () => borrowed,
    ref: () => borrowed,
    unref: () => borrowed,
    bind: () => borrowed,
    close: () => borrowed,
  };
  return {
    switchId: sw.id,
    address: sw.address,
    sendTrap: (receiver, oid, varbinds) =>
      new Promise((resolve, reject) => {
        const session = snmp.createSession(receiver.host, community, {
          version: snmp.Version2c,
          trapPort: receiver.port,
          dgramModule: { createSocket: () => borrowed },
        });
        session.trap(oid, varbinds, (error) => (error ? reject(error) : resolve()));
      }),
    vlanTable: () => mib.vlanTable(),
    close: () => {
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
      return new Promise((resolve) => agent.close(() => resolve()));
    },
  };
}

/**
 * The agent answers from its MIB tree, so the tree is refreshed from the world
 * before each PDU is dispatched; a SET also gets its new VLAN rows first. A
 * request that fails here goes unanswered and is recorded, rather than
 * throwing out of the socket's message handler and taking the lab down. With
 * the switch's extra latency set, a request is served (read or applied, then
 * answered) only that long (plus its jitter) after it arrived.
 */
function syncBeforeEachRequest(agent: Agent, mib: SwitchMib, world: World, switchId: string, delayed: Set<NodeJS.Timeout>): void {
  const behaviour = world.switchBehaviour(switchId);
  const guard = (serve: PduHandler, prepare: (message: RequestMessage) => void): PduHandler => (socket, message, rinfo) => {
    const handle = (): void => {
      try {
        mib.sync();
        prepare(message);
        serve(socket, message, rinfo);
      } catch (err) {
        world.recorder.record('switch', 'agent-error', { detail: { switch: switchId, reason: String(err) } });
      }
    };
    const delayMs = behaviour.extraLatencyMs + Math.random() * behaviour.jitterMs;
    if (delayMs <= 0) return handle();
    const timer = setTimeout(() => {
      delayed.delete(timer);
      handle();
    }, delayMs);
    delayed.add(timer);
  };
  const countGet = (): void => world.recorder.record('switch', 'get', { countOnly: true });
  agent.getRequest = guard(agent.getRequest.bind(agent), countGet);
  agent.getNextRequest = guard(agent.getNextRequest.bind(agent), countGet);
  agent.getBulkRequest = guard(agent.getBulkRequest.bind(agent), countGet);
  agent.setRequest = guard(agent.setRequest.bind(agent), (message) => mib.prepareSet(message.pdu.varbinds));
}
