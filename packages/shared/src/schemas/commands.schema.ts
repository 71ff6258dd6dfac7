import { z } from 'zod';
import { EpochMs, Id, Initiator, Mac, VlanId } from './common.schema.ts';

/** Fields every command carries, whatever its kind. */
const commandBase = {
  commandId: Id,
  incidentId: Id,
  site: Id,
  /**
   * The issuing planner's lease token and its instance id (the lease's owner): an executor acts only
   * when both are the current holder's of the site's planner lease.
   */
  fencingToken: z.number().int().nonnegative(),
  issuer: z.string().min(1).max(256),
  issuedAt: EpochMs,
  /** After this instant the command must not start, and a running one is abandoned. */
  deadline: EpochMs,
  /** 1 for the first issue; the planner bumps it when it re-issues. */
  attempt: z.number().int().min(1),
  /** Drill commands never touch production hosts. */
  drill: z.boolean().default(false),
};

export const PowerCommand = z.object({
  ...commandBase,
  kind: z.literal('power'),
  host: Id,
  action: z.enum(['on', 'off', 'pxe-once', 'status']),
});
export type PowerCommand = z.infer<typeof PowerCommand>;

/** One VLAN a switch port carries (the port is in the VLAN's egress list); `untagged` when it is in its untagged list too. */
export const PortVlan = z.object({ vlan: VlanId, untagged: z.boolean() });
export type PortVlan = z.infer<typeof PortVlan>;

/**
 * A switch port's state as a drill borrows it and gives it back: what a net
 * `read` observes and a net `restore` sets exactly. `vlans` names every VLAN
 * whose egress list holds the port, ascending, each once; a VLAN not listed
 * does not carry the port. The link's operational state is not part of it:
 * nobody can set that.
 */
export const PortState = z.object({
  admin: z.enum(['up', 'down']),
  /** Q-BRIDGE dot1qPvid: the VLAN of untagged frames the port receives; it need not be one the port carries. */
  pvid: VlanId,
  vlans: z.array(PortVlan).superRefine((vlans, ctx) => {
    const seen = new Set<number>();
    for (const { vlan } of vlans) {
      if (seen.has(vlan)) ctx.addIssue({ code: 'custom', message: `VLAN ${vlan} is listed twice` });
      seen.add(vlan);
    }
  }),
});
export type PortState = z.infer<typeof PortState>;

const netBase = { ...commandBase, kind: z.literal('net'), host: Id, switch: Id, port: z.number().int().min(1) };
export const NetCommand = z.discriminatedUnion('action', [
  z.object({ ...netBase, action: z.literal('access'), vlan: VlanId }),
  z.object({ ...netBase, action: z.literal('trunk'), vlans: z.array(VlanId).min(1), nativeVlan: VlanId.optional() }),
  z.object({ ...netBase, action: z.literal('shut') }),
  z.object({ ...netBase, action: z.literal('no-shut') }),
  /** Reads the port's state, changing nothing; the result's `observed` is a PortState. */
  z.object({ ...netBase, action: z.literal('read') }),
  /** The port has exactly `state` (admin, PVID, every VLAN's egress and untagged membership), read back; `observed` is the PortState read. */
  z.object({ ...netBase, action: z.literal('restore'), state: PortState }),
]);
export type NetCommand = z.infer<typeof NetCommand>;

const storageBase = { ...commandBase, kind: z.literal('storage'), array: Id };
export const StorageCommand = z.discriminatedUnion('action', [
  z.object({ ...storageBase, action: z.literal('grant'), lun: Id, initiator: Initiator, host: Id }),
  z.object({ ...storageBase, action: z.literal('revoke'), lun: Id, initiator: Initiator, host: Id }),
  /** Fabric fencing: take every LUN away from a dead host's initiator. */
  z.object({ ...storageBase, action: z.literal('revoke-all'), initiator: Initiator, host: Id }),
  /** Drills run on clones so production data is never written. */
  z.object({ ...storageBase, action: z.literal('clone'), lun: Id, cloneId: Id }),
  z.object({ ...storageBase, action: z.literal('delete-clone'), cloneId: Id }),
  /** Reads which LUNs of the array are masked to the initiator, changing nothing; `observed` is StorageMasks. */
  z.object({ ...storageBase, action: z.literal('masks'), initiator: Initiator, host: Id }),
]);
export type StorageCommand = z.infer<typeof StorageCommand>;

/** What a storage `masks` read observes: the LUN ids masked to the initiator on the array, ascending. */
export const StorageMasks = z.object({ luns: z.array(Id) });
export type StorageMasks = z.infer<typeof StorageMasks>;

/**
 * The VLANs and LUNs a booted instance uses when they differ from its
 * server's own: a drill's VLAN twins and LUN clones. Without it the instance
 * uses the server's inventory VLANs and LUNs.
 */
export const BootAttach = z.object({
  vlans: z.array(VlanId).min(1, 'an instance needs at least one VLAN'),
  luns: z.array(Id),
});
export type BootAttach = z.infer<typeof BootAttach>;

/**
 * What the boot service serves one MAC, as its entries hold it (services/boot:
 * PUT /v1/hosts/<mac>): the server and image the host boots, the image's own
 * script, and the drill's VLANs and LUNs when it has them.
 */
export const BootEntry = z.object({
  server: Id,
  image: Id,
  /** Printable ASCII without spaces, as the boot service takes it: it ends up on an iPXE `chain` line. */
  imageUrl: z.string().regex(/^[!-~]{1,2048}$/, 'must be a URL of printable ASCII without spaces'),
  attach: BootAttach.optional(),
});
export type BootEntry = z.infer<typeof BootEntry>;

/** What a boot `read` or `restore` observes: the MAC's entry as the boot service serves it, or null when it serves none. */
export const BootEntryObserved = z.object({ entry: BootEntry.nullable() });
export type BootEntryObserved = z.infer<typeof BootEntryObserved>;

const bootBase = { ...commandBase, kind: z.literal('boot'), host: Id, mac: Mac };
export const BootCommand = z.discriminatedUnion('action', [
  z.object({ ...bootBase, action: z.literal('configure'), image: Id, server: Id, attach: BootAttach.optional() }),
  z.object({ ...bootBase, action: z.literal('clear') }),
  /** Reads the MAC's boot entry, changing nothing; `observed` is BootEntryObserved. */
  z.object({ ...bootBase, action: z.literal('read') }),
  /** The MAC has exactly `entry` (PUT as given, imageUrl included), or none when it is null; `observed` is BootEntryObserved. */
  z.object({ ...bootBase, action: z.literal('restore'), entry: BootEntry.nullable() }),
]);
export type BootCommand = z.infer<typeof BootCommand>;

export const VmSpec = z.object({
  cpus: z.number().int().positive(),
  memoryGiB: z.number().positive(),
  image: Id,
  vlans: z.array(VlanId).min(1),
  luns: z.array(Id).default([]),
  mac: Mac,
  /** A drill's rehearsal of the server (drill VLANs, cloned LUNs): its guest says so in its heartbeats. */
  drill: z.boolean().optional(),
});
export type VmSpec = z.infer<typeof VmSpec>;

const vmBase = { ...commandBase, kind: z.literal('vm'), hypervisor: Id, vm: Id };
export const VmCommand = z.discriminatedUnion('action', [
  z.object({ ...vmBase, action: z.literal('define'), spec: VmSpec }),
  z.object({ ...vmBase, action: z.literal('start') }),
  z.object({ ...vmBase, action: z.literal('stop') }),
  z.object({ ...vmBase, action: z.literal('undefine') }),
]);
export type VmCommand = z.infer<typeof VmCommand>;

export const Command = z.discriminatedUnion('kind', [PowerCommand, NetCommand, StorageCommand, BootCommand, VmCommand]);
export type Command = z.infer<typeof Command>;
export type CommandInput = z.input<typeof Command>;

export const commandSchemas = {
  power: PowerCommand,
  net: NetCommand,
  storage: StorageCommand,
  boot: BootCommand,
  vm: VmCommand,
} as const;

export const CommandOutcome = z.enum(['succeeded', 'failed']);
export type CommandOutcome = z.infer<typeof CommandOutcome>;

export const CommandResult = z.object({
  commandId: Id,
  incidentId: Id,
  kind: z.enum(['power', 'net', 'storage', 'boot', 'vm']),
  outcome: CommandOutcome,
  /** Deliveries/attempts the executor made, including retries. */
  attempts: z.number().int().min(1),
  startedAt: EpochMs,
  finishedAt: EpochMs,
  executor: z.string().min(1),
  /** True when this is the recorded result of an earlier execution (redelivery). */
  replayed: z.boolean().default(false),
  /** The device state read back after the action, e.g. { powerState: 'on' }. */
  observed: z.record(z.string(), z.unknown()).optional(),
  error: z
    .object({
      code: z.string().min(1),
      message: z.string(),
      retryable: z.boolean(),
    })
    .optional(),
});
export type CommandResult = z.infer<typeof CommandResult>;
