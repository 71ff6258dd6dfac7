/**
 * The reference scenario's data center as it runs day to day, for readiness
 * tests: 18 of the 20 servers on the production hosts of rack r9, wiki-01 on
 * r1-h06 and metrics-01 on r2-h06; 6 spares and 4 repurposable hosts in racks
 * r1 and r2. Losing r9 is the reference scenario less those two servers.
 */
import { Inventory } from '@firebreak/shared';
import { referenceScenario } from '../../placement/testing/reference-scenario.ts';

export function referenceFleet(): Inventory {
  const scenario = referenceScenario();
  const r9 = scenario.inventory.hosts.filter((h) => h.rack === 'r9').map((h) => h.id);
  const hostOf = (server: string, i: number): string => (server === 'wiki-01' ? 'r1-h06' : server === 'metrics-01' ? 'r2-h06' : (r9[i] as string));
  return Inventory.parse({ ...scenario.inventory, assignments: scenario.servers.map((server, i) => ({ server, mode: 'bare-metal', host: hostOf(server, i) })) });
}
