export * from './servers.ts';
export { freePort } from '../embedded-servers.ts';
export * from './otlp-receiver.ts';
export * from './samples.ts';
export * from './wait-for.ts';
export { freeUdpPort } from '../free-udp-port.ts';
