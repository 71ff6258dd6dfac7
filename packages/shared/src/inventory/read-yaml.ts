import { CORE_SCHEMA, load, loadAll, YAMLException, type EventType, type State } from 'js-yaml';
import { InventoryError } from './inventory-error.ts';

/**
 * A hand-written inventory shares a few values (a `tls:` block, a server's
 * `vlans:`) through anchors; a hundred aliases is plenty, and a file with many
 * more is more likely an alias bomb than an inventory.
 */
export const maxAliases = 100;

/**
 * How many nodes all aliases together may stand for. js-yaml hands back the
 * anchored object itself for each alias, so nothing is copied, but the schema
 * walks that object once per alias: anchors nested in anchors ("billion
 * laughs") would make that walk exponential with only a few dozen aliases.
 */
export const maxAliasedNodes = 10_000;

/**
 * Parses YAML as YAML 1.2's core schema reads it: `true`/`false` and `null`/`~`
 * only, no base-60 numbers, so an unquoted MAC stays a string. js-yaml 4
 * rather than the `yaml` package: `yaml`'s document tree made a 50,000-host
 * file take some 50 s and 3 GB to load, where js-yaml takes 2 s and 200 MB
 * (issue #15). Duplicate keys are refused (`json: false`), never silently
 * overwritten.
 */
export function readYaml(text: string, source: string): unknown {
  /** Each anchored value an alias stands for, with how many aliases name it. */
  const aliased = new Map<unknown, number>();
  let aliases = 0;
  // An alias has no children, so the last node opened is the alias itself; by
  // its close js-yaml has moved past the line break after it.
  let lastOpenLine = 0;
  // js-yaml may close one node twice: a block sequence's entry is first tried as a mapping's key.
  let lastAliasEnd = -1;
  const listener = (event: EventType, state: State): void => {
    if (event === 'open') lastOpenLine = state.line;
    if (event !== 'close' || !isAlias(state) || state.position === lastAliasEnd) return;
    lastAliasEnd = state.position;
    aliases++;
    if (aliases > maxAliases) {
      throw new InventoryError(source, [
        { path: '(syntax)', message: `more than ${maxAliases} aliases, which looks like an alias bomb`, line: lastOpenLine + 1 },
      ]);
    }
    aliased.set(state.result, (aliased.get(state.result) ?? 0) + 1);
  };

  let data: unknown;
  try {
    data = load(text, { schema: CORE_SCHEMA, json: false, listener });
  } catch (err) {
    if (err instanceof InventoryError || !(err instanceof YAMLException)) throw err;
    // js-yaml stops at the first mistake, so there are no follow-on complaints to weed out.
    // Its `message` quotes the offending lines; the reason alone reads better in a list of problems.
    const mark = err.mark as YAMLException['mark'] | undefined;
    const line = mark === undefined ? secondDocumentLine(text) : mark.line + 1;
    const problem = { path: '(syntax)', message: err.reason };
    throw new InventoryError(source, [line === undefined ? problem : { ...problem, line }], err);
  }
  if (aliased.size > 0) {
    const refused = aliasExpansionProblem(aliased);
    if (refused !== undefined) throw new InventoryError(source, [{ path: '(syntax)', message: refused }]);
  }
  // An empty document is null, as JSON's `null` is, not undefined.
  return data ?? null;
}

/**
 * Where a second document in the file starts, at its `---`: js-yaml names a
 * line for every mistake but this one, which it finds only once it has read
 * every document. Reads the text again and stops where the second document's
 * root opens.
 */
function secondDocumentLine(text: string): number | undefined {
  let depth = 0;
  let firstEnd: number | undefined;
  let line: number | undefined;
  const listener = (event: EventType, state: State): void => {
    if (event === 'close') {
      if (--depth === 0) firstEnd ??= state.position;
      return;
    }
    if (depth++ !== 0 || firstEnd === undefined) return;
    // Its `---` is the last line before its root to begin with one; after a `...` it may have none.
    const marker = state.input.lastIndexOf('\n---', state.position);
    let at = marker !== -1 && marker >= firstEnd - 1 ? marker + 1 : state.position;
    line = state.line + 1;
    while ((at = state.input.indexOf('\n', at)) !== -1 && at < state.position) {
      line--;
      at++;
    }
    throw new SecondDocument();
  };
  try {
    loadAll(text, () => undefined, { schema: CORE_SCHEMA, json: false, listener });
  } catch (err) {
    if (!(err instanceof SecondDocument) && !(err instanceof YAMLException)) throw err;
  }
  return line;
}

/** Ends the second reading of a file with two documents; never leaves this module. */
class SecondDocument extends Error {}

/** What js-yaml's listener sees of the state; its types leave out `tag` and allow no null `kind`. */
interface NodeState {
  kind: string | null;
  tag?: string | null;
  result: unknown;
}

/**
 * An alias is the one node js-yaml closes without giving it a kind or a tag
 * (scalars and collections get a kind; an empty node has no result). An
 * alias of a null scalar goes uncounted, which is harmless: it stands for one node.
 */
function isAlias(state: State): boolean {
  const node = state as unknown as NodeState;
  return node.kind === null && node.tag === null && node.result !== null && node.result !== undefined;
}

/** As deep as js-yaml lets a file nest; aliases may not nest values deeper. */
const maxDepth = 100;

/** Ends the walk over aliased values; never leaves this module. */
class Refused extends Error {}

/**
 * Why the aliases cannot be let through, if they cannot: an alias inside the
 * value it names makes a cycle no schema walk would finish, and nested anchors
 * can stand for far more than the file holds, or nest deeper than it may.
 * Walks only the aliased values, and each at most once, stopping as soon as a
 * limit is passed.
 */
function aliasExpansionProblem(aliased: ReadonlyMap<unknown, number>): string | undefined {
  const sizes = new Map<unknown, number>();
  const open = new Set<unknown>();
  const tooMany = `aliases stand for more than ${maxAliasedNodes} nodes in all, which looks like an alias bomb`;

  /** The number of nodes `value` stands for with every alias in it expanded. */
  const sizeOf = (value: unknown, depth: number): number => {
    if (typeof value !== 'object' || value === null) return 1;
    const known = sizes.get(value);
    if (known !== undefined) return known;
    if (open.has(value)) throw new Refused('an alias refers to a value that contains it');
    if (depth > maxDepth) throw new Refused(`aliases nest values more than ${maxDepth} levels deep`);
    open.add(value);
    let size = 1;
    for (const child of Object.values(value)) {
      size += sizeOf(child, depth + 1);
      if (size > maxAliasedNodes) throw new Refused(tooMany);
    }
    open.delete(value);
    // Only an aliased value can be met twice; remembering others would cost a map entry per node.
    if (aliased.has(value)) sizes.set(value, size);
    return size;
  };

  try {
    let total = 0;
    for (const [value, uses] of aliased) {
      total += uses * sizeOf(value, 1);
      if (total > maxAliasedNodes) return tooMany;
    }
    return undefined;
  } catch (err) {
    if (err instanceof Refused) return err.message;
    throw err;
  }
}
