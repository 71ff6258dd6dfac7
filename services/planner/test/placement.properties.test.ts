import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Inventory } from '@firebreak/shared';
import { checkPlan, planPlacement, UnplacedReason, type PlacementInput, type Plan } from '../src/placement/index.ts';
import { buildInventory, type HostSpec, type ServerSpec } from '../src/placement/testing/placement-fixture.ts';

const archArb = fc.constantFrom('x86_64' as const, 'x86_64' as const, 'aarch64' as const);
const fabricsArb = fc.subarray(['net-a', 'net-b'], { minLength: 1 });

const hostArb = fc.record({
  arch: archArb,
  cpus: fc.constantFrom(8, 16, 32),
  memoryGiB: fc.constantFrom(32, 64, 128, 256),
  role: fc.constantFrom('spare' as const, 'spare' as const, 'repurposable' as const, 'hypervisor' as const, 'production' as const),
  workloadPriority: fc.option(fc.integer({ min: 0, max: 9 })),
  hypervisorCapable: fc.boolean(),
  fabrics: fabricsArb,
  san: fc.constantFrom('san-a', 'san-b', null),
  rack: fc.constantFrom('r1', 'r2', 'r3'),
  candidate: fc.constantFrom(true, true, true, false),
  failed: fc.constantFrom(false, false, false, false, true),
});

const serverArb = fc.record({
  arch: archArb,
  cpus: fc.constantFrom(2, 4, 8, 16),
  memoryGiB: fc.constantFrom(8, 16, 32, 64, 128),
  tier: fc.integer({ min: 0, max: 3 }),
  bareMetalOnly: fc.boolean(),
  group: fc.constantFrom(undefined, 'g1', 'g2'),
  fabrics: fabricsArb,
  sans: fc.subarray(['san-a', 'san-b'], { maxLength: 2 }),
});

const policyArb = fc.record({
  vcpuOvercommit: fc.constantFrom(1, 2, 4),
  allowPreemption: fc.boolean(),
  hypervisorReserve: fc.record({ cpus: fc.constantFrom(0, 2), memoryGiB: fc.constantFrom(0, 16) }),
});

type HostDraw = typeof hostArb extends fc.Arbitrary<infer T> ? T : never;
type ServerDraw = typeof serverArb extends fc.Arbitrary<infer T> ? T : never;

interface Scenario {
  hosts: HostDraw[];
  servers: ServerDraw[];
  running: ServerDraw[];
  failedRack: string | null;
  policy: { vcpuOvercommit: number; allowPreemption: boolean; hypervisorReserve: { cpus: number; memoryGiB: number } };
  hypervisorImages: ('x86_64' | 'aarch64')[];
}

function scenarioArb(maxHosts: number, maxServers: number): fc.Arbitrary<Scenario> {
  return fc.record({
    hosts: fc.array(hostArb, { minLength: 1, maxLength: maxHosts }),
    servers: fc.array(serverArb, { minLength: 1, maxLength: maxServers }),
    running: fc.array(serverArb, { maxLength: 3 }),
    failedRack: fc.constantFrom(null, null, 'r3'),
    policy: policyArb,
    hypervisorImages: fc.subarray(['x86_64' as const, 'aarch64' as const]),
  });
}

function serverSpec(id: string, s: ServerDraw): ServerSpec {
  return { id, arch: s.arch, cpus: s.cpus, memoryGiB: s.memoryGiB, tier: s.tier, bareMetalOnly: s.bareMetalOnly, fabrics: s.fabrics, sans: s.sans, ...(s.group ? { antiAffinity: s.group } : {}) };
}

function toInput(sc: Scenario): PlacementInput {
  const hosts: HostSpec[] = sc.hosts.map((h, i) => ({
    id: `h${i}`,
    rack: h.rack,
    arch: h.arch,
    cpus: h.cpus,
    memoryGiB: h.memoryGiB,
    role: h.role,
    hypervisorCapable: h.hypervisorCapable || h.role === 'hypervisor',
    fabrics: h.fabrics,
    san: h.san,
    ...(h.role === 'repurposable' && h.workloadPriority !== null ? { workload: { name: `work-${i}`, priority: h.workloadPriority } } : {}),
  }));
  const hypervisors = hosts.filter((h) => h.role === 'hypervisor').map((h) => h.id);
  const running = hypervisors.length === 0 ? [] : sc.running.map((s, i) => serverSpec(`run${i}`, s));
  const servers = sc.servers.map((s, i) => serverSpec(`s${i}`, s));
  const inventory = buildInventory({ hosts, servers: [...servers, ...running], hypervisorImages: sc.hypervisorImages });
  return {
    inventory,
    servers: servers.map((s) => s.id),
    candidates: hosts.filter((_, i) => sc.hosts[i]?.candidate).map((h) => h.id),
    failed: {
      hosts: hosts.filter((_, i) => sc.hosts[i]?.failed).map((h) => h.id),
      // Only racks the inventory has: an unknown one is refused, as the rules test shows.
      racks: sc.failedRack && hosts.some((h) => h.rack === sc.failedRack) ? [sc.failedRack] : [],
    },
    policy: sc.policy,
    existingVms: running.map((s, i) => ({ server: s.id, hypervisor: hypervisors[i % hypervisors.length] as string })),
  };
}

/** Every feasible plan of a tiny instance, by brute force; feasibility is judged by checkPlan alone. */
function bestByExhaustiveSearch(input: PlacementInput): { recovered: number[]; preemptions: number; conversions: number } {
  const inv: Inventory = input.inventory;
  const hosts = new Map(inv.hosts.map((h) => [h.id, h]));
  const tiers = new Map(inv.servers.map((s) => [s.id, s.priority]));
  const image = (arch: string): string | undefined => inv.images.filter((i) => i.hypervisor && i.arch === arch).map((i) => i.id).sort()[0];
  const options: ({ mode: 'bare-metal'; host: string } | { mode: 'vm'; hypervisor: string } | null)[] = [
    null,
    ...input.candidates.flatMap((h) => [{ mode: 'bare-metal' as const, host: h }, { mode: 'vm' as const, hypervisor: h }]),
  ];
  let best: { recovered: number[]; preemptions: number; conversions: number } = { recovered: [0, 0, 0, 0], preemptions: 0, conversions: 0 };
  const better = (a: typeof best, b: typeof best): boolean => {
    for (let t = 0; t < 4; t++) if ((a.recovered[t] ?? 0) !== (b.recovered[t] ?? 0)) return (a.recovered[t] ?? 0) > (b.recovered[t] ?? 0);
    return a.preemptions !== b.preemptions ? a.preemptions < b.preemptions : a.conversions < b.conversions;
  };
  const choice = new Array<number>(input.servers.length).fill(0);
  for (;;) {
    const assignments: Plan['assignments'] = [];
    input.servers.forEach((server, i) => {
      const o = options[choice[i] as number];
      if (o) assignments.push({ server, ...o, explanation: 'x' });
    });
    const vmHosts = [...new Set(assignments.flatMap((a) => (a.mode === 'vm' ? [a.hypervisor] : [])))];
    const conversions = vmHosts.filter((h) => hosts.get(h)?.role !== 'hypervisor').map((h) => ({ host: h, image: image(hosts.get(h)?.arch ?? '') ?? '?', explanation: 'x' }));
    const used = [...assignments.flatMap((a) => (a.mode === 'bare-metal' ? [a.host] : [])), ...conversions.map((c) => c.host)];
    const preemptions = used.flatMap((h) => {
      const w = hosts.get(h)?.workload;
      return hosts.get(h)?.role === 'repurposable' && w ? [{ host: h, workload: w.name, priority: w.priority, explanation: 'x' }] : [];
    });
    const recovered = [0, 0, 0, 0];
    for (const a of assignments) recovered[tiers.get(a.server) ?? 0]! += 1;
    const plan: Plan = {
      assignments,
      preemptions,
      conversions,
      unplaced: input.servers.filter((s) => !assignments.some((a) => a.server === s)).map((server) => ({ server, reason: 'no-capacity', explanation: 'x' })),
      score: { recovered: recovered as [number, number, number, number], preemptions: preemptions.length, preemptedImportance: 0, conversions: conversions.length, waste: 0 },
    };
    const candidate = { recovered, preemptions: preemptions.length, conversions: conversions.length };
    if (better(candidate, best) && checkPlan(input, plan).length === 0) best = candidate;
    let i = 0;
    while (i < choice.length && choice[i] === options.length - 1) choice[i++] = 0;
    if (i === choice.length) return best;
    choice[i]! += 1;
  }
}

describe('placement properties', () => {
  it('placement - every plan keeps every hard constraint, uses no host twice and exceeds no capacity', () => {
    fc.assert(
      fc.property(scenarioArb(10, 10), (sc) => {
        const input = toInput(sc);
        const plan = planPlacement(input);
        assert.deepEqual(checkPlan(input, plan), []);
      }),
      { numRuns: 300 },
    );
  });

  it('placement - the same input gives the same plan, whatever order ids come in', () => {
    fc.assert(
      fc.property(scenarioArb(10, 10), fc.nat(), (sc, turn) => {
        const input = toInput(sc);
        const plan = planPlacement(input);
        assert.deepEqual(planPlacement(input), plan);
        const rotate = <T>(xs: readonly T[]): T[] => {
          const k = xs.length === 0 ? 0 : turn % xs.length;
          return [...xs.slice(k), ...xs.slice(0, k)].reverse();
        };
        assert.deepEqual(planPlacement({ ...input, servers: rotate(input.servers), candidates: rotate(input.candidates) }), plan);
      }),
      { numRuns: 150 },
    );
  });

  it('placement - one inventory planned again and again, under other policies and candidates, plans as a fresh copy of it does', () => {
    // The engine indexes an inventory once per object: the index must never leak one call's policy or candidates into another.
    fc.assert(
      fc.property(scenarioArb(10, 10), fc.constantFrom(1, 2, 8), fc.boolean(), fc.nat(), (sc, overcommit, allowPreemption, drop) => {
        const input = toInput(sc);
        planPlacement(input);
        const varied: PlacementInput = {
          ...input,
          candidates: input.candidates.filter((_, i) => i !== drop % Math.max(1, input.candidates.length)),
          policy: { vcpuOvercommit: overcommit, allowPreemption },
        };
        assert.deepEqual(planPlacement(varied), planPlacement({ ...varied, inventory: structuredClone(varied.inventory) }));
      }),
      { numRuns: 150 },
    );
  });

  it('placement - an unreachable server has no usable candidate that reaches it', () => {
    fc.assert(
      fc.property(scenarioArb(10, 10), (sc) => {
        const input = toInput(sc);
        const plan = planPlacement(input);
        const inv = input.inventory;
        const failedRacks = new Set(input.failed.racks);
        const usable = inv.hosts.filter((h) => input.candidates.includes(h.id) && !input.failed.hosts.includes(h.id) && !failedRacks.has(h.rack) && h.role !== 'production');
        const fabricOf = new Map(inv.switches.map((s) => [s.id, s.fabric]));
        for (const u of plan.unplaced) {
          const s = inv.servers.find((x) => x.id === u.server);
          assert.ok(s);
          const sameArch = usable.filter((h) => h.arch === s.arch);
          if (u.reason === UnplacedReason.noMatchingArch) assert.equal(sameArch.length, 0, u.explanation);
          if (u.reason === UnplacedReason.unreachableVlans) {
            const vlanFabrics = s.vlans.map((v) => inv.vlans.find((x) => x.id === v)?.fabric);
            assert.ok(sameArch.length > 0);
            assert.ok(!sameArch.some((h) => vlanFabrics.every((f) => h.nics.some((n) => fabricOf.get(n.switch) === f))), u.explanation);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('placement - recovers as many servers per tier as an exhaustive search, and preempts and converts no more', () => {
    fc.assert(
      fc.property(scenarioArb(4, 3), (sc) => {
        const input = toInput(sc);
        const plan = planPlacement(input);
        const best = bestByExhaustiveSearch(input);
        assert.deepEqual(plan.score.recovered, best.recovered);
        assert.equal(plan.score.preemptions, best.preemptions, 'preemptions');
        assert.equal(plan.score.conversions, best.conversions, 'conversions');
      }),
      { numRuns: 200 },
    );
  });
});
