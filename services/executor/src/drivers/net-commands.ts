/** Network commands through each switch's driver (SNMP Q-BRIDGE-MIB), one driver per switch. */
import { DriverError, SnmpNetDriver, type NetDriver, type PortSettings, type StepResult } from '@firebreak/drivers';
import { PortState, type Inventory, type NetCommand } from '@firebreak/shared';
import { z } from 'zod';
import type { Execution } from '../command-runner.ts';
import { lockedStep, switchDevice, type DeviceChanges } from './device-changes.ts';
import { DriverCache, type DeviceOptions } from './driver-cache.ts';
import { untilDone } from './until-done.ts';

export class NetCommands {
  private readonly drivers: DriverCache<NetDriver>;

  constructor(
    inventory: Inventory,
    private readonly changes: DeviceChanges,
    options: DeviceOptions = {},
  ) {
    const switches = new Map(inventory.switches.map((s) => [s.id, s]));
    this.drivers = new DriverCache('switch', (id) => {
      const sw = switches.get(id);
      return sw
        ? SnmpNetDriver.fromInventory(sw, {
            ...(options.requestTimeoutMs !== undefined && { timeoutMs: options.requestTimeoutMs }),
            ...(options.env !== undefined && { env: options.env }),
          })
        : undefined;
    });
  }

  async execute(command: NetCommand, signal: AbortSignal): Promise<Execution> {
    const driver = await this.drivers.get(command.switch);
    const port = { switch: command.switch, port: command.port };
    const label = `switch ${command.switch} port ${command.port} (host ${command.host})`;
    const device = switchDevice(command.switch);
    let change: (held: AbortSignal) => Promise<StepResult>;
    switch (command.action) {
      case 'read': {
        // A port's state is three reads (its scalars, then two VLAN table walks of several pages each), so it is
        // read under the switch's lock like a change: it then shows the port before or after another executor's
        // change to it, never egress lists from before and untagged lists from after, which a restore would make
        // real. That serialises reads of one switch with each other too; drills read a few ports, once each.
        const read = lockedStep(this.changes, device, command, signal, async (held) => ({ done: true, message: 'read', observed: { ...(await driver.read(port, held)) } }));
        return { observed: portStateOf(label, (await read()).observed) };
      }
      case 'access':
        change = (held) => driver.setAccessVlan(port, command.vlan, held);
        break;
      case 'trunk':
        change = (held) => driver.setTrunk(port, command.vlans, command.nativeVlan, held);
        break;
      case 'shut':
        change = (held) => driver.shutPort(port, held);
        break;
      case 'no-shut':
        change = (held) => driver.openPort(port, held);
        break;
      case 'restore':
        change = (held) => driver.restorePort(port, settingsOf(command.state), held);
        break;
    }
    // The driver read the port back to say the state holds; read it again only if it did not report what it found.
    const done = await untilDone(lockedStep(this.changes, device, command, signal, change), signal);
    const observed = done.observed ?? { ...(await driver.read(port, signal)) };
    // A restore reports what a read reports, so the planner can hold the two side by side.
    return { observed: command.action === 'restore' ? portStateOf(label, observed) : observed };
  }

  close(): Promise<void> {
    return this.drivers.close();
  }
}

/** The commands' PortState as the driver takes it. */
function settingsOf(state: PortState): PortSettings {
  return { admin: state.admin, pvid: state.pvid, vlans: state.vlans.map((v) => v.vlan), untagged: state.vlans.filter((v) => v.untagged).map((v) => v.vlan) };
}

/** What the SNMP driver reports of a port (its PortState, or a step's observed). */
const DriverPort = z.object({ admin: z.enum(['up', 'down']), pvid: z.number(), vlans: z.array(z.number()), untagged: z.array(z.number()) });

/** The driver's read of a port as the commands' PortState; a port in a state no restore could set again is an error, not a lossy read. */
function portStateOf(label: string, observed: unknown): PortState {
  const read = DriverPort.safeParse(observed);
  if (!read.success) throw DriverError.permanent(`${label}: the switch driver reported no port state (${JSON.stringify(observed)})`);
  const { admin, pvid, vlans, untagged } = read.data;
  const carried = new Set(vlans);
  const stray = untagged.filter((v) => !carried.has(v));
  if (stray.length > 0) {
    throw DriverError.permanent(
      `${label} is in the untagged lists of VLAN(s) [${stray.join(', ')}] but not in their egress lists (it carries [${vlans.join(', ')}]): no restore can set that state again; fix the port on the switch first`,
    );
  }
  const sent = new Set(untagged);
  const state = PortState.safeParse({ admin, pvid, vlans: [...carried].sort((a, b) => a - b).map((vlan) => ({ vlan, untagged: sent.has(vlan) })) });
  if (!state.success) throw DriverError.permanent(`${label}: the switch reports a port state that is not one (PVID ${pvid}, VLANs [${vlans.join(', ')}]): ${state.error.issues[0]?.message ?? 'invalid'}`);
  return state.data;
}
