/** Storage commands through each array's driver (zoning / LUN masking), one driver per array. */
import { DriverError, SanRestStorageDriver, type StepResult, type StorageDriver } from '@firebreak/drivers';
import type { Inventory, StorageArray, StorageCommand } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';
import { untilDone } from './until-done.ts';

export class StorageCommands {
  private readonly arrays: Map<string, StorageArray>;
  private readonly drivers = new Map<string, Promise<StorageDriver>>();

  constructor(inventory: Inventory, private readonly options: { requestTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
    this.arrays = new Map(inventory.storageArrays.map((a) => [a.id, a]));
  }

  async execute(command: StorageCommand, signal: AbortSignal): Promise<Execution> {
    const driver = await this.driver(command.array);
    let step: () => Promise<StepResult>;
    switch (command.action) {
      case 'grant':
        step = () => driver.grant(command.lun, command.initiator, signal);
        break;
      case 'revoke':
        step = () => driver.revoke(command.lun, command.initiator, signal);
        break;
      case 'revoke-all':
        step = () => driver.revokeAll(command.initiator, signal);
        break;
      case 'clone':
        step = () => driver.clone(command.lun, command.cloneId, signal);
        break;
      case 'delete-clone':
        step = () => driver.deleteClone(command.cloneId, signal);
        break;
    }
    await untilDone(step, signal);
    if (command.action === 'grant' || command.action === 'revoke') {
      return { observed: { visible: await driver.canSee(command.initiator, command.lun, signal) } };
    }
    if (command.action === 'revoke-all') return { observed: { luns: await driver.list(command.initiator, signal) } };
    return {};
  }

  async close(): Promise<void> {
    for (const d of this.drivers.values()) await (await d.catch(() => undefined))?.close();
  }

  private driver(arrayId: string): Promise<StorageDriver> {
    let driver = this.drivers.get(arrayId);
    if (!driver) {
      const array = this.arrays.get(arrayId);
      if (!array) return Promise.reject(DriverError.permanent(`no storage array "${arrayId}" in the inventory`));
      driver = SanRestStorageDriver.fromInventory(array, {
        ...(this.options.requestTimeoutMs !== undefined && { requestTimeoutMs: this.options.requestTimeoutMs }),
        ...(this.options.env !== undefined && { env: this.options.env }),
      });
      this.drivers.set(arrayId, driver);
      driver.catch(() => this.drivers.delete(arrayId));
    }
    return driver;
  }
}
