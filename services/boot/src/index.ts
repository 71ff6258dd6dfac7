export { startBootService, BootEntryBody, type BootService, type BootServiceOptions, type BootRequestRecord } from './boot-service.ts';
export { BootStore, type BootRecord, type PutOutcome } from './boot-store.ts';
export { renderChainScript } from './chain-script.ts';
export { dhcpHostLine, dnsmasqSnippet, DHCP_TAG } from './dnsmasq.ts';
export { canonicalMac } from './mac.ts';
export { bootConfigSchema, type BootConfig } from './config.ts';
