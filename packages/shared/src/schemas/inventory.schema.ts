import { z } from 'zod';
import { Arch, CredentialsRef, Id, Initiator, Mac, PriorityTier, VlanId } from './common.schema.ts';

// Every object is strict: a misspelled optional field (`bareMetalOnyl: false`)
// would otherwise be dropped in silence and its default used instead.

export const Nic = z.strictObject({
  mac: Mac,
  switch: Id,
  port: z.number().int().min(1),
});
export type Nic = z.infer<typeof Nic>;

export const Hba = z.strictObject({
  initiator: Initiator,
  /** The storage fabric this HBA is attached to; a LUN is reachable only on its own fabric. */
  fabric: Id,
});
export type Hba = z.infer<typeof Hba>;

export const TlsPolicy = z.strictObject({
  /** Verify the BMC's certificate; turning this off is an explicit per-BMC opt-out. */
  verify: z.boolean().default(true),
  caBundle: z.string().min(1).optional(),
});

export const Bmc = z.strictObject({
  driver: z.string().min(1).default('redfish'),
  /** host:port or URL of the management endpoint. */
  address: z.string().min(1),
  systemId: z.string().min(1).optional(),
  auth: z.enum(['session', 'basic', 'auto']).default('auto'),
  credentialsRef: CredentialsRef,
  tls: TlsPolicy.default({ verify: true }),
});
export type Bmc = z.infer<typeof Bmc>;

/** How to reach the hypervisor a host runs once converted. */
export const HypervisorEndpoint = z.strictObject({
  /** `libvirt` (virsh against `uri`) or `lab` (the lab's hypervisor simulation over HTTP). */
  driver: z.string().min(1).default('libvirt'),
  /** A libvirt connection URI (qemu+tls://r1-h3.mgmt/system) or the lab's hypervisor URL. */
  uri: z.string().min(1),
  credentialsRef: CredentialsRef.optional(),
});
export type HypervisorEndpoint = z.infer<typeof HypervisorEndpoint>;

export const HostRole = z.enum(['production', 'spare', 'repurposable', 'hypervisor']);
export type HostRole = z.infer<typeof HostRole>;

/** Low-priority work a repurposable host runs and may lose to a recovery. */
export const Workload = z.strictObject({
  name: z.string().min(1),
  /** Higher number = less important; preempted first. */
  priority: z.number().int().min(0).max(9),
});

export const Host = z.strictObject({
  id: Id,
  site: Id,
  rack: Id,
  pdu: Id.optional(),
  tor: Id.optional(),
  arch: Arch,
  cpus: z.number().int().positive(),
  memoryGiB: z.number().positive(),
  nics: z.array(Nic).min(1, 'a host needs at least one NIC'),
  hba: Hba.optional(),
  bmc: Bmc,
  role: HostRole,
  workload: Workload.optional(),
  hypervisorCapable: z.boolean().default(false),
  hypervisor: HypervisorEndpoint.optional(),
});
export type Host = z.infer<typeof Host>;

export const Server = z.strictObject({
  id: Id,
  image: Id,
  vlans: z.array(VlanId).min(1, 'a server needs at least one VLAN'),
  luns: z.array(Id).default([]),
  cpus: z.number().int().positive(),
  memoryGiB: z.number().positive(),
  arch: Arch,
  priority: PriorityTier,
  bareMetalOnly: z.boolean().default(false),
  antiAffinity: Id.optional(),
  rtoSeconds: z.number().positive().default(900),
});
export type Server = z.infer<typeof Server>;

export const Assignment = z.discriminatedUnion('mode', [
  z.strictObject({ server: Id, mode: z.literal('bare-metal'), host: Id }),
  /** The server runs as a VM named after it on this hypervisor host. */
  z.strictObject({ server: Id, mode: z.literal('vm'), hypervisor: Id }),
]);
export type Assignment = z.infer<typeof Assignment>;

export const Rack = z.strictObject({
  id: Id,
  site: Id,
  pdu: Id.optional(),
  tor: Id.optional(),
});
export type Rack = z.infer<typeof Rack>;

export const Switch = z.strictObject({
  id: Id,
  /** Switches in one fabric can carry the same VLANs to each other. */
  fabric: Id,
  driver: z.string().min(1).default('snmp'),
  address: z.string().min(1),
  credentialsRef: CredentialsRef,
});
export type Switch = z.infer<typeof Switch>;

export const Vlan = z.strictObject({
  id: VlanId,
  name: z.string().min(1),
  fabric: Id,
  /** Isolated VLAN used by drills in place of this one. */
  drillVlan: VlanId.optional(),
});
export type Vlan = z.infer<typeof Vlan>;

export const StorageArray = z.strictObject({
  id: Id,
  fabric: Id,
  driver: z.string().min(1),
  address: z.string().min(1),
  credentialsRef: CredentialsRef.optional(),
});
export type StorageArray = z.infer<typeof StorageArray>;

export const Lun = z.strictObject({
  id: Id,
  array: Id,
  sizeGiB: z.number().positive(),
});
export type Lun = z.infer<typeof Lun>;

export const Image = z.strictObject({
  id: Id,
  arch: Arch,
  /** Kernel/initrd or iPXE chain target the boot service points hosts at. */
  url: z.string().min(1),
  hypervisor: z.boolean().default(false),
});
export type Image = z.infer<typeof Image>;

export const Inventory = z.strictObject({
  version: z.literal(1),
  racks: z.array(Rack).min(1),
  switches: z.array(Switch).default([]),
  vlans: z.array(Vlan).default([]),
  storageArrays: z.array(StorageArray).default([]),
  luns: z.array(Lun).default([]),
  images: z.array(Image).default([]),
  hosts: z.array(Host).min(1),
  servers: z.array(Server).default([]),
  assignments: z.array(Assignment).default([]),
});
export type Inventory = z.infer<typeof Inventory>;
export type InventoryInput = z.input<typeof Inventory>;
