/**
 * Power and next-boot control of one machine through its BMC's Redfish
 * ComputerSystem. Actions use the target and the allowable values the
 * resource advertises; every change is read back, because BMCs accept a
 * reset at once and apply it seconds later.
 */
import { resolveCredentials, type Credentials, type Host, type Logger } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { readBack } from '../read-back.ts';
import type { Health, PowerCapability, PowerDriver, PowerState, PowerStatus, StepResult } from '../driver.ts';
import { RedfishClient, loadCaBundle, type RedfishClientOptions } from './redfish-client.ts';

export interface RedfishPowerDriverOptions {
  bmc: Host['bmc'];
  /** `resolveCredentials(bmc.credentialsRef)`. */
  credentials: Credentials;
  /** PEM text or path; replaces `bmc.tls.caBundle` (the lab passes its generated CA). */
  caBundle?: string;
  /** Between PowerState reads while a change lands. Default 500 ms. */
  pollIntervalMs?: number;
  /** Longest wait for a power change to land, when the signal allows that long. Default 120 s. */
  powerWaitMs?: number;
  requestTimeoutMs?: number;
  logger?: Logger;
}

/** The ComputerSystem properties this driver reads. */
interface ComputerSystem {
  Id?: string;
  Name?: string;
  Manufacturer?: string;
  Model?: string;
  SerialNumber?: string;
  UUID?: string;
  PowerState?: string;
  Status?: { Health?: string; State?: string };
  Boot?: {
    BootSourceOverrideTarget?: string;
    BootSourceOverrideEnabled?: string;
    'BootSourceOverrideTarget@Redfish.AllowableValues'?: string[];
  };
  Actions?: {
    '#ComputerSystem.Reset'?: {
      target?: string;
      'ResetType@Redfish.AllowableValues'?: string[];
      '@Redfish.ActionInfo'?: string;
    };
  };
  '@odata.etag'?: string;
}

interface ActionInfo {
  Parameters?: { Name?: string; AllowableValues?: string[] }[];
}

export interface SystemInfo {
  id: string | undefined;
  name: string | undefined;
  manufacturer: string | undefined;
  model: string | undefined;
  serialNumber: string | undefined;
  uuid: string | undefined;
  powerState: PowerState;
  health: Health;
  bootOverride: { target: string | undefined; enabled: string | undefined };
}

const DEFAULT_POLL_MS = 500;
const DEFAULT_POWER_WAIT_MS = 120_000;
const SYSTEMS = '/redfish/v1/Systems';

function powerOf(system: ComputerSystem): PowerState {
  if (system.PowerState === 'On') return 'on';
  if (system.PowerState === 'Off') return 'off';
  return 'unknown';
}

/** The state a machine in transition is heading for. */
function headingFor(system: ComputerSystem): PowerState {
  if (system.PowerState === 'PoweringOn') return 'on';
  if (system.PowerState === 'PoweringOff') return 'off';
  return 'unknown';
}

function healthOf(system: ComputerSystem): Health {
  const health = system.Status?.Health;
  return health === 'OK' || health === 'Warning' || health === 'Critical' ? health : 'unknown';
}

/** The status a read of the system found, as `status()` reports it. */
function observedOf(system: ComputerSystem): Record<string, unknown> {
  return { powerState: powerOf(system), health: healthOf(system) };
}

function bootsPxeOnce(system: ComputerSystem): boolean {
  return system.Boot?.BootSourceOverrideTarget === 'Pxe' && system.Boot.BootSourceOverrideEnabled === 'Once';
}

export class RedfishPowerDriver implements PowerDriver {
  readonly name = 'redfish';
  readonly capabilities: readonly PowerCapability[] = ['status', 'power-on', 'power-off', 'next-boot-pxe'];
  readonly #options: RedfishPowerDriverOptions;
  readonly #pollMs: number;
  readonly #powerWaitMs: number;
  #client: Promise<RedfishClient> | undefined;
  #systemPath: Promise<string> | undefined;
  /** A reset this driver sent that has not landed yet: asking again waits for it instead of resending. */
  #pending: { target: 'on' | 'off'; at: number } | undefined;

  constructor(options: RedfishPowerDriverOptions) {
    this.#options = options;
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.#powerWaitMs = options.powerWaitMs ?? DEFAULT_POWER_WAIT_MS;
  }

  /** Resolves the BMC's `credentialsRef` and builds the driver. */
  static async fromInventory(
    bmc: Host['bmc'],
    options: Omit<RedfishPowerDriverOptions, 'bmc' | 'credentials'> & { env?: NodeJS.ProcessEnv } = {},
  ): Promise<RedfishPowerDriver> {
    const { env, ...rest } = options;
    return new RedfishPowerDriver({ ...rest, bmc, credentials: await resolveCredentials(bmc.credentialsRef, env) });
  }

  validate(): Promise<void> {
    return this.#ready().then(() => undefined);
  }

  async status(signal: AbortSignal): Promise<PowerStatus> {
    const { system } = await this.#readSystem(signal);
    return { powerState: powerOf(system), health: healthOf(system) };
  }

  /** Identity and state of the machine, as an operator checks it before trusting the inventory. */
  async systemInfo(signal: AbortSignal): Promise<SystemInfo> {
    const { system } = await this.#readSystem(signal);
    return {
      id: system.Id,
      name: system.Name,
      manufacturer: system.Manufacturer,
      model: system.Model,
      serialNumber: system.SerialNumber,
      uuid: system.UUID,
      powerState: powerOf(system),
      health: healthOf(system),
      bootOverride: { target: system.Boot?.BootSourceOverrideTarget, enabled: system.Boot?.BootSourceOverrideEnabled },
    };
  }

  async ensurePower(target: 'on' | 'off', signal: AbortSignal): Promise<StepResult> {
    const { client, path, system } = await this.#readSystem(signal);
    if (powerOf(system) === target) {
      this.#pending = undefined;
      return { done: true, message: `already ${target}`, observed: observedOf(system) };
    }
    const pending = this.#pending;
    const alreadyAsked = pending?.target === target && Date.now() - pending.at < this.#powerWaitMs;
    if (!alreadyAsked && headingFor(system) !== target) {
      // ForceOff, not GracefulShutdown: fencing needs the machine off now, whatever its OS does.
      const resetType = target === 'on' ? 'On' : 'ForceOff';
      const action = await this.#resetTarget(client, path, system, resetType, signal);
      await client.post(action, { ResetType: resetType }, signal);
      this.#pending = { target, at: Date.now() };
    }
    return this.#waitForPower(client, path, target, signal);
  }

  async setNextBootPxe(signal: AbortSignal): Promise<StepResult> {
    try {
      return await this.#setNextBootPxe(signal);
    } catch (err) {
      // 412: the system changed (a power change landed) between our read and the PATCH; read again, once.
      if (err instanceof DriverError && err.httpStatus === 412) return this.#setNextBootPxe(signal);
      throw err;
    }
  }

  async #setNextBootPxe(signal: AbortSignal): Promise<StepResult> {
    const { client, path, system, etag } = await this.#readSystem(signal);
    if (bootsPxeOnce(system)) return { done: true, message: 'next boot already PXE (once)', observed: observedOf(system) };
    if (system.Boot === undefined) throw DriverError.permanent(`redfish ${client.endpoint} ${path}: the system exposes no Boot override`);
    const allowed = system.Boot['BootSourceOverrideTarget@Redfish.AllowableValues'];
    if (allowed !== undefined && !allowed.includes('Pxe')) {
      throw DriverError.permanent(`redfish ${client.endpoint} ${path}: boot override target Pxe not allowed (allows ${allowed.join(', ')})`);
    }
    await client.patch(path, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } }, signal, etag);
    const after = await this.#readSystem(signal);
    if (bootsPxeOnce(after.system)) return { done: true, message: 'next boot set to PXE (once)', observed: observedOf(after.system) };
    const { BootSourceOverrideTarget: t, BootSourceOverrideEnabled: e } = after.system.Boot ?? {};
    return { done: false, retryAfterMs: this.#pollMs, message: `next boot PXE requested; the BMC still reports ${t ?? '?'}/${e ?? '?'}` };
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#systemPath = undefined;
    await (await client?.catch(() => undefined))?.close();
  }

  #ready(): Promise<RedfishClient> {
    this.#client ??= this.#makeClient().catch((err: unknown) => {
      this.#client = undefined;
      throw err;
    });
    return this.#client;
  }

  async #makeClient(): Promise<RedfishClient> {
    const { bmc, credentials, logger, requestTimeoutMs } = this.#options;
    if (credentials.username === undefined || credentials.password === undefined) {
      throw DriverError.permanent(`redfish ${bmc.address}: credentials ${bmc.credentialsRef} need a username and a password`);
    }
    const caBundle = this.#options.caBundle ?? bmc.tls.caBundle;
    const options: RedfishClientOptions = {
      address: bmc.address,
      auth: bmc.auth,
      username: credentials.username,
      password: credentials.password,
      tls: { verify: bmc.tls.verify, caBundle },
      credentialsRef: bmc.credentialsRef,
      ...(requestTimeoutMs !== undefined && { requestTimeoutMs }),
      ...(logger !== undefined && { logger }),
    };
    const client = new RedfishClient(options);
    // Fail validation on an unreadable bundle rather than at the first fence.
    if (bmc.tls.verify && caBundle !== undefined) await loadCaBundle(caBundle);
    return client;
  }

  async #readSystem(signal: AbortSignal): Promise<{ client: RedfishClient; path: string; system: ComputerSystem; etag: string | undefined }> {
    const client = await this.#ready();
    const path = await this.#path(client, signal);
    const { body, headers } = await client.get<ComputerSystem>(path, signal);
    const system = typeof body === 'object' && body !== null ? body : {};
    return { client, path, system, etag: headers.etag ?? system['@odata.etag'] };
  }

  /** `bmc.systemId` (an Id or a full path, as Ironic's `redfish_system_id`), else the BMC's only system. */
  #path(client: RedfishClient, signal: AbortSignal): Promise<string> {
    const id = this.#options.bmc.systemId;
    if (id !== undefined) return Promise.resolve(id.startsWith('/') ? id : `${SYSTEMS}/${encodeURIComponent(id)}`);
    this.#systemPath ??= (async () => {
      const { body } = await client.get<{ Members?: { '@odata.id'?: string }[] }>(SYSTEMS, signal);
      const members = (body.Members ?? []).map((m) => m['@odata.id']).filter((p): p is string => typeof p === 'string');
      const [only] = members;
      if (members.length !== 1 || only === undefined) {
        throw DriverError.permanent(`redfish ${client.endpoint}: ${members.length} systems behind this BMC; set bmc.systemId`);
      }
      return only;
    })().catch((err: unknown) => {
      this.#systemPath = undefined;
      throw err;
    });
    return this.#systemPath;
  }

  /** The Reset action's target, refusing a ResetType the BMC does not advertise. */
  async #resetTarget(client: RedfishClient, path: string, system: ComputerSystem, resetType: string, signal: AbortSignal): Promise<string> {
    const action = system.Actions?.['#ComputerSystem.Reset'];
    if (action?.target === undefined) throw DriverError.permanent(`redfish ${client.endpoint} ${path}: no ComputerSystem.Reset action advertised`);
    let allowed = action['ResetType@Redfish.AllowableValues'];
    const infoPath = action['@Redfish.ActionInfo'];
    if (allowed === undefined && infoPath !== undefined) {
      const { body } = await client.get<ActionInfo>(infoPath, signal);
      allowed = body.Parameters?.find((p) => p.Name === 'ResetType')?.AllowableValues;
    }
    if (allowed !== undefined && !allowed.includes(resetType)) {
      throw DriverError.permanent(`redfish ${client.endpoint} ${path}: ResetType ${resetType} not allowed (allows ${allowed.join(', ') || 'nothing'})`);
    }
    return action.target;
  }

  /** Reads PowerState until it is `target`; the signal or powerWaitMs ending first is "not done yet", not an error. */
  async #waitForPower(client: RedfishClient, path: string, target: 'on' | 'off', signal: AbortSignal): Promise<StepResult> {
    const r = await readBack(
      async () => {
        const { body } = await client.get<ComputerSystem>(path, signal);
        return powerOf(body) === target ? { observed: observedOf(body) } : `PowerState still ${body.PowerState ?? 'absent'}`;
      },
      { pollMs: this.#pollMs, waitMs: this.#powerWaitMs, signal },
    );
    if (!r.held) return { done: false, retryAfterMs: this.#pollMs, message: `power ${target} requested; ${r.last}` };
    this.#pending = undefined;
    return { done: true, message: `power ${target} after ${r.elapsedMs} ms`, ...(r.observed && { observed: r.observed }) };
  }

}
