/**
 * Benchmark instances: the reference scenario, and failures in the lab's
 * seeded data centers (packages/lab topology generator): racks burn until
 * enough servers are lost; "scarce" instances give the planner only a random
 * handful of the surviving hosts, as when other incidents hold the rest.
 */
import { generateTopology, type TopologySizeName } from '@firebreak/lab';
import { Inventory } from '@firebreak/shared';
import type { PlacementInput } from '../src/placement/placement-types.ts';
import { referenceScenario } from '../src/placement/testing/reference-scenario.ts';
import { mulberry32 } from '@firebreak/shared';

export interface Instance {
  name: string;
  input: PlacementInput;
}

const inventories = new Map<string, Inventory>();

function inventory(size: TopologySizeName, seed: number): Inventory {
  const key = `${size}/${seed}`;
  let inv = inventories.get(key);
  if (inv === undefined) inventories.set(key, (inv = Inventory.parse(generateTopology({ size, seed }))));
  return inv;
}

export interface LabLoss {
  name: string;
  size: TopologySizeName;
  seed: number;
  /** Racks burn, from a seeded starting rack onwards, until at least this many servers are lost. */
  servers: number;
  /** Give the planner only this many surviving non-production hosts, picked at random; default all surviving hosts. */
  candidates?: number;
}

export function labLoss(spec: LabLoss): Instance {
  const inv = inventory(spec.size, spec.seed);
  const next = mulberry32(spec.seed * 7919 + spec.servers);
  const racks = inv.racks.map((r) => r.id);
  const start = Math.floor(next() * racks.length);
  const hostRack = new Map(inv.hosts.map((h) => [h.id, h.rack]));
  const burned = new Set<string>();
  const lost: string[] = [];
  for (let i = 0; i < racks.length && lost.length < spec.servers; i++) {
    const rack = racks[(start + i) % racks.length] as string;
    burned.add(rack);
    for (const a of inv.assignments) if (a.mode === 'bare-metal' && hostRack.get(a.host) === rack) lost.push(a.server);
  }
  let candidates = inv.hosts.filter((h) => !burned.has(h.rack)).map((h) => h.id);
  if (spec.candidates !== undefined) {
    const pool = inv.hosts.filter((h) => !burned.has(h.rack) && h.role !== 'production').map((h) => h.id);
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [pool[i], pool[j]] = [pool[j] as string, pool[i] as string];
    }
    candidates = pool.slice(0, spec.candidates);
  }
  const existingVms = inv.assignments.flatMap((a) => (a.mode === 'vm' && !burned.has(hostRack.get(a.hypervisor) ?? '') ? [{ server: a.server, hypervisor: a.hypervisor }] : []));
  return {
    name: spec.name,
    input: { inventory: inv, servers: lost, candidates, failed: { hosts: [], racks: [...burned] }, existingVms },
  };
}

export function instances(quick: boolean): Instance[] {
  const list: (LabLoss | 'reference')[] = quick
    ? [
        'reference',
        { name: 'scarce-20', size: 'row', seed: 11, servers: 20, candidates: 12 },
        { name: 'scarce-50', size: 'row', seed: 12, servers: 50, candidates: 30 },
        { name: '10k rack loss', size: '10k', seed: 1, servers: 40 },
      ]
    : [
        'reference',
        { name: 'lab rack loss', size: 'rack', seed: 3, servers: 20 },
        { name: 'scarce-20', size: 'row', seed: 11, servers: 20, candidates: 12 },
        { name: 'scarce-50', size: 'row', seed: 12, servers: 50, candidates: 30 },
        { name: 'scarce-100', size: 'row', seed: 13, servers: 100, candidates: 60 },
        { name: 'scarce-200', size: 'row', seed: 14, servers: 200, candidates: 120 },
        { name: 'scarce-400', size: 'row', seed: 15, servers: 400, candidates: 250 },
        { name: '10k rack loss', size: '10k', seed: 1, servers: 40 },
        { name: '10k row loss', size: '10k', seed: 1, servers: 1000 },
        { name: '10k row loss, scarce', size: '10k', seed: 2, servers: 1000, candidates: 600 },
      ];
  return list.map((spec) => (spec === 'reference' ? { name: 'reference (ARCHITECTURE.md)', input: referenceScenario() } : labLoss(spec)));
}
