/**
 * Boot commands through the boot service (per-MAC iPXE scripts and DHCP
 * entries). One boot service per executor, so one driver, made on first use:
 * an executor without a boot service still runs every other kind.
 */
import { BootServiceDriver, DriverError, type BootEntry, type StepResult } from '@firebreak/drivers';
import type { BootCommand, BootEntryObserved, Inventory } from '@firebreak/shared';
import type { Execution } from '../command-runner.ts';
import { untilDone } from './until-done.ts';

export interface BootCommandsOptions {
  /** The boot service's base URL (FB_BOOT_SERVICE_URL). */
  bootServiceUrl?: string;
  requestTimeoutMs?: number;
}

export class BootCommands {
  private readonly imageUrls: Map<string, string>;
  private driver: BootServiceDriver | undefined;

  constructor(
    inventory: Inventory,
    private readonly options: BootCommandsOptions = {},
  ) {
    this.imageUrls = new Map(inventory.images.map((i) => [i.id, i.url]));
  }

  async execute(command: BootCommand, signal: AbortSignal): Promise<Execution> {
    const driver = this.boot();
    // A read is one GET of what a booting host would get; entries are per MAC, so nothing to serialise against.
    if (command.action === 'read') return { observed: observedOf(await driver.read(command.mac, signal)) };
    if (command.action === 'restore') {
      // The entry as it was read, imageUrl included: not looked up in today's inventory, which may have moved on.
      const { entry } = command;
      const wanted: BootEntry | undefined = entry === null ? undefined : { server: entry.server, image: entry.image, imageUrl: entry.imageUrl, ...(entry.attach && { attach: entry.attach }) };
      const done = await untilDone(() => driver.restore(command.mac, wanted, signal), signal);
      return { observed: done.observed ?? observedOf(await driver.read(command.mac, signal)) };
    }
    let step: () => Promise<StepResult>;
    if (command.action === 'configure') {
      const imageUrl = this.imageUrls.get(command.image);
      if (imageUrl === undefined) {
        throw DriverError.permanent(`boot ${command.host} (${command.mac}): image "${command.image}" is not in the inventory's images; add it there with its url`);
      }
      const entry: BootEntry = { server: command.server, image: command.image, imageUrl, ...(command.attach && { attach: command.attach }) };
      step = () => driver.configure(command.mac, entry, signal);
    } else {
      step = () => driver.clear(command.mac, signal);
    }
    const done = await untilDone(step, signal);
    if (done.observed !== undefined) return { observed: done.observed };
    const served = await driver.read(command.mac, signal);
    if (served === undefined) return { observed: { cleared: true } };
    return { observed: { server: served.server, image: served.image, ...(served.attach && { attach: served.attach }) } };
  }

  close(): Promise<void> {
    return this.driver?.close() ?? Promise.resolve();
  }

  private boot(): BootServiceDriver {
    if (this.driver) return this.driver;
    const url = this.options.bootServiceUrl;
    if (url === undefined || url === '') throw DriverError.permanent('no boot service configured: set FB_BOOT_SERVICE_URL');
    this.driver = BootServiceDriver.fromUrl(url, {
      ...(this.options.requestTimeoutMs !== undefined && { requestTimeoutMs: this.options.requestTimeoutMs }),
    });
    return this.driver;
  }
}

/** What a boot read or restore reports: the served entry, or null. */
function observedOf(served: BootEntry | undefined): BootEntryObserved {
  if (served === undefined) return { entry: null };
  return { entry: { server: served.server, image: served.image, imageUrl: served.imageUrl, ...(served.attach && { attach: served.attach }) } };
}
