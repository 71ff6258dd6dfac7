/** Power commands through each host's BMC driver (Redfish), one driver per BMC kept for reuse. */
import { DriverError, RedfishPowerDriver, type PowerDriver, type StepResult } from '@firebreak/drivers';
import type { Host, Inventory, PowerCommand } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';

export class PowerCommands {
  private readonly hosts: Map<string, Host>;
  private readonly drivers = new Map<string, Promise<PowerDriver>>();

  constructor(inventory: Inventory, private readonly options: { requestTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
    this.hosts = new Map(inventory.hosts.map((h) => [h.id, h]));
  }

  deviceOf(command: PowerCommand): string {
    return `bmc:${this.host(command.host).bmc.address}`;
  }

  async execute(command: PowerCommand, signal: AbortSignal): Promise<Execution> {
    const driver = await this.driver(command.host);
    switch (command.action) {
      case 'on':
      case 'off':
        await untilDone(() => driver.ensurePower(command.action === 'on' ? 'on' : 'off', signal), signal);
        break;
      case 'pxe-once':
        await untilDone(() => driver.setNextBootPxe(signal), signal);
        break;
      case 'status':
        break;
    }
    const status = await driver.status(signal);
    return { observed: { powerState: status.powerState, health: status.health } };
  }

  async close(): Promise<void> {
    for (const d of this.drivers.values()) await (await d.catch(() => undefined))?.close();
  }

  private host(id: string): Host {
    const host = this.hosts.get(id);
    if (!host) throw DriverError.permanent(`no host "${id}" in the inventory`);
    return host;
  }

  private driver(hostId: string): Promise<PowerDriver> {
    let driver = this.drivers.get(hostId);
    if (!driver) {
      const bmc = this.host(hostId).bmc;
      driver = RedfishPowerDriver.fromInventory(bmc, {
        ...(this.options.requestTimeoutMs !== undefined && { requestTimeoutMs: this.options.requestTimeoutMs }),
        ...(this.options.env !== undefined && { env: this.options.env }),
      });
      this.drivers.set(hostId, driver);
      driver.catch(() => this.drivers.delete(hostId));
    }
    return driver;
  }
}

/** Issuing a command is not completing it: step until the driver says the state holds. */
async function untilDone(step: () => Promise<StepResult>, signal: AbortSignal): Promise<void> {
  for (;;) {
    const result = await step();
    if (result.done) return;
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, result.retryAfterMs ?? 200));
  }
}
