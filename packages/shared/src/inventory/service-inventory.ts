/**
 * Where a service gets its inventory: the file FB_INVENTORY names when it is
 * set, else the document `firebreak inventory import <file>` stored in Redis.
 * Either way it is validated whole before a service may use it.
 */
import { ConfigError, errorCodes, FirebreakError } from '../errors.ts';
import { Inventory } from '../schemas/inventory.schema.ts';
import { formatPath } from '../schemas/validation.ts';
import type { InventoryStore, VersionedInventory } from '../store/inventory-store.ts';
import { crossCheck } from './cross-check.ts';
import { loadInventoryFile } from './loader.ts';

export interface ServiceInventoryOptions {
  /** FB_INVENTORY; empty or absent means "use the imported inventory". */
  file?: string | undefined;
  store: { readonly inventory: Pick<InventoryStore, 'getInventory'> };
}

export interface ServiceInventory {
  inventory: Inventory;
  /** For the start-up log line: the file path, or `redis (version N)`. */
  source: string;
  /** The imported document's version; absent for a file. */
  version?: number;
}

export const noInventoryMessage = 'no inventory: set FB_INVENTORY to a file or run `firebreak inventory import <file>`';

/**
 * Throws InventoryError for a bad file (it lists every problem), and
 * ConfigError (a service exits 2) when there is no inventory at all or the
 * imported one no longer passes validation.
 */
export async function loadServiceInventory(options: ServiceInventoryOptions): Promise<ServiceInventory> {
  if (options.file) return { inventory: await loadInventoryFile(options.file), source: options.file };

  const fix = 'import a valid one with `firebreak inventory import <file>` or set FB_INVENTORY to a file';
  let stored: VersionedInventory<Inventory> | undefined;
  try {
    stored = await options.store.inventory.getInventory(Inventory);
  } catch (err) {
    if (err instanceof FirebreakError && err.code === errorCodes.invalidInventory) {
      throw new ConfigError(`the inventory imported into Redis is invalid (${err.message}); ${fix}`);
    }
    throw err;
  }
  if (stored === undefined) throw new ConfigError(noInventoryMessage);
  // The schema ran on the way out; the rules across sections run here, as for a file.
  const problems = crossCheck(stored.inventory);
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${formatPath(p.path)}: ${p.message}`).join('\n');
    throw new ConfigError(`the inventory imported into Redis (version ${stored.version}) is invalid:\n${lines}\n${fix}`);
  }
  return { inventory: stored.inventory, source: `redis (version ${stored.version})`, version: stored.version };
}
