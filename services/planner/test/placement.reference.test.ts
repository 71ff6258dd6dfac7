import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPlan, planPlacement, UnplacedReason } from '../src/placement/index.ts';
import { referenceScenario } from '../src/placement/testing/reference-scenario.ts';

describe('placement reference scenario', () => {
  const input = referenceScenario();
  const plan = planPlacement(input);
  const tier = new Map(input.inventory.servers.map((s) => [s.id, s.priority]));
  const bareMetalOnly = new Set(input.inventory.servers.filter((s) => s.bareMetalOnly).map((s) => s.id));
  const bareMetal = plan.assignments.filter((a) => a.mode === 'bare-metal');
  const vms = plan.assignments.filter((a) => a.mode === 'vm');

  it('placement - 20 servers lost, 10 machines: 8 run on bare metal, among them every bare-metal-only and every tier-0/1 server', () => {
    assert.deepEqual(checkPlan(input, plan), []);
    assert.equal(input.servers.length, 20);
    assert.equal(input.candidates.length, 10);
    assert.equal(bareMetal.length, 8);
    for (const id of bareMetalOnly) assert.ok(bareMetal.some((a) => a.server === id), `${id} must run on bare metal`);
    assert.deepEqual(bareMetal.map((a) => tier.get(a.server)).sort(), [0, 0, 0, 1, 1, 1, 1, 1]);
    assert.equal(new Set(bareMetal.map((a) => (a.mode === 'bare-metal' ? a.host : ''))).size, 8);
  });

  it('placement - the other 2 machines become hypervisors running 6 more servers as VMs', () => {
    assert.deepEqual(plan.conversions.map((c) => [c.host, c.image]), [
      ['r2-h02', 'kvm-x86_64'],
      ['r2-h03', 'kvm-x86_64'],
    ]);
    assert.equal(vms.length, 6);
    for (const hv of ['r2-h02', 'r2-h03']) assert.equal(vms.filter((a) => a.mode === 'vm' && a.hypervisor === hv).length, 3);
    // The anti-affinity pair of web servers lands on different hypervisors.
    const on = (id: string): string | undefined => vms.find((a) => a.server === id && a.mode === 'vm')?.hypervisor as string | undefined;
    assert.notEqual(on('web-01'), on('web-02'));
  });

  it('placement - the 6 least critical servers stay down, each with its reason', () => {
    assert.equal(plan.unplaced.length, 6);
    assert.ok(plan.unplaced.every((u) => tier.get(u.server) === 3 && u.reason === UnplacedReason.noCapacity));
    assert.match(plan.unplaced[0]?.explanation ?? '', /^chat-01 \(tier 3, 8 vCPU\/64 GiB\) not recovered: /);
  });

  it('placement - the repurposable hosts give up their work, reported with the work preempted', () => {
    assert.deepEqual(plan.preemptions.map((p) => [p.host, p.workload, p.priority]).sort(), [
      ['r1-h04', 'print-server', 9],
      ['r1-h05', 'ci-runner', 8],
      ['r2-h04', 'batch', 7],
      ['r2-h05', 'dev-sandbox', 9],
    ]);
    assert.deepEqual(plan.score, { recovered: [3, 5, 6, 0], preemptions: 4, preemptedImportance: 7, conversions: 2, waste: plan.score.waste });
  });

  it('placement - every decision explains itself in one line', () => {
    const lines = [...plan.assignments, ...plan.preemptions, ...plan.conversions, ...plan.unplaced].map((d) => d.explanation);
    assert.equal(lines.length, 20 + 4 + 2);
    for (const line of lines) assert.match(line, /^[^\n]{20,240}$/);
    assert.match(plan.conversions[0]?.explanation ?? '', /^convert spare r2-h02 \(32 CPUs\/256 GiB\) to a hypervisor with kvm-x86_64: it runs 3 VMs/);
  });

  it('placement - the plan is the same every time', () => {
    assert.deepEqual(planPlacement(referenceScenario()), plan);
  });
});
