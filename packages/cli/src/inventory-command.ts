/**
 * `firebreak inventory validate <file>` and `firebreak inventory import <file>`:
 * the shared loader's verdict on a file, every problem with its field and
 * line; and storing a valid file in Redis, where services started without
 * FB_INVENTORY load it.
 */
import { parseArgs } from 'node:util';
import { InventoryError, ledgerDifferences, ledgerSeedOf, loadInventoryFile, type Inventory, type InventoryProblem } from '@firebreak/shared';
import { resolveUrls, withStore } from './connections.ts';
import { UsageError } from './usage-error.ts';

export const inventoryUsage = `  inventory validate <file> [--json]
      check an inventory (YAML or JSON): every problem with its field and line
  inventory import <file> [--redis-url URL] [--json]
      validate, then store it in Redis for services started without FB_INVENTORY`;

/** Already reported on the terminal: exit 2 without another message. */
export class ReportedError extends Error {
  override name = 'ReportedError';
}

function summary(inv: Inventory): Record<string, number> {
  return {
    sites: new Set(inv.hosts.map((h) => h.site)).size,
    racks: inv.racks.length,
    hosts: inv.hosts.length,
    servers: inv.servers.length,
    assignments: inv.assignments.length,
  };
}

function describe(inv: Inventory): string {
  const s = summary(inv);
  return `${s.hosts} hosts in ${s.racks} racks at ${s.sites} site(s), ${s.servers} servers, ${s.assignments} assignments`;
}

function problemLine(file: string, p: InventoryProblem): string {
  return `  ${file}${p.line === undefined ? '' : `:${p.line}`}: ${p.path}: ${p.message}`;
}

/** The inventory, or (having printed every problem) a ReportedError. */
async function validated(file: string, json: boolean, command: 'validate' | 'import'): Promise<Inventory> {
  try {
    return await loadInventoryFile(file);
  } catch (err) {
    if (!(err instanceof InventoryError)) throw err;
    if (json) console.log(JSON.stringify({ file, valid: false, problems: err.problems }, null, 2));
    const n = err.problems.length;
    console.error(
      [
        `firebreak: ${file} is not a valid inventory (${n} problem${n === 1 ? '' : 's'}):`,
        ...err.problems.map((p) => problemLine(file, p)),
        `fix ${n === 1 ? 'it' : 'them'} and run "firebreak inventory ${command} ${file}" again`,
      ].join('\n'),
    );
    throw new ReportedError(err.message);
  }
}

export async function inventory(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, 'redis-url': { type: 'string' } },
  });
  if (action !== 'validate' && action !== 'import') {
    throw new UsageError(`usage: firebreak inventory validate|import <file>${action === undefined ? '' : ` (got "${action}")`}`);
  }
  const [file, extra] = positionals;
  if (file === undefined || extra !== undefined) throw new UsageError(`usage: firebreak inventory ${action} <file> (one YAML or JSON file)`);
  if (action === 'validate' && values['redis-url'] !== undefined) throw new UsageError('inventory validate reads only the file: drop --redis-url');

  const inv = await validated(file, values.json, action);
  if (action === 'validate') {
    if (values.json) console.log(JSON.stringify({ file, valid: true, problems: [], summary: summary(inv) }, null, 2));
    else console.log(`${file}: valid inventory, ${describe(inv)}`);
    return 0;
  }
  const { redisUrl } = await resolveUrls({ redisUrl: values['redis-url'] });
  // The inventory seeds the fleet ledger with what it lacks; where the ledger has moved on (recoveries, moves) it is kept, and said.
  const { version, seeded, differences } = await withStore(redisUrl, async (store) => {
    const version = await store.inventory.putInventory(inv);
    const seed = ledgerSeedOf(inv, Date.now());
    const seeded = await store.ledger.seed(seed);
    return { version, seeded, differences: ledgerDifferences(seed, await store.ledger.read()) };
  });
  if (values.json) console.log(JSON.stringify({ file, version, summary: summary(inv), ledger: { seeded, differences } }, null, 2));
  else {
    console.log(`imported ${file} as inventory version ${version}: ${describe(inv)}`);
    console.log(`  fleet ledger: ${seeded.servers} servers and ${seeded.hosts} hosts added; ${differences.length === 0 ? 'it agrees with the inventory' : `${differences.length} differences (the ledger is kept):`}`);
    for (const line of differences) console.log(`    ${line}`);
    console.log('  services started without FB_INVENTORY load it at start (restart running ones to pick it up)');
  }
  return 0;
}
