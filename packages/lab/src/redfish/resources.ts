/**
 * Redfish resources rendered from the world's host runtime. Pure functions:
 * every GET shows the world as it is now, so a power change made by a fault
 * or another simulator is what the next read returns.
 */
import { createHash } from 'node:crypto';
import type { HostRuntime } from '../world.ts';

export const ROOT = '/redfish/v1';
export const SESSIONS = `${ROOT}/SessionService/Sessions`;
export const resetTypes = ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart'] as const;
export type ResetType = (typeof resetTypes)[number];
export const bootTargets = ['None', 'Pxe', 'Hdd'] as const;
export const bootEnabledValues = ['Disabled', 'Once', 'Continuous'] as const;

type Json = Record<string, unknown>;
const link = (id: string): Json => ({ '@odata.id': id });

/** The same UUID for the same seed at every start, as a real machine's SMBIOS UUID stays. */
export function stableUuid(seed: string): string {
  const h = createHash('sha1').update(`firebreak-lab:${seed}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A weak ETag over the representation: changes whenever anything shown changes. */
export function etagOf(resource: Json): string {
  return `W/"${createHash('sha1').update(JSON.stringify(resource)).digest('hex').slice(0, 16)}"`;
}

function collection(type: string, path: string, name: string, members: readonly string[]): Json {
  return {
    '@odata.type': `#${type}.${type}`,
    '@odata.id': path,
    Name: name,
    Members: members.map(link),
    'Members@odata.count': members.length,
  };
}

export function serviceRoot(withSessionService: boolean, uuid: string): Json {
  return {
    '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
    '@odata.id': `${ROOT}/`,
    Id: 'RootService',
    Name: 'Firebreak lab Redfish service',
    RedfishVersion: '1.17.0',
    UUID: uuid,
    Systems: link(`${ROOT}/Systems`),
    Managers: link(`${ROOT}/Managers`),
    Chassis: link(`${ROOT}/Chassis`),
    ...(withSessionService && { SessionService: link(`${ROOT}/SessionService`), Links: { Sessions: link(SESSIONS) } }),
  };
}

export function sessionService(timeoutSeconds: number): Json {
  return {
    '@odata.type': '#SessionService.v1_1_8.SessionService',
    '@odata.id': `${ROOT}/SessionService`,
    Id: 'SessionService',
    Name: 'Session Service',
    ServiceEnabled: true,
    SessionTimeout: timeoutSeconds,
    Sessions: link(SESSIONS),
  };
}

export function sessionsCollection(ids: readonly string[]): Json {
  return collection('SessionCollection', SESSIONS, 'Session Collection', ids.map((id) => `${SESSIONS}/${id}`));
}

export function session(id: string, username: string): Json {
  return { '@odata.type': '#Session.v1_6_0.Session', '@odata.id': `${SESSIONS}/${id}`, Id: id, Name: `Session ${id}`, UserName: username };
}

export const systemsCollection = (ids: readonly string[]): Json =>
  collection('ComputerSystemCollection', `${ROOT}/Systems`, 'Computer System Collection', ids.map((id) => `${ROOT}/Systems/${id}`));
export const managersCollection = (ids: readonly string[]): Json =>
  collection('ManagerCollection', `${ROOT}/Managers`, 'Manager Collection', ids.map((id) => `${ROOT}/Managers/${id}`));
export const chassisCollection = (ids: readonly string[]): Json =>
  collection('ChassisCollection', `${ROOT}/Chassis`, 'Chassis Collection', ids.map((id) => `${ROOT}/Chassis/${id}`));

/** While a reset is pending the system shows where it is heading, as many BMCs do. */
export function systemPowerState(rt: HostRuntime, pending: ResetType | undefined): string {
  if (pending === 'On' && rt.power === 'off') return 'PoweringOn';
  if ((pending === 'ForceOff' || pending === 'GracefulShutdown') && rt.power === 'on') return 'PoweringOff';
  return rt.power === 'on' ? 'On' : 'Off';
}

export function system(id: string, rt: HostRuntime, pending: ResetType | undefined): Json {
  const path = `${ROOT}/Systems/${id}`;
  const { host } = rt;
  const resource: Json = {
    '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem',
    '@odata.id': path,
    Id: id,
    Name: host.id,
    SystemType: 'Physical',
    Manufacturer: 'Firebreak Lab',
    Model: `Lab ${host.arch} server`,
    SerialNumber: `LAB-${host.id}`,
    UUID: stableUuid(`system:${host.id}`),
    HostName: rt.server ?? '',
    PowerState: systemPowerState(rt, pending),
    Status: { State: 'Enabled', Health: rt.health, HealthRollup: rt.health },
    ProcessorSummary: { LogicalProcessorCount: host.cpus },
    MemorySummary: { TotalSystemMemoryGiB: host.memoryGiB },
    Boot: {
      BootSourceOverrideTarget: rt.bootTarget,
      BootSourceOverrideEnabled: rt.bootEnabled,
      BootSourceOverrideMode: 'UEFI',
      'BootSourceOverrideTarget@Redfish.AllowableValues': bootTargets,
      'BootSourceOverrideEnabled@Redfish.AllowableValues': bootEnabledValues,
    },
    Actions: {
      '#ComputerSystem.Reset': {
        target: `${path}/Actions/ComputerSystem.Reset`,
        'ResetType@Redfish.AllowableValues': resetTypes,
      },
    },
    Links: { ManagedBy: [link(`${ROOT}/Managers/${id}`)], Chassis: [link(`${ROOT}/Chassis/${id}`)] },
  };
  return { ...resource, '@odata.etag': etagOf(resource) };
}

export function manager(id: string, rt: HostRuntime): Json {
  return {
    '@odata.type': '#Manager.v1_19_0.Manager',
    '@odata.id': `${ROOT}/Managers/${id}`,
    Id: id,
    Name: `BMC of ${rt.host.id}`,
    ManagerType: 'BMC',
    FirmwareVersion: '1.0.0-lab',
    PowerState: 'On',
    Status: { State: 'Enabled', Health: 'OK' },
    Links: { ManagerForServers: [link(`${ROOT}/Systems/${id}`)], ManagerForChassis: [link(`${ROOT}/Chassis/${id}`)] },
  };
}

export function chassis(id: string, rt: HostRuntime): Json {
  return {
    '@odata.type': '#Chassis.v1_25_0.Chassis',
    '@odata.id': `${ROOT}/Chassis/${id}`,
    Id: id,
    Name: `Chassis of ${rt.host.id}`,
    ChassisType: 'RackMount',
    PowerState: rt.power === 'on' ? 'On' : 'Off',
    Status: { State: 'Enabled', Health: rt.health },
    Location: { Placement: { Rack: rt.host.rack } },
    Links: { ComputerSystems: [link(`${ROOT}/Systems/${id}`)], ManagedBy: [link(`${ROOT}/Managers/${id}`)] },
  };
}
