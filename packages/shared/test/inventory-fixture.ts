/** The inventory tests' fixture and the helpers that break it in exactly one place. */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { InventoryError, type InventoryFormat, type InventoryProblem, parseInventory } from '../src/inventory/index.ts';

export const fixturePath = fileURLToPath(new URL('./fixtures/inventory/site1.yaml', import.meta.url));

/** Replaces the one occurrence of `from`, so a broken fixture is broken exactly where the test says. */
export function edit(text: string, from: string, to: string): string {
  assert.equal(text.split(from).length, 2, `expected exactly one ${JSON.stringify(from)} in the fixture`);
  return text.replace(from, to);
}

/** 1-based line of the one occurrence of `needle`. */
export function lineOf(text: string, needle: string): number {
  assert.equal(text.split(needle).length, 2, `expected exactly one ${JSON.stringify(needle)} in the fixture`);
  return text.slice(0, text.indexOf(needle)).split('\n').length;
}

function inventoryError(fn: () => unknown): InventoryError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InventoryError, `expected an InventoryError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the inventory to be rejected');
}

export function parseError(text: string, format: InventoryFormat = 'yaml'): InventoryError {
  return inventoryError(() => parseInventory(text, { format, source: `site1.${format}` }));
}

/** Paths and lines only; messages are checked against the error text. */
export function located(err: InventoryError): Omit<InventoryProblem, 'message'>[] {
  return err.problems.map(({ path, line }) => (line === undefined ? { path } : { path, line }));
}
