/**
 * One driver per device, made on first use and kept (BMC sessions, SNMP
 * sessions are worth reusing). A driver that failed to build is forgotten,
 * so the next command tries again, e.g. after credentials were fixed.
 */
import { DriverError, type Driver } from '@firebreak/drivers';

/** How every kind's device drivers are made. */
export interface DeviceOptions {
  /** Per request to a device, within the command's deadline. */
  requestTimeoutMs?: number;
  /** Where credentials references resolve; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export class DriverCache<D extends Driver> {
  private readonly drivers = new Map<string, Promise<D>>();

  /** @param what names the device kind in errors, e.g. "storage array". */
  constructor(
    private readonly what: string,
    private readonly create: (id: string) => Promise<D> | undefined,
  ) {}

  get(id: string): Promise<D> {
    let driver = this.drivers.get(id);
    if (!driver) {
      const made = this.create(id);
      if (!made) return Promise.reject(DriverError.permanent(`no ${this.what} "${id}" in the inventory`));
      driver = made;
      this.drivers.set(id, driver);
      driver.catch(() => this.drivers.delete(id));
    }
    return driver;
  }

  async close(): Promise<void> {
    for (const driver of this.drivers.values()) await (await driver.catch(() => undefined))?.close();
    this.drivers.clear();
  }
}
