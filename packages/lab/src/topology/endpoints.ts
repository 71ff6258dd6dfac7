/**
 * Where the generated inventory says each device listens and which secret it
 * uses. The lab passes callbacks to put in real ports and credential files;
 * the defaults are fixed example ports on 127.0.0.1 and env: references.
 */
export interface TopologyAddresses {
  /** One Redfish endpoint per rack (host:port); every host of the rack is a system on it. */
  bmc(rackId: string): string;
  /** The SNMP agent (host:port, UDP) of a top-of-rack switch. */
  switch(switchId: string): string;
  /** A storage array's HTTP API (a URL). */
  san(arrayId: string): string;
  /** Image URLs are `${imageBase}/images/<id>.ipxe`. */
  imageBase: string;
  /** The lab's hypervisor API (a URL); a hypervisor-capable host's endpoint is `${hypervisorBase}/hypervisors/<host id>`. */
  hypervisorBase: string;
}

export interface TopologyCredentials {
  bmc(rackId: string): string;
  switch(switchId: string): string;
  san(arrayId: string): string;
}

/** The generator's view: defaults need the device's index, callbacks only its id. */
export interface Endpoints {
  bmc(rackId: string, rackIndex: number): string;
  switch(switchId: string, rackIndex: number): string;
  san(arrayId: string, arrayIndex: number): string;
  imageBase: string;
  /** The `hypervisor.uri` of a hypervisor-capable host. */
  hypervisor(hostId: string): string;
  credentials: TopologyCredentials;
}

export const defaultCredentials: TopologyCredentials = {
  bmc: () => 'env:FB_LAB_BMC_CREDENTIALS',
  switch: () => 'env:FB_LAB_SNMP_CREDENTIALS',
  san: () => 'env:FB_LAB_SAN_CREDENTIALS',
};

export const defaultImageBase = 'http://127.0.0.1:8080';
export const defaultHypervisorBase = 'http://127.0.0.1:50000';

export function resolveEndpoints(
  addresses: Partial<TopologyAddresses> = {},
  credentials: Partial<TopologyCredentials> = {},
): Endpoints {
  return {
    bmc: addresses.bmc ?? ((_, rackIndex) => `127.0.0.1:${20_000 + rackIndex}`),
    switch: addresses.switch ?? ((_, rackIndex) => `127.0.0.1:${30_000 + rackIndex}`),
    san: addresses.san ?? ((_, arrayIndex) => `http://127.0.0.1:${40_000 + arrayIndex}`),
    imageBase: (addresses.imageBase ?? defaultImageBase).replace(/\/+$/, ''),
    hypervisor: (hostId) => `${(addresses.hypervisorBase ?? defaultHypervisorBase).replace(/\/+$/, '')}/hypervisors/${hostId}`,
    credentials: { ...defaultCredentials, ...credentials },
  };
}
