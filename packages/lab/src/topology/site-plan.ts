/**
 * Decides what each host slot of a site is before anything is named: its
 * role, architecture, HBA kind and whether it can become a hypervisor. Random
 * shares give each rack its own mix; fix-ups then guarantee that even a tiny
 * site has every kind, with recovery capacity for both architectures.
 */
import type { HostRole } from '@firebreak/shared';
import type { LabArch } from './catalog.ts';
import type { Random } from './prng.ts';

export interface SlotPlan {
  role: HostRole;
  arch: LabArch;
  /** iSCSI initiator (IQN) instead of a Fibre Channel WWPN. */
  iscsi: boolean;
  hypervisorCapable: boolean;
}

/** Racks of slots, in rack then slot order. */
export type SitePlan = SlotPlan[][];

const shares = {
  /** Of a site's hosts; only sites of 16 hosts or more get standing hypervisors. */
  hypervisor: 0.04,
  spare: 0.15,
  repurposable: 0.2,
} as const;

const aarch64Chance: Record<HostRole, number> = { production: 0.15, hypervisor: 0.15, spare: 0.2, repurposable: 0.2 };
const iscsiChance = 0.12;
const hypervisorCapableChance: Record<HostRole, number> = { production: 0.25, hypervisor: 1, spare: 0.6, repurposable: 0.6 };

/** Spares and repurposables are where recoveries land. */
const isCapacity = (slot: SlotPlan): boolean => slot.role === 'spare' || slot.role === 'repurposable';

export function planSite(rng: Random, racks: number, hostsPerRack: number): SitePlan {
  const hypervisors = spreadHypervisors(rng, racks, hostsPerRack);
  const site = hypervisors.map((count) =>
    rackRoles(rng, hostsPerRack, count).map(
      (role): SlotPlan => ({ role, arch: rng.chance(aarch64Chance[role]) ? 'aarch64' : 'x86_64', iscsi: false, hypervisorCapable: false }),
    ),
  );
  const slots = site.flat();

  ensureSome(rng, slots, (s) => s.role === 'production' && s.arch === 'aarch64', (s) => s.role === 'production', (s) => (s.arch = 'aarch64'));
  ensureCapacityInTwoRacks(rng, site, 'aarch64');
  ensureCapacityInTwoRacks(rng, site, 'x86_64');

  for (const slot of slots) slot.iscsi = rng.chance(iscsiChance);
  ensureSome(rng, slots, (s) => s.iscsi, () => true, (s) => (s.iscsi = true));
  ensureSome(rng, slots, (s) => !s.iscsi, () => true, (s) => (s.iscsi = false));

  for (const slot of slots) slot.hypervisorCapable = rng.chance(hypervisorCapableChance[slot.role]);
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const capacity = slots.filter((s) => isCapacity(s) && s.arch === arch);
    ensureSome(rng, capacity, (s) => s.hypervisorCapable, () => true, (s) => (s.hypervisorCapable = true));
  }
  return site;
}

/** Standing hypervisors per rack, dealt round-robin over the racks in a random order. */
function spreadHypervisors(rng: Random, racks: number, hostsPerRack: number): number[] {
  const counts = new Array<number>(racks).fill(0);
  const siteHosts = racks * hostsPerRack;
  if (siteHosts < 16) return counts;
  const order = rng.shuffle(counts.map((_, i) => i));
  const total = Math.max(1, Math.round(siteHosts * shares.hypervisor));
  for (let k = 0; k < total; k++) {
    const rack = order[k % racks] as number;
    counts[rack] = Math.min(hostsPerRack, (counts[rack] ?? 0) + 1);
  }
  return counts;
}

/** A rack's roles in slot order: jittered shares, at least one spare and one repurposable when there is room. */
function rackRoles(rng: Random, hosts: number, hypervisors: number): HostRole[] {
  const rest = hosts - hypervisors;
  let spares = Math.round(rest * (shares.spare + (rng.next() - 0.5) * 0.08));
  let repurposables = Math.round(rest * (shares.repurposable + (rng.next() - 0.5) * 0.1));
  if (rest >= 3) {
    spares = Math.max(1, spares);
    repurposables = Math.max(1, repurposables);
  }
  // A rack keeps at least one production host when it has any room.
  while (rest > 0 && spares + repurposables > rest - 1) {
    if (repurposables >= spares && repurposables > 0) repurposables--;
    else spares--;
  }
  const roles: HostRole[] = [
    ...new Array<HostRole>(hypervisors).fill('hypervisor'),
    ...new Array<HostRole>(spares).fill('spare'),
    ...new Array<HostRole>(repurposables).fill('repurposable'),
  ];
  while (roles.length < hosts) roles.push('production');
  return rng.shuffle(roles);
}

/**
 * Spare or repurposable hosts of the architecture in at least two racks (when
 * the site has two racks with such hosts), so that losing any one rack leaves
 * somewhere for its servers of that architecture to go.
 */
function ensureCapacityInTwoRacks(rng: Random, site: SitePlan, arch: LabArch): void {
  const hasIt = (rack: SlotPlan[]): boolean => rack.some((s) => isCapacity(s) && s.arch === arch);
  const candidates = site.filter((rack) => rack.some(isCapacity));
  const want = Math.min(2, candidates.length);
  let have = candidates.filter(hasIt).length;
  for (const rack of rng.shuffle(candidates.filter((r) => !hasIt(r)))) {
    if (have >= want) return;
    const other = arch === 'aarch64' ? 'x86_64' : 'aarch64';
    // Rather where the rack keeps capacity of the other architecture, but one rack at least.
    const flippable = rack.filter((s) => isCapacity(s) && s.arch === other);
    if (flippable.length < (have === 0 ? 1 : 2)) continue;
    rng.pick(flippable).arch = arch;
    have++;
  }
}

/** When no slot has the property, gives it to one random eligible slot. */
function ensureSome(
  rng: Random,
  slots: readonly SlotPlan[],
  has: (slot: SlotPlan) => boolean,
  eligible: (slot: SlotPlan) => boolean,
  apply: (slot: SlotPlan) => void,
): void {
  if (slots.some(has)) return;
  const pool = slots.filter(eligible);
  if (pool.length > 0) apply(rng.pick(pool));
}
