import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPlan, planPlacement, UnplacedReason, type PlacementInput, type Plan } from '../src/placement/index.ts';
import { buildInventory, type FixtureSpec, type HostSpec, type ServerSpec } from '../src/placement/testing/placement-fixture.ts';

interface Case {
  rule: string;
  hosts: HostSpec[];
  servers: ServerSpec[];
  hypervisorImages?: FixtureSpec['hypervisorImages'];
  /** Defaults: every host a candidate, nothing failed, default policy. */
  input?: Partial<Omit<PlacementInput, 'inventory'>>;
  expect: (plan: Plan) => void;
}

function where(plan: Plan, server: string): string {
  const a = plan.assignments.find((x) => x.server === server);
  if (a === undefined) return `unplaced:${plan.unplaced.find((u) => u.server === server)?.reason}`;
  return a.mode === 'bare-metal' ? `bm:${a.host}` : `vm:${a.hypervisor}`;
}

const spare = (id: string, more: Partial<HostSpec> = {}): HostSpec => ({ id, role: 'spare', ...more });
const capable = (id: string, more: Partial<HostSpec> = {}): HostSpec => ({ id, role: 'spare', hypervisorCapable: true, ...more });
const repurposable = (id: string, priority: number, more: Partial<HostSpec> = {}): HostSpec => ({
  id,
  role: 'repurposable',
  workload: { name: `batch-p${priority}`, priority },
  ...more,
});
const hypervisor = (id: string, more: Partial<HostSpec> = {}): HostSpec => ({ id, role: 'hypervisor', hypervisorCapable: true, ...more });

const cases: Case[] = [
  // ---- hard constraints -------------------------------------------------------------------------
  {
    rule: 'architecture must match',
    hosts: [spare('x1'), spare('a1', { arch: 'aarch64' })],
    servers: [{ id: 'arm', arch: 'aarch64' }],
    expect: (plan) => assert.equal(where(plan, 'arm'), 'bm:a1'),
  },
  {
    rule: 'no host of the architecture: no-matching-arch',
    hosts: [spare('x1')],
    servers: [{ id: 'arm', arch: 'aarch64' }],
    expect: (plan) => assert.equal(where(plan, 'arm'), `unplaced:${UnplacedReason.noMatchingArch}`),
  },
  {
    rule: 'CPU and memory must fit bare metal',
    hosts: [spare('small', { cpus: 8, memoryGiB: 64 }), spare('big', { cpus: 32, memoryGiB: 256 })],
    servers: [{ id: 's', cpus: 16, memoryGiB: 32, bareMetalOnly: true }],
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:big'),
  },
  {
    rule: 'a server bigger than every host: too-large',
    hosts: [spare('h1', { cpus: 32, memoryGiB: 256 })],
    servers: [{ id: 'huge', cpus: 64, memoryGiB: 512 }],
    expect: (plan) => assert.equal(where(plan, 'huge'), `unplaced:${UnplacedReason.tooLarge}`),
  },
  {
    rule: 'bare-metal-only servers never become VMs',
    hosts: [hypervisor('hv1')],
    servers: [{ id: 'db', bareMetalOnly: true }],
    expect: (plan) => assert.equal(where(plan, 'db'), `unplaced:${UnplacedReason.bareMetalOnlyNoHost}`),
  },
  {
    rule: 'the host must reach every VLAN fabric of the server',
    hosts: [spare('only-a', { fabrics: ['net-a'] }), spare('a-and-b', { fabrics: ['net-a', 'net-b'] })],
    servers: [{ id: 's', fabrics: ['net-a', 'net-b'] }],
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:a-and-b'),
  },
  {
    rule: 'no host reaches the VLANs: unreachable-vlans',
    hosts: [spare('only-a', { fabrics: ['net-a'] })],
    servers: [{ id: 's', fabrics: ['net-b'] }],
    expect: (plan) => assert.equal(where(plan, 's'), `unplaced:${UnplacedReason.unreachableVlans}`),
  },
  {
    rule: 'the host HBA must be on the storage fabric of the server LUNs',
    hosts: [spare('san-a-host', { san: 'san-a' }), spare('san-b-host', { san: 'san-b' })],
    servers: [{ id: 's', sans: ['san-b'] }],
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:san-b-host'),
  },
  {
    rule: 'no host reaches the storage: unreachable-storage',
    hosts: [spare('no-hba', { san: null }), spare('san-a-host', { san: 'san-a' })],
    servers: [{ id: 's', sans: ['san-b'] }],
    expect: (plan) => assert.equal(where(plan, 's'), `unplaced:${UnplacedReason.unreachableStorage}`),
  },
  {
    rule: 'LUNs on two fabrics cannot be reached through one HBA',
    hosts: [spare('san-a-host', { san: 'san-a' }), spare('san-b-host', { san: 'san-b' })],
    servers: [{ id: 's', sans: ['san-a', 'san-b'] }],
    expect: (plan) => assert.equal(where(plan, 's'), `unplaced:${UnplacedReason.unreachableStorage}`),
  },
  {
    rule: 'a server without LUNs needs no HBA',
    hosts: [spare('no-hba', { san: null })],
    servers: [{ id: 'stateless', sans: [] }],
    expect: (plan) => assert.equal(where(plan, 'stateless'), 'bm:no-hba'),
  },
  {
    rule: 'hosts in a failed rack are never used, even as candidates',
    hosts: [spare('burned', { rack: 'r9' }), spare('ok', { rack: 'r1', cpus: 64, memoryGiB: 512 })],
    servers: [{ id: 's' }],
    input: { failed: { hosts: [], racks: ['r9'] } },
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:ok'),
  },
  {
    rule: 'failed hosts are never used, even as candidates',
    hosts: [spare('dead'), spare('ok', { cpus: 64, memoryGiB: 512 })],
    servers: [{ id: 's' }],
    input: { failed: { hosts: ['dead'], racks: [] } },
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:ok'),
  },
  {
    rule: 'production hosts are busy, never used',
    hosts: [{ id: 'busy', role: 'production' }],
    servers: [{ id: 's' }],
    expect: (plan) => assert.equal(where(plan, 's'), `unplaced:${UnplacedReason.noMatchingArch}`),
  },
  {
    rule: 'only candidates are used',
    hosts: [spare('leased-elsewhere'), spare('mine', { cpus: 64, memoryGiB: 512 })],
    servers: [{ id: 's' }],
    input: { candidates: ['mine'] },
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:mine'),
  },
  {
    rule: 'no host is used twice',
    hosts: [spare('h1')],
    servers: [{ id: 'a', tier: 1 }, { id: 'b', tier: 1 }],
    expect: (plan) => {
      assert.equal(plan.assignments.length, 1);
      assert.equal(plan.unplaced[0]?.reason, UnplacedReason.noCapacity);
    },
  },
  {
    rule: 'anti-affinity: two members of a group never share a hypervisor',
    hosts: [hypervisor('hv1')],
    servers: [{ id: 'web-1', antiAffinity: 'web', tier: 1 }, { id: 'web-2', antiAffinity: 'web', tier: 2 }],
    expect: (plan) => {
      assert.equal(where(plan, 'web-1'), 'vm:hv1');
      assert.equal(where(plan, 'web-2'), `unplaced:${UnplacedReason.antiAffinity}`);
    },
  },
  {
    rule: 'anti-affinity counts VMs already running on a hypervisor',
    hosts: [hypervisor('hv1'), hypervisor('hv2')],
    servers: [{ id: 'web-1', antiAffinity: 'web' }, { id: 'web-2', antiAffinity: 'web' }],
    input: { servers: ['web-2'], existingVms: [{ server: 'web-1', hypervisor: 'hv1' }] },
    expect: (plan) => assert.equal(where(plan, 'web-2'), 'vm:hv2'),
  },
  {
    rule: 'VM vCPUs are overcommitted by the policy ratio after the reserve',
    // (10 CPUs - 2 reserved) x 4 = 32 vCPUs: two 16-vCPU VMs fit, a third does not.
    hosts: [hypervisor('hv1', { cpus: 10, memoryGiB: 1024 })],
    servers: [{ id: 'a', cpus: 8 }, { id: 'b', cpus: 8 }, { id: 'c', cpus: 8 }, { id: 'd', cpus: 8 }, { id: 'e', cpus: 8 }],
    input: { policy: { vcpuOvercommit: 4, hypervisorReserve: { cpus: 2, memoryGiB: 16 } } },
    expect: (plan) => {
      assert.equal(plan.assignments.length, 4);
      assert.equal(plan.unplaced.length, 1);
    },
  },
  {
    rule: 'memory is never overcommitted, and the reserve is kept',
    // 64 GiB - 16 reserved = 48 GiB: one 32 GiB VM fits, not two.
    hosts: [hypervisor('hv1', { cpus: 64, memoryGiB: 64 })],
    servers: [{ id: 'a', memoryGiB: 32 }, { id: 'b', memoryGiB: 32 }],
    expect: (plan) => assert.deepEqual([where(plan, 'a'), where(plan, 'b')].sort(), ['unplaced:no-capacity', 'vm:hv1']),
  },
  {
    rule: 'a VM never has more vCPUs than the hypervisor has CPUs after its reserve',
    hosts: [hypervisor('hv1', { cpus: 10, memoryGiB: 1024 })],
    servers: [{ id: 'wide', cpus: 16 }],
    expect: (plan) => assert.equal(where(plan, 'wide'), `unplaced:${UnplacedReason.tooLarge}`),
  },

  // ---- objective ------------------------------------------------------------------------------
  {
    rule: 'a tier-0 server outweighs any number of lower-tier servers',
    // The one capable host either runs the bare-metal-only tier-0 database or three tier-3 VMs.
    hosts: [capable('h1', { cpus: 32, memoryGiB: 256 })],
    servers: [
      { id: 'db', tier: 0, bareMetalOnly: true, memoryGiB: 64 },
      { id: 't3-a', tier: 3, memoryGiB: 64 },
      { id: 't3-b', tier: 3, memoryGiB: 64 },
      { id: 't3-c', tier: 3, memoryGiB: 64 },
    ],
    expect: (plan) => {
      assert.equal(where(plan, 'db'), 'bm:h1');
      assert.deepEqual(plan.score.recovered, [1, 0, 0, 0]);
    },
  },
  {
    rule: 'more servers of one tier beat fewer',
    hosts: [capable('h1', { cpus: 32, memoryGiB: 256 })],
    servers: [{ id: 'big', tier: 2, memoryGiB: 200, cpus: 16 }, { id: 's1', tier: 2, memoryGiB: 64 }, { id: 's2', tier: 2, memoryGiB: 64 }],
    expect: (plan) => assert.deepEqual(plan.score.recovered, [0, 0, 2, 0]),
  },
  {
    rule: 'spares are used before repurposable hosts',
    hosts: [repurposable('rep', 9), spare('sp')],
    servers: [{ id: 's' }],
    expect: (plan) => {
      assert.equal(where(plan, 's'), 'bm:sp');
      assert.deepEqual(plan.preemptions, []);
    },
  },
  {
    rule: 'the least important work is preempted first',
    hosts: [repurposable('rep-p5', 5), repurposable('rep-p9', 9)],
    servers: [{ id: 's' }],
    expect: (plan) => assert.deepEqual(plan.preemptions.map((p) => [p.host, p.priority]), [['rep-p9', 9]]),
  },
  {
    rule: 'preempting fewer hosts beats preempting less important ones',
    // Converting the capable p5 host takes both servers with one preemption; two p9 hosts would be two.
    hosts: [repurposable('rep-p9-a', 9), repurposable('rep-p9-b', 9), repurposable('rep-p5', 5, { hypervisorCapable: true })],
    servers: [{ id: 'a' }, { id: 'b' }],
    expect: (plan) => {
      assert.deepEqual(plan.preemptions.map((p) => p.host), ['rep-p5']);
      assert.deepEqual(plan.conversions.map((c) => c.host), ['rep-p5']);
    },
  },
  {
    rule: 'repurposable hosts are unusable when preemption is not allowed',
    hosts: [repurposable('rep', 9)],
    servers: [{ id: 's' }],
    input: { policy: { allowPreemption: false } },
    expect: (plan) => {
      assert.equal(where(plan, 's'), `unplaced:${UnplacedReason.preemptionDisallowed}`);
      assert.deepEqual(plan.preemptions, []);
    },
  },
  {
    rule: 'an idle repurposable host costs no preemption',
    hosts: [{ id: 'idle', role: 'repurposable' }],
    servers: [{ id: 's' }],
    input: { policy: { allowPreemption: false } },
    expect: (plan) => {
      assert.equal(where(plan, 's'), 'bm:idle');
      assert.deepEqual(plan.preemptions, []);
    },
  },
  {
    rule: 'existing hypervisor capacity is used before converting a host',
    hosts: [hypervisor('hv1'), capable('cap')],
    servers: [{ id: 'a', tier: 1 }, { id: 'b', tier: 2 }],
    expect: (plan) => {
      assert.deepEqual(plan.conversions, []);
      assert.equal(plan.score.recovered.reduce((x, y) => x + y), 2);
      assert.ok(plan.assignments.some((a) => a.mode === 'vm' && a.hypervisor === 'hv1'));
    },
  },
  {
    rule: 'when hosts run short, the fewest capable hosts are converted and packed',
    // Six 64 GiB servers, three capable hosts of 240 GiB each after the reserve: two conversions hold them all.
    hosts: [capable('c1'), capable('c2'), capable('c3')],
    servers: ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => ({ id, memoryGiB: 64 })),
    expect: (plan) => {
      assert.equal(plan.unplaced.length, 0);
      assert.equal(plan.conversions.length, 2);
      assert.ok(plan.conversions.every((c) => c.image === 'kvm-x86_64'));
    },
  },
  {
    rule: 'converting a spare beats preempting work',
    hosts: [capable('cap'), repurposable('rep-1', 9), repurposable('rep-2', 9)],
    servers: [{ id: 'a', memoryGiB: 64 }, { id: 'b', memoryGiB: 64 }],
    expect: (plan) => {
      assert.deepEqual(plan.preemptions, []);
      assert.deepEqual(plan.conversions.map((c) => c.host), ['cap']);
    },
  },
  {
    rule: 'a preempted repurposable host may be converted when it is hypervisor-capable',
    hosts: [repurposable('rep', 8, { hypervisorCapable: true })],
    servers: [{ id: 'a', memoryGiB: 64 }, { id: 'b', memoryGiB: 64 }],
    expect: (plan) => {
      assert.deepEqual(plan.preemptions.map((p) => p.host), ['rep']);
      assert.deepEqual(plan.conversions.map((c) => c.host), ['rep']);
      assert.deepEqual([where(plan, 'a'), where(plan, 'b')], ['vm:rep', 'vm:rep']);
    },
  },
  {
    rule: 'only hypervisor-capable hosts are converted',
    hosts: [spare('plain')],
    servers: [{ id: 'a', tier: 1, memoryGiB: 64 }, { id: 'b', tier: 2, memoryGiB: 64 }],
    expect: (plan) => {
      assert.deepEqual(plan.conversions, []);
      assert.equal(where(plan, 'a'), 'bm:plain');
      assert.equal(where(plan, 'b'), `unplaced:${UnplacedReason.noCapacity}`);
    },
  },
  {
    rule: 'a conversion needs a hypervisor image of the host architecture',
    // Converting the one capable host would run both servers, but there is no aarch64 hypervisor image.
    hosts: [capable('arm', { arch: 'aarch64' })],
    servers: [{ id: 'first', arch: 'aarch64', tier: 1, memoryGiB: 64 }, { id: 'second', arch: 'aarch64', tier: 2, memoryGiB: 64 }],
    hypervisorImages: ['x86_64'],
    expect: (plan) => {
      assert.deepEqual(plan.conversions, []);
      assert.equal(where(plan, 'first'), 'bm:arm');
      assert.equal(where(plan, 'second'), `unplaced:${UnplacedReason.noHypervisorImage}`);
    },
  },
  {
    rule: 'bare metal goes to the best-fitting host',
    hosts: [spare('big', { cpus: 64, memoryGiB: 512 }), spare('snug', { cpus: 16, memoryGiB: 128 }), spare('mid', { cpus: 32, memoryGiB: 256 })],
    servers: [{ id: 's', cpus: 16, memoryGiB: 96 }],
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:snug'),
  },
  {
    rule: 'ties between identical hosts go to the smallest id',
    hosts: [spare('h-b'), spare('h-a'), spare('h-c')],
    servers: [{ id: 's' }],
    expect: (plan) => assert.equal(where(plan, 's'), 'bm:h-a'),
  },
];

describe('placement rules', () => {
  for (const c of cases) {
    it(`placement - ${c.rule}`, () => {
      const inventory = buildInventory({ hosts: c.hosts, servers: c.servers, ...(c.hypervisorImages ? { hypervisorImages: c.hypervisorImages } : {}) });
      const input: PlacementInput = {
        inventory,
        servers: c.servers.map((s) => s.id),
        candidates: c.hosts.map((h) => h.id),
        failed: { hosts: [], racks: [] },
        ...c.input,
      };
      const plan = planPlacement(input);
      assert.deepEqual(checkPlan(input, plan), []);
      for (const line of [...plan.assignments, ...plan.preemptions, ...plan.conversions, ...plan.unplaced].map((d) => d.explanation)) {
        assert.match(line, /^[^\n]+$/, 'every decision carries a one-line explanation');
      }
      c.expect(plan);
    });
  }

  it('placement - explanations name the server, its size and where it goes', () => {
    const inventory = buildInventory({ hosts: [spare('r3-h07', { cpus: 16, memoryGiB: 64 })], servers: [{ id: 'db-01', tier: 0, cpus: 16, memoryGiB: 64 }] });
    const plan = planPlacement({ inventory, servers: ['db-01'], candidates: ['r3-h07'], failed: { hosts: [], racks: [] } });
    assert.equal(plan.assignments[0]?.explanation, 'db-01 (tier 0, 16 vCPU/64 GiB) → spare r3-h07 (16/64, best fit, net net-a, san san-a)');
  });

  it('placement - unknown server or host ids are refused with the id in the message', () => {
    const inventory = buildInventory({ hosts: [spare('h1')], servers: [{ id: 's1' }] });
    const base = { inventory, servers: ['s1'], candidates: ['h1'], failed: { hosts: [], racks: [] } };
    assert.throws(() => planPlacement({ ...base, servers: ['s1', 'ghost'] }), /unknown server id ghost/);
    assert.throws(() => planPlacement({ ...base, candidates: ['h1', 'nowhere'] }), /unknown candidate host id nowhere/);
    assert.throws(() => planPlacement({ ...base, failed: { hosts: [], racks: ['r404'] } }), /unknown failed rack id r404/);
    assert.throws(() => planPlacement({ ...base, existingVms: [{ server: 's1', hypervisor: 'h1' }] }), /h1, which is a spare host/);
  });

  it('placement - an invalid policy is refused', () => {
    const inventory = buildInventory({ hosts: [spare('h1')], servers: [{ id: 's1' }] });
    assert.throws(
      () => planPlacement({ inventory, servers: ['s1'], candidates: ['h1'], failed: { hosts: [], racks: [] }, policy: { vcpuOvercommit: 0.5 } }),
      /vcpuOvercommit must be a finite number >= 1/,
    );
  });
});
