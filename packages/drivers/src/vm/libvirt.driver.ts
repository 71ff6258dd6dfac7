/**
 * VMs on one hypervisor through libvirt, by running `virsh -c <uri>` (inventory
 * `hypervisor: { driver: 'libvirt', uri }`, e.g. `qemu+tls://r1-h03.mgmt/system`).
 * Reads are `domstate` and `dumpxml --inactive`; changes are `define` (the
 * XML from a private temp file), `start`, `destroy` and `undefine`, each preceded by a
 * read and followed by reading the state back.
 *
 * Credentials: TLS certificates and SSH keys live on the executor host, as
 * libvirt expects. A `credentialsRef` (SASL username and password) is written
 * to a private libvirt auth file for the driver's lifetime and passed to
 * virsh with LIBVIRT_AUTH_FILE, never on a command line.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCredentials, type Credentials, type Host } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { DomainVmDriver, type DomainRead, type DomainState, type DomainVmDriverOptions } from './domain-vm-driver.ts';
import { classifyVirshFailure, runVirsh, scrubUri, type VirshOutput, type VirshRunOptions } from './virsh.ts';

/** Inventory `hypervisor.driver` values this driver speaks for. */
export const LIBVIRT_DRIVERS: readonly string[] = ['libvirt'];

export interface LibvirtVmDriverOptions extends DomainVmDriverOptions {
  /** libvirt connection URI. */
  uri: string;
  /** The hypervisor host's inventory id, for messages. */
  host?: string;
  /** The reference the credentials came from, for messages. */
  credentialsRef?: string;
  /** `resolveCredentials(credentialsRef)`: SASL username and password. */
  credentials?: Credentials;
  /** The virsh binary; default `virsh` from PATH. */
  virsh?: string;
  /** Per virsh invocation, within the caller's signal. Default 30 s. */
  commandTimeoutMs?: number;
  /** Environment virsh runs with; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

export class LibvirtVmDriver extends DomainVmDriver {
  readonly name = 'libvirt';
  readonly #uri: string;
  readonly #host: string | undefined;
  readonly #credentialsRef: string | undefined;
  readonly #credentials: Credentials | undefined;
  readonly #virsh: string;
  readonly #timeoutMs: number;
  readonly #env: NodeJS.ProcessEnv;
  /** Holds the auth file and domain XML on its way to virsh; removed by close(). */
  #dir: Promise<string> | undefined;

  constructor(options: LibvirtVmDriverOptions) {
    super(options);
    this.#uri = options.uri;
    this.#host = options.host;
    this.#credentialsRef = options.credentialsRef;
    this.#credentials = options.credentials;
    this.#virsh = options.virsh ?? 'virsh';
    this.#timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#env = options.env ?? process.env;
  }

  /** The driver for a host's `hypervisor` entry; resolves its `credentialsRef` (if any). */
  static async fromInventory(
    host: Host,
    options: Omit<LibvirtVmDriverOptions, 'uri' | 'host' | 'credentials' | 'credentialsRef'> & { credentialsEnv?: NodeJS.ProcessEnv } = {},
  ): Promise<LibvirtVmDriver> {
    const endpoint = host.hypervisor;
    if (endpoint === undefined) throw DriverError.permanent(`host ${host.id}: no hypervisor endpoint in the inventory (hypervisor: { driver, uri })`);
    if (!LIBVIRT_DRIVERS.includes(endpoint.driver)) {
      throw DriverError.permanent(`host ${host.id}: hypervisor driver "${endpoint.driver}" is not one this driver speaks (${LIBVIRT_DRIVERS.join(', ')})`);
    }
    const { credentialsEnv, ...rest } = options;
    const ref = endpoint.credentialsRef;
    const credentials = ref === undefined ? undefined : await resolveCredentials(ref, credentialsEnv);
    return new LibvirtVmDriver({
      ...rest,
      uri: endpoint.uri,
      host: host.id,
      ...(ref !== undefined && { credentialsRef: ref }),
      ...(credentials !== undefined && { credentials }),
    });
  }

  async validate(): Promise<void> {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(this.#uri)) {
      throw DriverError.permanent(`${this.where}: "${scrubUri(this.#uri)}" is not a libvirt URI (expected e.g. qemu+tls://host/system)`);
    }
    this.#authFileText();
  }

  async close(): Promise<void> {
    const dir = this.#dir;
    this.#dir = undefined;
    if (dir !== undefined) await rm(await dir, { recursive: true, force: true }).catch(() => undefined);
  }

  protected get where(): string {
    const uri = `libvirt ${scrubUri(this.#uri)}`;
    return this.#host === undefined ? uri : `hypervisor ${this.#host} (${uri})`;
  }

  protected async readState(name: string, signal: AbortSignal): Promise<DomainState | undefined> {
    const out = await this.#run(['domstate', '--domain', name], signal);
    if (out.code !== 0) {
      if (classifyVirshFailure(out.stderr) === 'not-found') return undefined;
      throw this.#failure('domstate', name, out);
    }
    return stateOf(out.stdout);
  }

  protected async readDomain(name: string, signal: AbortSignal): Promise<DomainRead | undefined> {
    const state = await this.readState(name, signal);
    if (state === undefined) return undefined;
    const out = await this.#run(['dumpxml', '--inactive', '--domain', name], signal);
    if (out.code !== 0) {
      if (classifyVirshFailure(out.stderr) === 'not-found') return undefined;
      throw this.#failure('dumpxml', name, out);
    }
    return { state, xml: out.stdout };
  }

  protected async defineDomain(name: string, xml: string, signal: AbortSignal): Promise<void> {
    // A file, not /dev/stdin: Node's stdin "pipe" is a socket, which virsh cannot open by path.
    const file = join(await this.#privateDir(), `${name}-${randomBytes(4).toString('hex')}.xml`);
    await writeFile(file, xml, { mode: 0o600 });
    try {
      const out = await this.#run(['define', '--validate', file], signal);
      if (out.code !== 0) throw this.#failure('define', name, out);
    } finally {
      await rm(file, { force: true });
    }
  }

  protected startDomain(name: string, signal: AbortSignal): Promise<void> {
    return this.#change(['start', '--domain', name], name, signal);
  }

  protected resumeDomain(name: string, signal: AbortSignal): Promise<void> {
    return this.#change(['resume', '--domain', name], name, signal);
  }

  protected destroyDomain(name: string, signal: AbortSignal): Promise<void> {
    return this.#change(['destroy', '--domain', name], name, signal);
  }

  protected undefineDomain(name: string, signal: AbortSignal): Promise<void> {
    // Managed-save images and snapshot metadata would otherwise make libvirt refuse.
    return this.#change(['undefine', '--managed-save', '--snapshots-metadata', '--domain', name], name, signal);
  }

  /** A change whose "already so" or "gone meanwhile" answers are left to the read-back. */
  async #change(args: string[], name: string, signal: AbortSignal): Promise<void> {
    const out = await this.#run(args, signal);
    if (out.code === 0) return;
    const failure = classifyVirshFailure(out.stderr);
    if (failure === 'already') return;
    if (failure === 'not-found' && args[0] !== 'start') return;
    throw this.#failure(args[0] ?? 'virsh', name, out);
  }

  #failure(verb: string, name: string, out: VirshOutput): DriverError {
    const said = out.stderr || `exit code ${out.code}`;
    const what = `vm ${name} on ${this.where}: virsh ${verb}`;
    switch (classifyVirshFailure(out.stderr)) {
      case 'unreachable':
        return DriverError.transient(`${what}: libvirt not reachable: ${said}`);
      case 'refused': {
        const creds = this.#credentialsRef === undefined ? 'no credentialsRef configured' : `credentials ${this.#credentialsRef}`;
        return DriverError.permanent(`${what}: connection refused by libvirt (${creds}; check the URI, TLS/SSH set-up and access rights): ${said}`);
      }
      case 'not-found':
        return DriverError.permanent(`${what}: not defined; define it first: ${said}`);
      default:
        return DriverError.permanent(`${what}: ${said}`);
    }
  }

  async #run(args: string[], signal: AbortSignal): Promise<VirshOutput> {
    const env = await this.#virshEnv();
    const options: VirshRunOptions = { binary: this.#virsh, uri: this.#uri, timeoutMs: this.#timeoutMs, env };
    return runVirsh(options, args, signal);
  }

  #privateDir(): Promise<string> {
    this.#dir ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'fb-virsh-'));
      const auth = this.#authFileText();
      if (auth !== undefined) await writeFile(join(dir, 'auth.conf'), auth, { mode: 0o600 });
      return dir;
    })();
    return this.#dir;
  }

  async #virshEnv(): Promise<NodeJS.ProcessEnv> {
    if (this.#authFileText() === undefined) return this.#env;
    return { ...this.#env, LIBVIRT_AUTH_FILE: join(await this.#privateDir(), 'auth.conf') };
  }

  /** libvirt's auth.conf for the URI's host (and any other), or undefined without credentials. */
  #authFileText(): string | undefined {
    if (this.#credentialsRef === undefined) return undefined;
    const { username, password } = this.#credentials ?? {};
    if (username === undefined || password === undefined) {
      throw DriverError.permanent(`${this.where}: credentials ${this.#credentialsRef} need a username and a password (libvirt SASL)`);
    }
    if (/[\r\n]/.test(username) || /[\r\n]/.test(password.reveal())) {
      throw DriverError.permanent(`${this.where}: credentials ${this.#credentialsRef} contain a line break, which libvirt's auth file cannot hold`);
    }
    const hostname = /^[a-z][\w+.-]*:\/\/(?:[^@/?#]*@)?([^:/?#]*)/i.exec(this.#uri)?.[1] || 'localhost';
    return [
      '[credentials-firebreak]',
      `authname=${username}`,
      `password=${password.reveal()}`,
      '',
      `[auth-libvirt-${hostname}]`,
      'credentials=firebreak',
      '',
      '[auth-libvirt-default]',
      'credentials=firebreak',
      '',
    ].join('\n');
  }
}

/** `virsh domstate` words: active states count as running, `shut off` and `crashed` as stopped. */
function stateOf(stdout: string): DomainState {
  const word = stdout.trim().split('\n')[0]?.trim() ?? '';
  if (word === 'shut off' || word === 'crashed') return 'stopped';
  if (word === 'paused') return 'paused';
  return 'running';
}
