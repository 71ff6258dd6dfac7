/** One-line explanations of placement decisions, written from the final plan so every figure in them holds. */
import type { HostOffer, ServerNeed } from './placement-context.ts';
import type { HostState } from './placement-search.ts';

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function describeServer(need: ServerNeed): string {
  return `${need.id} (tier ${need.tier}${need.bareMetalOnly ? ', bare-metal only' : ''}, ${need.cpus} vCPU/${round(need.memoryGiB)} GiB)`;
}

function fabrics(need: ServerNeed): string {
  const net = `net ${need.netFabrics.join('+')}`;
  return need.storageFabrics.length > 0 ? `${net}, san ${need.storageFabrics.join('+')}` : net;
}

function hostLabel(offer: HostOffer): string {
  if (offer.kind === 'repurposable') return offer.workload ? 'repurposable' : 'idle repurposable';
  return offer.kind;
}

export function explainBareMetal(need: ServerNeed, offer: HostOffer): string {
  const preempts = offer.workload ? `, preempting ${offer.workload.name} p${offer.workload.priority}` : '';
  return `${describeServer(need)} → ${hostLabel(offer)} ${offer.id} (${offer.cpus}/${round(offer.memoryGiB)}, best fit${preempts}, ${fabrics(need)})`;
}

export function explainVm(need: ServerNeed, host: HostState): string {
  const offer = host.offer;
  const origin = host.converted ? `new hypervisor on ${hostLabel(offer)}` : 'hypervisor';
  return (
    `${describeServer(need)} → VM on ${origin} ${offer.id} ` +
    `(${host.vms.length} new VM${host.vms.length === 1 ? '' : 's'}; ${round(host.usedCpus)}/${round(offer.vmCpuCapacity)} vCPU, ` +
    `${round(host.usedMemoryGiB)}/${round(offer.vmMemoryCapacity)} GiB used; ${fabrics(need)})`
  );
}

function names(host: HostState): string {
  const ids = host.vms.map((s) => s.need.id);
  return ids.length <= 4 ? ids.join(', ') : `${ids.slice(0, 4).join(', ')} and ${ids.length - 4} more`;
}

export function explainPreemption(host: HostState): string {
  const workload = host.offer.workload as { name: string; priority: number };
  const use = host.mode === 'bm' ? `so it can run ${host.occupant?.need.id} on bare metal` : `so it can become a hypervisor for ${names(host)}`;
  return `preempt ${workload.name} (priority ${workload.priority}) on ${host.offer.id} ${use}; no host that costs less could take ${host.mode === 'bm' ? 'it' : 'them'}`;
}

export function explainConversion(host: HostState, image: string): string {
  const offer = host.offer;
  const gain = host.vms.length > 1 ? ' instead of one server on bare metal' : '';
  return `convert ${hostLabel(offer)} ${offer.id} (${offer.cpus} CPUs/${round(offer.memoryGiB)} GiB) to a hypervisor with ${image}: it runs ${host.vms.length} VM${host.vms.length === 1 ? '' : 's'} (${names(host)})${gain}`;
}
