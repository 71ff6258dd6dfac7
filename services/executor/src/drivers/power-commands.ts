/** Power commands through each host's BMC driver (Redfish), one driver per BMC kept for reuse. */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { DriverError, RedfishPowerDriver, type PowerDriver } from '@firebreak/drivers';
import type { Host, Inventory, PowerCommand } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';
import { DriverCache, type DeviceOptions } from './driver-cache.ts';
import { untilDone } from './until-done.ts';

const tracer = trace.getTracer('firebreak-executor');

/** One span per call to a device: which host, which BMC, what was asked. Never credentials. */
function deviceCall<T>(name: string, attributes: Record<string, string>, call: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await call();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

export class PowerCommands {
  private readonly hosts: Map<string, Host>;
  private readonly drivers: DriverCache<PowerDriver>;

  constructor(inventory: Inventory, options: DeviceOptions = {}) {
    this.hosts = new Map(inventory.hosts.map((h) => [h.id, h]));
    this.drivers = new DriverCache('host', (id) => {
      const host = this.hosts.get(id);
      return host
        ? RedfishPowerDriver.fromInventory(host.bmc, {
            ...(options.requestTimeoutMs !== undefined && { requestTimeoutMs: options.requestTimeoutMs }),
            ...(options.env !== undefined && { env: options.env }),
          })
        : undefined;
    });
  }

  deviceOf(command: PowerCommand): string {
    return `bmc:${this.host(command.host).bmc.address}`;
  }

  async execute(command: PowerCommand, signal: AbortSignal): Promise<Execution> {
    const driver = await this.drivers.get(command.host);
    const attributes = { 'firebreak.host': command.host, 'firebreak.device': this.deviceOf(command) };
    const call = <T>(action: string, fn: () => Promise<T>): Promise<T> =>
      deviceCall(`redfish ${action}`, { ...attributes, 'firebreak.device.action': action }, fn);
    let observed: Record<string, unknown> | undefined;
    switch (command.action) {
      case 'on':
      case 'off': {
        const state = command.action;
        observed = (await untilDone(() => call(`power-${state}`, () => driver.ensurePower(state, signal)), signal)).observed;
        break;
      }
      case 'pxe-once':
        observed = (await untilDone(() => call('boot-pxe-once', () => driver.setNextBootPxe(signal)), signal)).observed;
        break;
      case 'status':
        break;
    }
    // The driver's confirming read already says how the machine is; ask the BMC only when it did not.
    if (observed !== undefined) return { observed };
    const status = await call('status', () => driver.status(signal));
    return { observed: { powerState: status.powerState, health: status.health } };
  }

  close(): Promise<void> {
    return this.drivers.close();
  }

  private host(id: string): Host {
    const host = this.hosts.get(id);
    if (!host) throw DriverError.permanent(`no host "${id}" in the inventory`);
    return host;
  }
}
