/**
 * The reference scenario of the architecture: a rack of 20 production
 * servers burns; 10 machines may take them (6 powered-off spares, 2 of them
 * hypervisor-capable, and 4 repurposable hosts running print servers and
 * other low-priority work). The 8 most critical servers, the bare-metal-only
 * databases among them, need a machine each; the 2 capable spares become
 * hypervisors running 6 more (each holds three 64 GiB VMs in its 240 GiB
 * after the reserve, not four); the 6 least critical stay down.
 */
import type { PlacementInput } from '../placement-types.ts';
import { buildInventory, type HostSpec, type ServerSpec } from './placement-fixture.ts';

const burned = 'r9';

export function referenceScenario(): PlacementInput {
  const big = { cpus: 16, memoryGiB: 128 };
  const small = { cpus: 8, memoryGiB: 64 };
  const servers: ServerSpec[] = [
    { id: 'db-01', tier: 0, bareMetalOnly: true, antiAffinity: 'db', ...big },
    { id: 'db-02', tier: 0, bareMetalOnly: true, antiAffinity: 'db', ...big },
    { id: 'auth-01', tier: 0, ...big },
    { id: 'billing-01', tier: 1, bareMetalOnly: true, ...big },
    { id: 'api-01', tier: 1, ...big },
    { id: 'api-02', tier: 1, ...big },
    { id: 'api-03', tier: 1, ...big },
    { id: 'api-04', tier: 1, ...big },
    { id: 'web-01', tier: 2, antiAffinity: 'web', ...small },
    { id: 'web-02', tier: 2, antiAffinity: 'web', ...small },
    { id: 'web-03', tier: 2, ...small },
    { id: 'web-04', tier: 2, ...small },
    { id: 'search-01', tier: 2, ...small },
    { id: 'mq-01', tier: 2, ...small },
    { id: 'wiki-01', tier: 3, ...small },
    { id: 'reports-01', tier: 3, ...small },
    { id: 'reports-02', tier: 3, ...small },
    { id: 'intranet-01', tier: 3, ...small },
    { id: 'chat-01', tier: 3, ...small },
    { id: 'metrics-01', tier: 3, ...small },
  ];
  const machine = { cpus: 32, memoryGiB: 256 };
  const hosts: HostSpec[] = [
    // The burned rack: the production hosts the 20 servers ran on.
    ...servers.map((_, i): HostSpec => ({ id: `${burned}-h${String(i + 1).padStart(2, '0')}`, rack: burned, role: 'production', ...machine })),
    { id: 'r1-h01', rack: 'r1', role: 'spare', ...machine },
    { id: 'r1-h02', rack: 'r1', role: 'spare', ...machine },
    { id: 'r1-h03', rack: 'r1', role: 'spare', ...machine },
    { id: 'r2-h01', rack: 'r2', role: 'spare', ...machine },
    { id: 'r2-h02', rack: 'r2', role: 'spare', hypervisorCapable: true, ...machine },
    { id: 'r2-h03', rack: 'r2', role: 'spare', hypervisorCapable: true, ...machine },
    { id: 'r1-h04', rack: 'r1', role: 'repurposable', workload: { name: 'print-server', priority: 9 }, ...machine },
    { id: 'r1-h05', rack: 'r1', role: 'repurposable', workload: { name: 'ci-runner', priority: 8 }, ...machine },
    { id: 'r2-h04', rack: 'r2', role: 'repurposable', workload: { name: 'batch', priority: 7 }, ...machine },
    { id: 'r2-h05', rack: 'r2', role: 'repurposable', workload: { name: 'dev-sandbox', priority: 9 }, ...machine },
    // Busy production hosts outside the burned rack: never candidates.
    { id: 'r1-h06', rack: 'r1', role: 'production', ...machine },
    { id: 'r2-h06', rack: 'r2', role: 'production', ...machine },
  ];
  const inventory = buildInventory({ hosts, servers });
  const usable = hosts.filter((h) => h.role === 'spare' || h.role === 'repurposable').map((h) => h.id);
  return {
    inventory,
    servers: servers.map((s) => s.id),
    candidates: usable,
    failed: { hosts: [], racks: [burned] },
  };
}
