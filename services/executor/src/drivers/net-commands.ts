/** Network commands through each switch's driver (SNMP Q-BRIDGE-MIB), one driver per switch. */
import { DriverError, SnmpNetDriver, type NetDriver, type StepResult } from '@firebreak/drivers';
import type { Inventory, NetCommand, Switch } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';
import { untilDone } from './until-done.ts';

export class NetCommands {
  private readonly switches: Map<string, Switch>;
  private readonly drivers = new Map<string, Promise<NetDriver>>();

  constructor(inventory: Inventory, private readonly options: { requestTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
    this.switches = new Map(inventory.switches.map((s) => [s.id, s]));
  }

  async execute(command: NetCommand, signal: AbortSignal): Promise<Execution> {
    const driver = await this.driver(command.switch);
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
    await untilDone(step, signal);
    return { observed: { ...(await driver.read(port, signal)) } };
  }

  async close(): Promise<void> {
    for (const d of this.drivers.values()) await (await d.catch(() => undefined))?.close();
  }

  private driver(switchId: string): Promise<NetDriver> {
    let driver = this.drivers.get(switchId);
    if (!driver) {
      const sw = this.switches.get(switchId);
      if (!sw) return Promise.reject(DriverError.permanent(`no switch "${switchId}" in the inventory`));
      driver = SnmpNetDriver.fromInventory(sw, {
        ...(this.options.requestTimeoutMs !== undefined && { timeoutMs: this.options.requestTimeoutMs }),
        ...(this.options.env !== undefined && { env: this.options.env }),
      });
      this.drivers.set(switchId, driver);
      driver.catch(() => this.drivers.delete(switchId));
    }
    return driver;
  }
}
