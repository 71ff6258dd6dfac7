/**
 * `firebreak up --demo`: once everything runs, burn a rack that carries
 * production servers, follow the recovery to its end and judge it: every
 * server that ran on the rack must be running again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncidentProgress, Inventory } from '@firebreak/shared';
import { isFinal, renderReport } from './incident-view.ts';
import type { LiveView } from './live-view.ts';

const SETTLE_MS = 3_000;
const READY_TIMEOUT_MS = 120_000;
const RECOVERY_TIMEOUT_MS = 300_000;

export interface DemoTarget {
  rack: string;
  hosts: string[];
  /** Servers running on the rack: bare metal on its hosts, or VMs on its hypervisors. */
  servers: string[];
}

/** Of the racks that run production servers, the one with the fewest servers (fewest to place, so the lab's spares can take them all); ties by id. */
export function chooseDemoRack(inventory: Inventory): DemoTarget | undefined {
  const rackOf = new Map(inventory.hosts.map((h) => [h.id, h.rack]));
  const production = new Set(inventory.hosts.filter((h) => h.role === 'production').map((h) => h.id));
  const targets = inventory.racks.map((r) => {
    const servers = inventory.assignments
      .filter((a) => rackOf.get(a.mode === 'bare-metal' ? a.host : a.hypervisor) === r.id)
      .map((a) => a.server)
      .sort();
    const productionServers = inventory.assignments.filter((a) => a.mode === 'bare-metal' && production.has(a.host) && rackOf.get(a.host) === r.id).length;
    return { rack: r.id, hosts: inventory.hosts.filter((h) => h.rack === r.id).map((h) => h.id), servers, productionServers };
  });
  const best = targets
    .filter((t) => t.productionServers > 0)
    .sort((a, b) => a.servers.length - b.servers.length || (a.rack < b.rack ? -1 : a.rack > b.rack ? 1 : 0))[0];
  return best && { rack: best.rack, hosts: best.hosts, servers: best.servers };
}

export interface DemoOptions {
  inventory: Inventory;
  view: LiveView;
  burnRack(rack: string): string[];
  /** Aborted by Ctrl-C or a dying service. */
  signal: AbortSignal;
}

export interface DemoOutcome {
  code: 0 | 1;
  /** What to print once the view has stopped: the report, or why there is none. */
  summary: string[];
}

async function until(what: string, check: () => boolean, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(200, undefined, { signal });
  }
}

export async function runDemo(options: DemoOptions): Promise<DemoOutcome> {
  const { inventory, view, signal } = options;
  const target = chooseDemoRack(inventory);
  if (!target) return { code: 1, summary: ['demo: no rack of this lab runs production servers; nothing to burn'] };
  const expectedHosts = inventory.hosts.filter((h) => h.role !== 'spare').length;
  try {
    view.note(`demo: waiting for the services and for heartbeats from ${expectedHosts} hosts`);
    await until(
      'the system coming up',
      () => {
        const s = view.serviceStates();
        return ['boot-service', 'detector', 'executor'].every((n) => s.get(n) === 'ready') && s.get('planner') === 'leading' && view.heartbeatingHosts() >= expectedHosts;
      },
      READY_TIMEOUT_MS,
      signal,
    );
    view.note(`demo: everything is up; burning rack ${target.rack} (servers ${target.servers.join(', ')}) in ${SETTLE_MS / 1000} s`);
    await sleep(SETTLE_MS, undefined, { signal });
    const burned = options.burnRack(target.rack);
    view.note(`demo: burned rack ${target.rack}: ${burned.join(', ')} lost power, BMCs, links and heartbeats`);

    const touches = (p: IncidentProgress): boolean => p.trigger === 'event' && p.hosts.some((h) => target.hosts.includes(h));
    await until(
      `the recovery of rack ${target.rack}`,
      () => {
        const mine = view.allIncidents().filter(touches);
        return mine.length > 0 && mine.every(isFinal);
      },
      RECOVERY_TIMEOUT_MS,
      signal,
    );
  } catch (err) {
    const why = signal.aborted ? 'interrupted' : (err as Error).message;
    const open = view.allIncidents().map((p) => `  ${p.incidentId} ${p.phase}${p.message ? `: ${p.message}` : ''}`);
    return { code: 1, summary: [`demo: ${why}`, ...open] };
  }

  const finals = view.allIncidents().filter((p) => p.hosts.some((h) => target.hosts.includes(h)) && isFinal(p));
  const recovered = new Set(finals.flatMap((p) => (p.report ?? []).filter((r) => r.outcome === 'recovered').map((r) => r.server)));
  const missing = target.servers.filter((s) => !recovered.has(s));
  const summary = finals.flatMap((p) => renderReport(p));
  if (missing.length === 0) {
    summary.push(`demo: rack ${target.rack} burned and all ${target.servers.length} of its servers recovered`);
    return { code: 0, summary };
  }
  summary.push(`demo: rack ${target.rack} burned; not recovered: ${missing.join(', ')}`);
  return { code: 1, summary };
}
