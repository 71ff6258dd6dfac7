import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { z } from 'zod';
import { Inventory } from '../schemas/inventory.schema.ts';
import { formatPath } from '../schemas/validation.ts';
import { crossCheck } from './cross-check.ts';
import { InventoryError, type InventoryProblem } from './inventory-error.ts';
import { lineLocator, newlines } from './line-locator.ts';
import { readYaml } from './read-yaml.ts';
import { unknownFieldMessage } from './unknown-field.ts';

export type InventoryFormat = 'yaml' | 'json';

export interface ParseInventoryOptions {
  format: InventoryFormat;
  /** Names the input in error messages, usually its file path. */
  source?: string;
}

const formatsByExtension = new Map<string, InventoryFormat>([
  ['.yaml', 'yaml'],
  ['.yml', 'yaml'],
  ['.json', 'json'],
]);

/** Reads and validates an inventory file; the format follows the extension (.yaml, .yml, .json). */
export async function loadInventoryFile(path: string): Promise<Inventory> {
  const extension = extname(path).toLowerCase();
  const format = formatsByExtension.get(extension);
  if (format === undefined) {
    const found = extension === '' ? 'no file extension' : `unsupported extension "${extension}"`;
    throw new InventoryError(path, [{ path: '(file)', message: `${found} (expected .yaml, .yml or .json)` }]);
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InventoryError(path, [{ path: '(file)', message: `cannot be read: ${errorMessage(err)}` }], err);
  }
  return parseInventory(text, { format, source: path });
}

/**
 * Returns the inventory only when it is wholly valid: syntax, schema, then
 * cross-references. Otherwise throws an InventoryError listing every problem
 * found at the first stage that failed, each with its field path and line.
 */
export function parseInventory(text: string, options: ParseInventoryOptions): Inventory {
  const source = options.source ?? `(${options.format} text)`;
  const data = options.format === 'yaml' ? readYaml(text, source) : readJson(text, source);
  const parsed = Inventory.safeParse(data, { error: issueMessage });
  const found: readonly Found[] = parsed.success ? crossCheck(parsed.data) : parsed.error.issues.flatMap(perField);
  if (parsed.success && found.length === 0) return parsed.data;

  const lineOf = lineLocator(text, data, found.map(({ path }) => path));
  throw new InventoryError(
    source,
    found.map(({ path, message }) =>
      withLine({ path: formatPath(path), message: message.replace(/^Invalid input: /, '') }, lineOf(path)),
    ),
  );
}

function readJson(text: string, source: string): unknown {
  try {
    // Editors on Windows may save a byte-order mark, which JSON.parse refuses.
    return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
  } catch (err) {
    const message = errorMessage(err);
    // V8 names an offset for most mistakes; for an unexpected token it quotes the surrounding text instead.
    const position = /at position (\d+)/.exec(message)?.[1];
    const offset = position !== undefined ? Number(position) : message.includes('end of JSON input') ? text.length : undefined;
    const problem = { path: '(syntax)', message };
    throw new InventoryError(source, [withLine(problem, offset === undefined ? undefined : 1 + newlines(text, 0, offset))], err);
  }
}

type Found = { path: readonly PropertyKey[]; message: string };

/**
 * A missing field reads better as "required" than as "received undefined",
 * and an unknown one with the field it likely misspells. Zod reports an
 * object's unknown fields as one issue; its message holds one line per field
 * for perField to split.
 */
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'unrecognized_keys') {
    const known = issue.inst instanceof z.ZodObject ? Object.keys(issue.inst.shape) : [];
    return issue.keys.map((key) => unknownFieldMessage(key, known)).join('\n');
  }
  if (issue.input !== undefined) return undefined;
  if (issue.code === 'invalid_type') return `required (expected ${issue.expected})`;
  if (issue.code === 'invalid_value') return `required (expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')})`;
  return undefined;
}

/** One problem per unknown field, at the field's own path, so each is placed on its own line. */
function perField(issue: z.core.$ZodIssue): Found[] {
  if (issue.code !== 'unrecognized_keys') return [issue];
  const messages = issue.message.split('\n');
  return issue.keys.map((key, k) => ({ path: [...issue.path, key], message: messages[k] ?? 'unknown field' }));
}

function withLine(problem: InventoryProblem, line: number | undefined): InventoryProblem {
  return line === undefined ? problem : { ...problem, line };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
