/**
 * The lab's switches over SNMP: one v2c agent per inventory switch at the
 * switch's address, with the community its credentials name, and
 * linkDown/linkUp traps to the configured receivers whenever the world says a
 * port's operational status changed (an SNMP SET, a burned rack, a flap).
 */
import { CredentialsError, resolveCredentials, type Switch } from '@firebreak/shared';
import type { LinkState, PortRuntime, World } from '../world.ts';
import { linkTrap } from './link-trap.ts';
import { startSwitchAgent, type SwitchAgent } from './switch-agent.ts';
import type { VlanTableRow } from './switch-mib.ts';
import { parseUdpAddress, type UdpAddress } from './udp-address.ts';

export interface SwitchSimulatorOptions {
  /** Where linkDown/linkUp traps go, as `host:port`. */
  trapReceivers?: readonly string[];
  /** Where `env:` credential references are looked up; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface SwitchSimulator {
  readonly agents: readonly { switchId: string; address: string }[];
  /** Replaces the trap receivers (`host:port`); traps already sent are not repeated. */
  setTrapReceivers(targets: readonly string[]): void;
  /** The switch's VLAN database and port lists, as its agent would serve dot1qVlanStaticTable now. */
  vlanTable(switchId: string): VlanTableRow[];
  stop(): Promise<void>;
}

export async function startSwitchSimulator(world: World, options: SwitchSimulatorOptions = {}): Promise<SwitchSimulator> {
  let receivers = parseReceivers(options.trapReceivers ?? []);
  const started = await Promise.allSettled(
    world.inventory.switches.map(async (sw) => startSwitchAgent(world, sw, await communityOf(sw, options.env))),
  );
  const agents = new Map<string, SwitchAgent>();
  for (const result of started) if (result.status === 'fulfilled') agents.set(result.value.switchId, result.value);
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all([...agents.values()].map((agent) => agent.close()));
    throw failed.reason;
  }

  const onLink = (port: PortRuntime, state: LinkState): void => {
    const agent = agents.get(port.switchId);
    if (!agent) return;
    const trap = linkTrap(port);
    for (const receiver of receivers) {
      const detail = { switch: port.switchId, port: port.port, receiver: `${receiver.host}:${receiver.port}` };
      const host = port.hostId ?? undefined;
      agent.sendTrap(receiver, trap.oid, trap.varbinds).then(
        () => world.recorder.record('switch', state === 'down' ? 'trap-link-down' : 'trap-link-up', { host, detail }),
        (err: unknown) => world.recorder.record('switch', 'trap-failed', { host, detail: { ...detail, error: String(err) } }),
      );
    }
  };
  world.on('link', onLink);

  return {
    agents: [...agents.values()].map(({ switchId, address }) => ({ switchId, address })),
    setTrapReceivers(targets) {
      receivers = parseReceivers(targets);
    },
    vlanTable(switchId) {
      const agent = agents.get(switchId);
      if (!agent) throw new Error(`lab: no switch "${switchId}"`);
      return agent.vlanTable();
    },
    async stop() {
      world.off('link', onLink);
      await Promise.all([...agents.values()].map((agent) => agent.close()));
    },
  };
}

async function communityOf(sw: Switch, env: NodeJS.ProcessEnv | undefined): Promise<string> {
  const credentials = await resolveCredentials(sw.credentialsRef, env);
  if (!credentials.community) throw new CredentialsError(`credentials ${sw.credentialsRef} of switch ${sw.id}: no SNMP community`);
  return credentials.community.reveal();
}

function parseReceivers(targets: readonly string[]): UdpAddress[] {
  return targets.map(parseUdpAddress);
}
