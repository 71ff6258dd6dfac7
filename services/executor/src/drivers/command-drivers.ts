/**
 * Routes each command kind to its driver. Kinds whose drivers have not landed
 * yet fail permanently with a clear reason instead of pretending to work.
 */
import { DriverError } from '@firebreak/drivers';
import type { Command, Inventory } from '@firebreak/shared';
import type { CommandDrivers, Execution } from '../command-runner.ts';
import { NetCommands } from './net-commands.ts';
import { PowerCommands } from './power-commands.ts';
import { StorageCommands } from './storage-commands.ts';

export class InventoryCommandDrivers implements CommandDrivers {
  readonly power: PowerCommands;
  readonly storage: StorageCommands;
  readonly net: NetCommands;

  constructor(inventory: Inventory, options: { requestTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
    this.power = new PowerCommands(inventory, options);
    this.storage = new StorageCommands(inventory, options);
    this.net = new NetCommands(inventory, options);
  }

  deviceOf(command: Command): string {
    switch (command.kind) {
      case 'power':
        return this.power.deviceOf(command);
      case 'net':
        return `switch:${command.switch}`;
      case 'storage':
        return `array:${command.array}`;
      case 'boot':
        return 'boot-service';
      case 'vm':
        return `hypervisor:${command.hypervisor}`;
    }
  }

  execute(command: Command, signal: AbortSignal): Promise<Execution> {
    if (command.kind === 'power') return this.power.execute(command, signal);
    if (command.kind === 'storage') return this.storage.execute(command, signal);
    if (command.kind === 'net') return this.net.execute(command, signal);
    return Promise.reject(DriverError.permanent(`this executor has no ${command.kind} driver yet`));
  }

  async close(): Promise<void> {
    await this.power.close();
    await this.storage.close();
    await this.net.close();
  }
}
