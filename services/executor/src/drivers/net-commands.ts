/** Network commands through each switch's driver (SNMP Q-BRIDGE-MIB), one driver per switch. */
import { SnmpNetDriver, type NetDriver, type StepResult } from '@firebreak/drivers';
import type { Inventory, NetCommand } from '@firebreak/shared';
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
    let change: (held: AbortSignal) => Promise<StepResult>;
    switch (command.action) {
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
    }
    // The driver read the port back to say the state holds; read it again only if it did not report what it found.
    const done = await untilDone(lockedStep(this.changes, switchDevice(command.switch), command, signal, change), signal);
    return { observed: done.observed ?? { ...(await driver.read(port, signal)) } };
  }

  close(): Promise<void> {
    return this.drivers.close();
  }
}
