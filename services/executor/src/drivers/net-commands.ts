/** Network commands through each switch's driver (SNMP Q-BRIDGE-MIB), one driver per switch. */
import { SnmpNetDriver, type NetDriver, type StepResult } from '@firebreak/drivers';
import type { Inventory, NetCommand } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';
import { DriverCache, type DeviceOptions } from './driver-cache.ts';
import { untilDone } from './until-done.ts';

export class NetCommands {
  private readonly drivers: DriverCache<NetDriver>;

  constructor(inventory: Inventory, options: DeviceOptions = {}) {
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
    let step: () => Promise<StepResult>;
    switch (command.action) {
      case 'access':
        step = () => driver.setAccessVlan(port, command.vlan, signal);
        break;
      case 'trunk':
        step = () => driver.setTrunk(port, command.vlans, command.nativeVlan, signal);
        break;
      case 'shut':
        step = () => driver.shutPort(port, signal);
        break;
      case 'no-shut':
        step = () => driver.openPort(port, signal);
        break;
    }
    // The driver read the port back to say the state holds; read it again only if it did not report what it found.
    const done = await untilDone(step, signal);
    return { observed: done.observed ?? { ...(await driver.read(port, signal)) } };
  }

  close(): Promise<void> {
    return this.drivers.close();
  }
}
