/** Routes each command kind to the drivers for its devices. */
import { ProcessDeviceLocks, type Command, type DeviceLocking, type Inventory } from '@firebreak/shared';
import type { CommandDrivers, Execution } from '../command-runner.ts';
import { BootCommands } from './boot-commands.ts';
import { arrayDevice, switchDevice, type DeviceChanges } from './device-changes.ts';
import type { DeviceOptions } from './driver-cache.ts';
import { NetCommands } from './net-commands.ts';
import { PowerCommands } from './power-commands.ts';
import { StorageCommands } from './storage-commands.ts';
import { VmCommands } from './vm-commands.ts';

export interface CommandDriverOptions extends DeviceOptions {
  /** FB_BOOT_SERVICE_URL; without it boot commands fail permanently, saying so. */
  bootServiceUrl?: string;
  /**
   * Serialise changes to one switch or array across every executor: the
   * store's `deviceLocks`. Without it (tests, one executor), only within
   * this process.
   */
  deviceLocks?: DeviceLocking;
  /** This executor, named in the device locks it holds. */
  executorId?: string;
}

export class InventoryCommandDrivers implements CommandDrivers {
  readonly power: PowerCommands;
  readonly storage: StorageCommands;
  readonly net: NetCommands;
  readonly boot: BootCommands;
  readonly vm: VmCommands;

  constructor(inventory: Inventory, options: CommandDriverOptions = {}) {
    const { bootServiceUrl, deviceLocks, executorId, ...deviceOptions } = options;
    const changes: DeviceChanges = { locks: deviceLocks ?? new ProcessDeviceLocks(), executorId: executorId ?? 'executor' };
    this.power = new PowerCommands(inventory, deviceOptions);
    this.storage = new StorageCommands(inventory, changes, deviceOptions);
    this.net = new NetCommands(inventory, changes, deviceOptions);
    this.boot = new BootCommands(inventory, {
      ...(bootServiceUrl !== undefined && { bootServiceUrl }),
      ...(options.requestTimeoutMs !== undefined && { requestTimeoutMs: options.requestTimeoutMs }),
    });
    this.vm = new VmCommands(inventory, deviceOptions);
  }

  deviceOf(command: Command): string {
    switch (command.kind) {
      case 'power':
        return this.power.deviceOf(command);
      case 'net':
        return switchDevice(command.switch);
      case 'storage':
        return arrayDevice(command.array);
      case 'boot':
        return 'boot-service';
      case 'vm':
        return `hypervisor:${command.hypervisor}`;
    }
  }

  execute(command: Command, signal: AbortSignal): Promise<Execution> {
    switch (command.kind) {
      case 'power':
        return this.power.execute(command, signal);
      case 'storage':
        return this.storage.execute(command, signal);
      case 'net':
        return this.net.execute(command, signal);
      case 'boot':
        return this.boot.execute(command, signal);
      case 'vm':
        return this.vm.execute(command, signal);
    }
  }

  async close(): Promise<void> {
    await this.power.close();
    await this.storage.close();
    await this.net.close();
    await this.boot.close();
    await this.vm.close();
  }
}
