import type { Inventory } from '@firebreak/shared';

export interface PlacementPolicy {
  /** Virtual CPUs a hypervisor may hand out per physical CPU left after its reserve. Memory is never overcommitted. */
  vcpuOvercommit: number;
  /** Whether repurposable hosts may lose their workload to a recovery; when false they are not used at all. */
  allowPreemption: boolean;
  /** Host resources kept for the hypervisor itself on every hypervisor host. */
  hypervisorReserve: { cpus: number; memoryGiB: number };
}

export const defaultPolicy: PlacementPolicy = Object.freeze({
  vcpuOvercommit: 4,
  allowPreemption: true,
  hypervisorReserve: Object.freeze({ cpus: 2, memoryGiB: 16 }),
});

export interface PlacementInput {
  /** For fabrics, images, VLANs and LUNs. */
  inventory: Inventory;
  /** Server ids to recover. */
  servers: readonly string[];
  /** Host ids the planner may use, already filtered for leases and health by the caller. */
  candidates: readonly string[];
  /** The failed domain: nothing in it may be used, even when listed as a candidate. */
  failed: { hosts: readonly string[]; racks: readonly string[] };
  policy?: Partial<PlacementPolicy>;
  /** VMs already running on existing hypervisors (role 'hypervisor'), so their free capacity is known. */
  existingVms?: readonly { server: string; hypervisor: string }[];
}

export type Placement =
  | { server: string; mode: 'bare-metal'; host: string; explanation: string }
  | { server: string; mode: 'vm'; hypervisor: string; explanation: string };

/** Why a server stays down; the most specific reason that holds. */
export const UnplacedReason = {
  /** No usable candidate host has the server's architecture. */
  noMatchingArch: 'no-matching-arch',
  /** Hosts of the architecture exist, but none reaches every fabric of the server's VLANs. */
  unreachableVlans: 'unreachable-vlans',
  /** Hosts reach the VLANs, but none has an HBA on the fabric of every LUN (or the LUNs span fabrics). */
  unreachableStorage: 'unreachable-storage',
  /** Reachable hosts exist, but none is big enough, bare metal or as a hypervisor. */
  tooLarge: 'too-large',
  /** Hosts ran short; converting a capable host would have made room, but no hypervisor image exists for its architecture. */
  noHypervisorImage: 'no-hypervisor-image',
  /** Only repurposable hosts could hold it, and the policy forbids preemption. */
  preemptionDisallowed: 'preemption-disallowed',
  /** A hypervisor had room, but the server must run on bare metal and no physical host was left. */
  bareMetalOnlyNoHost: 'bare-metal-only-no-host',
  /** Hypervisors had room, but each already runs a member of the server's anti-affinity group. */
  antiAffinity: 'anti-affinity',
  /** Compatible hosts exist, but they went to servers of the same or a more critical tier. */
  noCapacity: 'no-capacity',
} as const;
export type UnplacedReason = (typeof UnplacedReason)[keyof typeof UnplacedReason];

/**
 * The lexicographic objective, field by field in order of importance:
 * recovered servers per tier (tier 0 first; more is better), then preemptions
 * and the importance of the preempted work, then conversions, then waste
 * (fewer/less is better).
 */
export interface PlanScore {
  /** Recovered servers (bare metal or VM) per priority tier, index = tier. */
  recovered: [number, number, number, number];
  preemptions: number;
  /** Sum of (10 - workload priority) over the preempted workloads: important work weighs more. */
  preemptedImportance: number;
  conversions: number;
  /**
   * Unused share of every machine the plan takes, averaged over CPU and memory:
   * 0..1 per bare-metal host and per converted hypervisor. Capacity of existing
   * hypervisors is already committed and counts nothing.
   */
  waste: number;
}

export interface Plan {
  assignments: Placement[];
  preemptions: { host: string; workload: string; priority: number; explanation: string }[];
  /** Hosts to turn into hypervisors, with the hypervisor image of their architecture. */
  conversions: { host: string; image: string; explanation: string }[];
  unplaced: { server: string; reason: UnplacedReason; explanation: string }[];
  /** The lexicographic objective, comparable between plans and with an exact solver. */
  score: PlanScore;
}
