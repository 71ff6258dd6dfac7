/** Writes an inventory as the shared loader reads it: YAML or JSON, by file extension. */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { InventoryFormat } from '@firebreak/shared';
import { stringify } from 'yaml';
import type { InventoryInput } from './inventory-types.ts';

const formatsByExtension: Readonly<Record<string, InventoryFormat>> = { '.yaml': 'yaml', '.yml': 'yaml', '.json': 'json' };

export function inventoryFormatOf(path: string): InventoryFormat {
  const extension = extname(path).toLowerCase();
  const format = formatsByExtension[extension];
  if (format === undefined) throw new Error(`cannot tell an inventory format from "${path}" (expected .yaml, .yml or .json)`);
  return format;
}

/** The file's text; the same inventory always gives the same bytes. */
export function formatInventory(inventory: InventoryInput, format: InventoryFormat): string {
  if (format === 'json') return `${JSON.stringify(inventory, null, 2)}\n`;
  // No anchors/aliases: every host stays readable on its own. No folding: a line is one value.
  return stringify(inventory, { aliasDuplicateObjects: false, lineWidth: 0 });
}

export async function writeInventoryFile(inventory: InventoryInput, path: string): Promise<void> {
  await writeFile(path, formatInventory(inventory, inventoryFormatOf(path)), 'utf8');
}
