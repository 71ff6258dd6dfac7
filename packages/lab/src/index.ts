export * from './world.ts';
export * from './recorder.ts';
export * from './faults.ts';
export * from './control-api.ts';
export * from './lab.ts';
export { captureDeviceSnapshot, serializeDeviceSnapshot, canonicalJson } from './device-snapshot.ts';
export type {
  DeviceSnapshot,
  DeviceSources,
  HostSnapshot,
  SwitchSnapshot,
  PortSnapshot,
  VlanSnapshot,
  ArraySnapshot,
  LunSnapshot,
  DomainSnapshot,
} from './device-snapshot.ts';
export { diffDeviceSnapshots } from './device-snapshot-diff.ts';
export * from './topology/index.ts';
export { startBmcSimulator } from './redfish/bmc-simulator.ts';
export { startSwitchSimulator } from './snmp/switch-simulator.ts';
export { startSanSimulator } from './san/san-simulator.ts';
export { startHostSimulator } from './hosts/host-simulator.ts';
export { startHypervisorSimulator, LabHypervisors } from './hypervisor/hypervisor-simulator.ts';
export { LabApiError } from './api-http.ts';
export type { BmcSimulator, BmcSimulatorOptions, BmcEndpoint } from './redfish/bmc-simulator.ts';
export type { SwitchSimulator } from './snmp/switch-simulator.ts';
export type { SanSimulator } from './san/san-simulator.ts';
export type { HostSimulator } from './hosts/host-simulator.ts';
export type { HypervisorSimulator, HypervisorSimulatorOptions, LabDomain, DomainRunState, GuestPhase } from './hypervisor/hypervisor-simulator.ts';
export type { LabDomainSpec } from './hypervisor/domain-xml.ts';
