/** Storage commands through each array's driver (zoning / LUN masking), one driver per array. */
import { DriverError, SAN_REST_DRIVERS, SanRestStorageDriver, TGT_DRIVERS, TgtStorageDriver, type StepResult, type StorageDriver } from '@firebreak/drivers';
import type { Inventory, StorageArray, StorageCommand, StorageMasks } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';
import { arrayDevice, lockedStep, type DeviceChanges } from './device-changes.ts';
import { DriverCache, type DeviceOptions } from './driver-cache.ts';
import { untilDone } from './until-done.ts';

export class StorageCommands {
  private readonly drivers: DriverCache<StorageDriver>;

  constructor(
    inventory: Inventory,
    private readonly changes: DeviceChanges,
    options: DeviceOptions = {},
  ) {
    const arrays = new Map(inventory.storageArrays.map((a) => [a.id, a]));
    this.drivers = new DriverCache('storage array', (id) => {
      const array = arrays.get(id);
      return array ? storageDriverFor(array, options) : undefined;
    });
  }

  async execute(command: StorageCommand, signal: AbortSignal): Promise<Execution> {
    const driver = await this.drivers.get(command.array);
    if (command.action === 'masks') {
      // One request answers it and nothing is written, so no lock: masks change one member at a time, never as a whole list.
      const masks: StorageMasks = { luns: (await driver.list(command.initiator, signal)).sort() };
      return { observed: masks };
    }
    let change: (held: AbortSignal) => Promise<StepResult>;
    switch (command.action) {
      case 'grant':
        change = (held) => driver.grant(command.lun, command.initiator, held);
        break;
      case 'revoke':
        change = (held) => driver.revoke(command.lun, command.initiator, held);
        break;
      case 'revoke-all':
        change = (held) => driver.revokeAll(command.initiator, held);
        break;
      case 'clone':
        change = (held) => driver.clone(command.lun, command.cloneId, held);
        break;
      case 'delete-clone':
        change = (held) => driver.deleteClone(command.cloneId, held);
        break;
    }
    // Masks change one member at a time on the wire (PUT/DELETE of an initiator), not as a list written whole,
    // so two grants cannot undo each other; the array's changes are serialised all the same, so one step's
    // read-then-write never interleaves with another executor's on the same array.
    const step = lockedStep(this.changes, arrayDevice(command.array), command, signal, change);
    // The driver read visibility back to say the state holds; read again only if it did not report what it found.
    const done = await untilDone(step, signal);
    if (done.observed !== undefined && command.action !== 'clone' && command.action !== 'delete-clone') return { observed: done.observed };
    if (command.action === 'grant' || command.action === 'revoke') {
      return { observed: { visible: await driver.canSee(command.initiator, command.lun, signal) } };
    }
    if (command.action === 'revoke-all') return { observed: { luns: await driver.list(command.initiator, signal) } };
    return {};
  }

  close(): Promise<void> {
    return this.drivers.close();
  }
}

/** The array's inventory `driver` picks the implementation. */
function storageDriverFor(array: StorageArray, options: DeviceOptions): Promise<StorageDriver> {
  const timeout = options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {};
  if (SAN_REST_DRIVERS.includes(array.driver)) {
    return SanRestStorageDriver.fromInventory(array, { ...timeout, ...(options.env !== undefined && { env: options.env }) });
  }
  if (TGT_DRIVERS.includes(array.driver)) return TgtStorageDriver.fromInventory(array, timeout);
  const known = [...SAN_REST_DRIVERS, ...TGT_DRIVERS].join(', ');
  return Promise.reject(DriverError.permanent(`storage array ${array.id}: driver "${array.driver}" is not one Firebreak knows (${known})`));
}
