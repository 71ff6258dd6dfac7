/**
 * Checks a plan against the hard constraints straight from the inventory,
 * without the engine's indexes or classes, so a bug there cannot hide
 * behind itself. Used by the property tests and to verify the exact
 * solver's plans in the benchmark. Returns one line per violation.
 */
import type { Host, Server } from '@firebreak/shared';
import { resolvePolicy } from './placement-context.ts';
import type { PlacementInput, Plan } from './placement-types.ts';

export function checkPlan(input: PlacementInput, plan: Plan): string[] {
  const inv = input.inventory;
  const policy = resolvePolicy(input.policy);
  const problems: string[] = [];
  const hosts = new Map(inv.hosts.map((h) => [h.id, h]));
  const servers = new Map(inv.servers.map((s) => [s.id, s]));
  const candidates = new Set(input.candidates);
  const failedHosts = new Set(input.failed.hosts);
  const failedRacks = new Set(input.failed.racks);
  const switchFabric = new Map(inv.switches.map((s) => [s.id, s.fabric]));
  const vlanFabric = new Map(inv.vlans.map((v) => [v.id, v.fabric]));
  const arrayFabric = new Map(inv.storageArrays.map((a) => [a.id, a.fabric]));
  const lunArray = new Map(inv.luns.map((l) => [l.id, l.array]));
  const images = new Map(inv.images.map((i) => [i.id, i]));

  const requested = new Set(input.servers);
  const seen = new Map<string, number>();
  for (const id of [...plan.assignments.map((a) => a.server), ...plan.unplaced.map((u) => u.server)]) seen.set(id, (seen.get(id) ?? 0) + 1);
  for (const id of requested) if (seen.get(id) !== 1) problems.push(`server ${id} appears ${seen.get(id) ?? 0} times among assignments and unplaced`);
  for (const id of seen.keys()) if (!requested.has(id)) problems.push(`server ${id} was not asked for`);

  const usable = (id: string, what: string): Host | undefined => {
    const host = hosts.get(id);
    if (host === undefined) return void problems.push(`${what} ${id} is not in the inventory`);
    if (!candidates.has(id)) problems.push(`${what} ${id} is not a candidate`);
    if (failedHosts.has(id) || failedRacks.has(host.rack)) problems.push(`${what} ${id} is in the failed domain`);
    return host;
  };
  const reaches = (server: Server, host: Host): string | undefined => {
    if (server.arch !== host.arch) return `arch ${server.arch} ≠ ${host.arch}`;
    const hostFabrics = new Set(host.nics.map((n) => switchFabric.get(n.switch)));
    for (const vlan of server.vlans) {
      const fabric = vlanFabric.get(vlan);
      if (fabric === undefined || !hostFabrics.has(fabric)) return `VLAN ${vlan} not reachable`;
    }
    for (const lun of server.luns) {
      const array = lunArray.get(lun);
      const fabric = array === undefined ? undefined : arrayFabric.get(array);
      if (fabric === undefined || host.hba?.fabric !== fabric) return `LUN ${lun} not reachable`;
    }
    return undefined;
  };

  const bareMetalHosts = new Map<string, string>();
  const converted = new Map(plan.conversions.map((c) => [c.host, c]));
  const vmsByHypervisor = new Map<string, Server[]>();
  for (const vm of input.existingVms ?? []) {
    vmsByHypervisor.set(vm.hypervisor, [...(vmsByHypervisor.get(vm.hypervisor) ?? []), servers.get(vm.server) as Server]);
  }
  const newVms = new Map<string, number>();
  const added = new Set<string>();

  for (const a of plan.assignments) {
    const server = servers.get(a.server);
    if (server === undefined) {
      problems.push(`assigned server ${a.server} is not in the inventory`);
      continue;
    }
    if (a.explanation.length === 0 || a.explanation.includes('\n')) problems.push(`assignment of ${a.server} has no one-line explanation`);
    if (a.mode === 'bare-metal') {
      const host = usable(a.host, 'bare-metal host');
      if (host === undefined) continue;
      const other = bareMetalHosts.get(a.host);
      if (other !== undefined) problems.push(`host ${a.host} runs both ${other} and ${a.server}`);
      bareMetalHosts.set(a.host, a.server);
      if (host.role !== 'spare' && host.role !== 'repurposable') problems.push(`bare-metal host ${a.host} is a ${host.role} host`);
      if (converted.has(a.host)) problems.push(`host ${a.host} is both converted and bare metal for ${a.server}`);
      if (server.cpus > host.cpus || server.memoryGiB > host.memoryGiB) problems.push(`${a.server} (${server.cpus}/${server.memoryGiB}) exceeds ${a.host} (${host.cpus}/${host.memoryGiB})`);
      const why = reaches(server, host);
      if (why) problems.push(`${a.server} on ${a.host}: ${why}`);
    } else {
      const host = usable(a.hypervisor, 'hypervisor');
      if (host === undefined) continue;
      if (server.bareMetalOnly) problems.push(`bare-metal-only ${a.server} placed as a VM on ${a.hypervisor}`);
      if (host.role !== 'hypervisor' && !converted.has(a.hypervisor)) problems.push(`${a.hypervisor} runs VM ${a.server} but is neither a hypervisor nor converted`);
      const why = reaches(server, host);
      if (why) problems.push(`VM ${a.server} on ${a.hypervisor}: ${why}`);
      vmsByHypervisor.set(a.hypervisor, [...(vmsByHypervisor.get(a.hypervisor) ?? []), server]);
      newVms.set(a.hypervisor, (newVms.get(a.hypervisor) ?? 0) + 1);
      added.add(a.server);
    }
  }

  const reserve = policy.hypervisorReserve;
  for (const [id, vms] of vmsByHypervisor) {
    const host = hosts.get(id);
    if (host === undefined || !newVms.has(id)) continue;
    const cpuCap = Math.max(0, host.cpus - reserve.cpus) * policy.vcpuOvercommit;
    const memCap = Math.max(0, host.memoryGiB - reserve.memoryGiB);
    const cpus = vms.reduce((sum, s) => sum + s.cpus, 0);
    const memory = vms.reduce((sum, s) => sum + s.memoryGiB, 0);
    if (cpus > cpuCap) problems.push(`hypervisor ${id}: ${cpus} vCPUs exceed ${cpuCap}`);
    if (memory > memCap) problems.push(`hypervisor ${id}: ${memory} GiB exceed ${memCap}`);
    // Only the plan's own VMs: one already running is the input's business.
    for (const vm of vms) if (added.has(vm.id) && vm.cpus > host.cpus - reserve.cpus) problems.push(`VM ${vm.id} has more vCPUs than ${id} has CPUs`);
    for (const vm of vms) {
      if (!added.has(vm.id) || vm.antiAffinity === undefined) continue;
      const members = vms.filter((other) => other.antiAffinity === vm.antiAffinity);
      if (members.length > 1) problems.push(`hypervisor ${id} runs ${vm.id} beside ${members.filter((m) => m !== vm).map((m) => m.id).join(', ')} of anti-affinity group ${vm.antiAffinity}`);
    }
  }

  for (const c of plan.conversions) {
    const host = usable(c.host, 'converted host');
    if (host === undefined) continue;
    if (!host.hypervisorCapable) problems.push(`converted host ${c.host} is not hypervisor-capable`);
    if (host.role !== 'spare' && host.role !== 'repurposable') problems.push(`converted host ${c.host} is a ${host.role} host`);
    const image = images.get(c.image);
    if (!image?.hypervisor || image.arch !== host.arch) problems.push(`conversion of ${c.host} boots ${c.image}, not a ${host.arch} hypervisor image`);
    if (!newVms.has(c.host)) problems.push(`converted host ${c.host} runs no VM`);
  }
  if (new Set(plan.conversions.map((c) => c.host)).size !== plan.conversions.length) problems.push('a host is converted twice');

  const preempted = new Set(plan.preemptions.map((p) => p.host));
  if (preempted.size !== plan.preemptions.length) problems.push('a host is preempted twice');
  for (const id of [...bareMetalHosts.keys(), ...converted.keys()]) {
    const host = hosts.get(id);
    if (host?.role === 'repurposable' && host.workload !== undefined && !preempted.has(id)) problems.push(`repurposable ${id} is used without preempting ${host.workload.name}`);
  }
  for (const p of plan.preemptions) {
    const host = hosts.get(p.host);
    if (!bareMetalHosts.has(p.host) && !converted.has(p.host)) problems.push(`${p.host} is preempted but not used`);
    if (host?.workload?.name !== p.workload || host.workload.priority !== p.priority) problems.push(`preemption on ${p.host} names the wrong workload`);
    if (!policy.allowPreemption) problems.push(`${p.host} is preempted although the policy forbids preemption`);
  }

  const recovered = [0, 0, 0, 0];
  for (const a of plan.assignments) {
    const tier = servers.get(a.server)?.priority ?? 0;
    recovered[tier] = (recovered[tier] ?? 0) + 1;
  }
  if (recovered.some((n, tier) => plan.score.recovered[tier] !== n)) problems.push(`score counts ${plan.score.recovered.join('/')} recovered per tier, the plan has ${recovered.join('/')}`);
  if (plan.score.preemptions !== plan.preemptions.length) problems.push('score preemptions differ from the plan');
  if (plan.score.conversions !== plan.conversions.length) problems.push('score conversions differ from the plan');
  return problems;
}
