export * from './driver.ts';
export * from './driver-error.ts';
export * from './power/redfish-errors.ts';
export * from './power/redfish-client.ts';
export * from './power/redfish.driver.ts';
export * from './storage/san-rest.driver.ts';
export * from './net/snmp.driver.ts';
