/** VM commands through each hypervisor host's driver (libvirt, or the lab's hypervisors), one driver per host. */
import { DriverError, LabHypervisorVmDriver, LAB_HYPERVISOR_DRIVERS, LibvirtVmDriver, LIBVIRT_DRIVERS, type StepResult, type VmDriver } from '@firebreak/drivers';
import type { Inventory, VmCommand } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';
import { DriverCache, type DeviceOptions } from './driver-cache.ts';
import { untilDone } from './until-done.ts';

export class VmCommands {
  private readonly drivers: DriverCache<VmDriver>;

  constructor(inventory: Inventory, options: DeviceOptions = {}) {
    const hosts = new Map(inventory.hosts.map((h) => [h.id, h]));
    this.drivers = new DriverCache('hypervisor host', (id) => {
      const host = hosts.get(id);
      if (!host) return undefined;
      const driver = host.hypervisor?.driver;
      if (driver !== undefined && LAB_HYPERVISOR_DRIVERS.includes(driver)) {
        return Promise.resolve(LabHypervisorVmDriver.fromInventory(host, options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}));
      }
      if (driver === undefined || LIBVIRT_DRIVERS.includes(driver)) {
        return LibvirtVmDriver.fromInventory(host, {
          ...(options.requestTimeoutMs !== undefined && { commandTimeoutMs: options.requestTimeoutMs }),
          ...(options.env !== undefined && { credentialsEnv: options.env }),
        });
      }
      return Promise.reject(
        DriverError.permanent(`host ${id}: hypervisor driver "${driver}" is not one Firebreak knows (${[...LIBVIRT_DRIVERS, ...LAB_HYPERVISOR_DRIVERS].join(', ')})`),
      );
    });
  }

  async execute(command: VmCommand, signal: AbortSignal): Promise<Execution> {
    const driver = await this.drivers.get(command.hypervisor);
    let step: () => Promise<StepResult>;
    switch (command.action) {
      case 'define': {
        const spec = { name: command.vm, ...command.spec };
        step = () => driver.define(spec, signal);
        break;
      }
      case 'start':
        step = () => driver.start(command.vm, signal);
        break;
      case 'stop':
        step = () => driver.stop(command.vm, signal);
        break;
      case 'undefine':
        step = () => driver.undefine(command.vm, signal);
        break;
    }
    const done = await untilDone(step, signal);
    return { observed: done.observed ?? { state: await driver.state(command.vm, signal) } };
  }

  close(): Promise<void> {
    return this.drivers.close();
  }
}
