/**
 * The boot entries, kept on disk as the files their consumers read: the iPXE
 * script the service serves (`ipxe/<mac>.ipxe`) and the dhcp-host line
 * dnsmasq reads (`dhcp-hosts/<mac>`). The scripts are the source of truth,
 * loaded at start; every write lands whole (temp file, then rename) so
 * neither the service after a crash nor dnsmasq's inotify ever reads half a
 * file. Temp names start with "." because dnsmasq skips those.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseBootScript, renderBootScript, sameBootAttach, type BootScript, type Logger } from '@firebreak/shared';
import { dhcpHostLine } from './dnsmasq.ts';
import { canonicalMac } from './mac.ts';

export type BootRecord = BootScript;

export type PutOutcome = 'created' | 'updated' | 'unchanged';

const SCRIPT_SUFFIX = '.ipxe';

export class BootStore {
  readonly scriptsDir: string;
  readonly hostsDir: string;
  private readonly records = new Map<string, BootRecord>();
  /** Writes run one at a time so memory and disk agree on the last one. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {
    this.scriptsDir = join(dir, 'ipxe');
    this.hostsDir = join(dir, 'dhcp-hosts');
  }

  static async open(dir: string, logger?: Logger): Promise<BootStore> {
    const store = new BootStore(dir);
    await mkdir(store.scriptsDir, { recursive: true });
    await mkdir(store.hostsDir, { recursive: true });
    await store.load(logger);
    return store;
  }

  get(mac: string): BootRecord | undefined {
    return this.records.get(mac);
  }

  list(): BootRecord[] {
    return [...this.records.values()].sort((a, b) => a.mac.localeCompare(b.mac));
  }

  /** `script` is what the service serves for the record's MAC. */
  script(mac: string): string | undefined {
    const record = this.records.get(mac);
    return record && renderBootScript(record);
  }

  put(record: BootRecord): Promise<PutOutcome> {
    return this.serial(async () => {
      const current = this.records.get(record.mac);
      if (current && sameRecord(current, record)) return 'unchanged';
      // DHCP entry first: a crash in between leaves no script, so the entry reads as absent and is written again.
      await this.writeHostLine(record.mac);
      await writeAtomic(this.scriptsDir, `${record.mac}${SCRIPT_SUFFIX}`, renderBootScript(record));
      this.records.set(record.mac, { ...record });
      return current ? 'updated' : 'created';
    });
  }

  /** True when there was an entry to delete. */
  delete(mac: string): Promise<boolean> {
    return this.serial(async () => {
      // DHCP entry first: a crash in between leaves the script, so the entry reads as present and is deleted again.
      await rm(join(this.hostsDir, mac), { force: true });
      await rm(join(this.scriptsDir, `${mac}${SCRIPT_SUFFIX}`), { force: true });
      return this.records.delete(mac);
    });
  }

  /** Resolves once every write asked for so far has landed on disk. */
  async settled(): Promise<void> {
    await this.queue;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeHostLine(mac: string): Promise<void> {
    const line = dhcpHostLine(mac);
    const existing = await readFile(join(this.hostsDir, mac), 'utf8').catch(() => undefined);
    // An unchanged file is not rewritten: each rewrite makes dnsmasq add the record again.
    if (existing !== line) await writeAtomic(this.hostsDir, mac, line);
  }

  private async load(logger: Logger | undefined): Promise<void> {
    for (const name of await readdir(this.scriptsDir)) {
      const path = join(this.scriptsDir, name);
      if (name.startsWith('.')) {
        // A temp file from a write that never reached its rename.
        await rm(path, { force: true });
        continue;
      }
      const mac = name.endsWith(SCRIPT_SUFFIX) ? canonicalMac(name.slice(0, -SCRIPT_SUFFIX.length)) : undefined;
      if (mac === undefined || name !== `${mac}${SCRIPT_SUFFIX}`) {
        logger?.warn({ path }, 'ignoring a file that is not named <mac>.ipxe');
        continue;
      }
      try {
        this.records.set(mac, { mac, ...parseBootScript(await readFile(path, 'utf8')) });
      } catch (err) {
        logger?.warn({ path, err: (err as Error).message }, 'ignoring a boot script that is not a Firebreak boot script; its host will not boot from the network');
      }
    }
    for (const name of await readdir(this.hostsDir)) {
      // Temp files, and entries whose script is gone (a crash between the two writes of a put).
      if (name.startsWith('.') || !this.records.has(name)) await rm(join(this.hostsDir, name), { force: true });
    }
    for (const mac of this.records.keys()) await this.writeHostLine(mac);
  }
}

function sameRecord(a: BootRecord, b: BootRecord): boolean {
  return a.server === b.server && a.image === b.image && a.imageUrl === b.imageUrl && sameBootAttach(a.attach, b.attach);
}

async function writeAtomic(dir: string, name: string, content: string): Promise<void> {
  const temp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, content, { flush: true });
    await rename(temp, join(dir, name));
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
