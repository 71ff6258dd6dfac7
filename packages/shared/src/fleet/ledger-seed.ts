/**
 * What the inventory says of placement, as fleet-ledger entries: it seeds the
 * ledger once, and afterwards tells where the ledger has moved on from it.
 */
import type { Inventory } from '../schemas/inventory.schema.ts';
import type { HostStatus, ServerPlacement } from '../schemas/ledger.schema.ts';
import type { LedgerSeed, LedgerState } from '../store/fleet-ledger.ts';

export function ledgerSeedOf(inventory: Inventory, at: number): LedgerSeed {
  const servers = new Map<string, ServerPlacement>(inventory.servers.map((s) => [s.id, { state: 'unplaced' }]));
  const homeOf = new Map<string, string>();
  const vmsOn = new Map<string, string[]>();
  for (const a of inventory.assignments) {
    if (a.mode === 'bare-metal') {
      servers.set(a.server, { state: 'bare-metal', host: a.host });
      homeOf.set(a.host, a.server);
    } else {
      servers.set(a.server, { state: 'vm', hypervisor: a.hypervisor });
      vmsOn.set(a.hypervisor, [...(vmsOn.get(a.hypervisor) ?? []), a.server].sort());
    }
  }
  const hosts = new Map<string, HostStatus>();
  for (const h of inventory.hosts) {
    const home = homeOf.get(h.id);
    const vms = vmsOn.get(h.id);
    if (home !== undefined) hosts.set(h.id, { role: 'home', server: home });
    else if (vms !== undefined || h.role === 'hypervisor') hosts.set(h.id, { role: 'hypervisor', servers: vms ?? [], converted: false });
    else if (h.role === 'production') hosts.set(h.id, { role: 'idle' });
    else hosts.set(h.id, { role: h.role });
  }
  return { at, servers, hosts };
}

/** Where the ledger and a (re-imported) inventory disagree, one line each; the ledger stays as it is. */
export function ledgerDifferences(seed: LedgerSeed, ledger: LedgerState): string[] {
  return [
    ...differences('server', seed.servers, ledger.servers, (e) => e.placement),
    ...differences('host', seed.hosts, ledger.hosts, (e) => e.status),
  ];
}

function differences<T, E extends { since: number; why: { kind: string; id: string } }>(
  what: 'server' | 'host',
  seeded: ReadonlyMap<string, T>,
  recorded: ReadonlyMap<string, E>,
  valueOf: (entry: E) => unknown,
): string[] {
  const lines: string[] = [];
  for (const [id, value] of seeded) {
    const entry = recorded.get(id);
    if (entry === undefined) lines.push(`${what} ${id}: new, added to the ledger as ${JSON.stringify(value)}`);
    else if (JSON.stringify(valueOf(entry)) !== JSON.stringify(value)) {
      lines.push(
        `${what} ${id}: the inventory says ${JSON.stringify(value)}, the ledger ${JSON.stringify(valueOf(entry))} ` +
          `since ${new Date(entry.since).toISOString()} (${entry.why.kind} ${entry.why.id}); the ledger is kept`,
      );
    }
  }
  for (const id of recorded.keys()) if (!seeded.has(id)) lines.push(`${what} ${id}: in the ledger but no longer in the inventory`);
  return lines;
}
