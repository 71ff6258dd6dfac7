import { CORE_SCHEMA, load, YAMLException, type EventType, type State } from 'js-yaml';

/** A field path as zod and the cross-checks name it: mapping keys and sequence indices. */
export type FieldPath = readonly PropertyKey[];

type LineOf = (path: FieldPath) => number | undefined;

/**
 * Places field paths on their lines. JSON is YAML too, so one locator serves
 * both formats. It follows a path as far as the document has it and answers
 * with the deepest line reached: a missing field points at its parent, a map
 * entry at its key (a block value such as `nics:` starts a line later), a
 * sequence entry at its first line, and a path through an alias continues in
 * the anchored text.
 *
 * It reads the text again with js-yaml, which builds no document tree: it only
 * reports each node's start and end to a listener. The listener follows only
 * the nodes on the paths asked about, so a 50,000-host file costs about what
 * loading it does, where `yaml`'s document tree took two minutes and 3 GB
 * (issue #15). `data` is what the text was read to; it tells each followed
 * node's shape before js-yaml has read it.
 */
export function lineLocator(text: string, data: unknown, paths: readonly FieldPath[]): LineOf {
  const root = new Step();
  for (const path of paths) {
    let step = root;
    for (const key of path) step = step.child(String(key));
  }
  // Each further scan follows the paths that went through an alias into the anchored text.
  let aliased = scan(text, data, root, undefined);
  while (aliased.size > 0) aliased = scan(text, data, root, aliased);

  return (path) => {
    let step: Step | undefined = root;
    let line = root.line;
    for (const key of path) {
      step = step.next.get(String(key));
      if (step === undefined) break;
      line = step.line ?? line;
    }
    return line;
  };
}

/** One key of the paths asked about, keyed as js-yaml keys a mapping; `line` once found. */
class Step {
  readonly next = new Map<string, Step>();
  line: number | undefined;

  child(key: string): Step {
    let step = this.next.get(key);
    if (step === undefined) {
      step = new Step();
      this.next.set(key, step);
    }
    return step;
  }
}

/** Paths that reached an alias and go on inside the value it names, by where that value starts. */
type Aliased = Map<number, { steps: readonly Step[]; value: object }[]>;

/** What the listener reads of js-yaml's state; its types leave out `anchor` and allow no null `kind`. */
interface ParserState {
  input: string;
  position: number;
  line: number;
  kind: string | null;
  anchor: string | null;
  result: unknown;
}

/** A mapping or sequence on some path asked about, while js-yaml reads it. */
interface Frame {
  readonly depth: number;
  /** Where js-yaml opened it: at its content, or just after the `:` before it. */
  readonly open: number;
  /** More than one when an alias makes two paths meet here. */
  readonly steps: readonly Step[];
  /** The same node in the data, which says whether it is a sequence. */
  readonly value: object;
  readonly isSeq: boolean;
  /** Keys asked about that have not been read yet; shared with a frame that stands for the same node. */
  readonly remaining: Set<string>;
  /** Child nodes opened, including any js-yaml then backed out of. */
  children: number;
  /** The index the next sequence entry has. */
  index: number;
  /** The key of the entry being read. */
  key: string | undefined;
  keyLine: number;
  /** A key has been read and its `:` seen, so the next child is its value. */
  expectValue: boolean;
  /** Where the last child ended; a child that starts before it means js-yaml backed out. */
  lastClose: number;
  /** Its only child is the node itself, read a second way (see `isSameNode`). */
  delegated: boolean;
}

/** Ends a scan once every path asked about has been read; never leaves this module. */
class Done extends Error {}

/**
 * One js-yaml pass. The first follows the paths from the document's root; a
 * later one follows only the `aliased` paths, from where each anchored value
 * starts. Returns the paths found to reach an alias, for the next pass.
 */
function scan(text: string, data: unknown, root: Step, aliased: Aliased | undefined): Aliased {
  const frames: Frame[] = [];
  /** Where each open node started, innermost last. */
  const opens: number[] = [];
  /** Each anchored mapping or sequence read so far, by where it starts. */
  const anchors = new Map<object, number>();
  const found: Aliased = new Map();
  let rootFrame: Frame | undefined;
  let depth = 0;

  const push = (state: ParserState, steps: readonly Step[], value: object, remaining?: Set<string>): Frame => {
    const frame: Frame = {
      depth,
      open: state.position,
      steps,
      value,
      isSeq: Array.isArray(value),
      remaining: remaining ?? wantedKeys(steps),
      children: 0,
      index: 0,
      key: undefined,
      keyLine: 0,
      expectValue: false,
      lastClose: -1,
      delegated: false,
    };
    frames.push(frame);
    return frame;
  };

  /** The steps for `key` below `frame`, with the key's line noted; follows the child if it is a collection. */
  const reach = (state: ParserState, frame: Frame, key: string, line: number | undefined, value: unknown): void => {
    let steps: Step[] | undefined;
    for (const step of frame.steps) {
      const next = step.next.get(key);
      if (next === undefined) continue;
      if (line !== undefined) next.line = line;
      (steps ??= []).push(next);
    }
    if (steps !== undefined && isCollection(value) && steps.some((step) => step.next.size > 0)) push(state, steps, value);
  };

  /**
   * Notes the lines of the empty entries of a block sequence whose `-` lie in
   * input[from, state.position); the last `-` is the entry being opened, if one is.
   */
  const emptyEntries = (state: ParserState, frame: Frame, from: number, opening: boolean): void => {
    const items = frame.value as readonly unknown[];
    const starts = entryStarts(state.input, from, state.position);
    if (opening) starts.pop();
    for (const start of starts) {
      if (items[frame.index] !== null) break;
      const line = state.line + 1 - newlines(state.input, start, state.position);
      reach(state, frame, String(frame.index), line, null);
      frame.remaining.delete(String(frame.index));
      frame.index++;
    }
  };

  const openChild = (state: ParserState, frame: Frame): void => {
    const at = state.position;
    if (at < frame.lastClose) restart(frame);
    if (frame.children++ === 0 && isSameNode(frame, state.input, at)) {
      frame.delegated = true;
      push(state, frame.steps, frame.value, frame.remaining);
      return;
    }
    if (frame.delegated) return;
    if (frame.isSeq) {
      const items = frame.value as readonly unknown[];
      // Entries before this one may have nothing after their `-`: null, and read without a node.
      if (items[frame.index] === null) emptyEntries(state, frame, frame.children === 1 ? frame.open : frame.lastClose, true);
      frame.key = String(frame.index);
      reach(state, frame, frame.key, state.line + 1, items[frame.index]);
      frame.index++;
    } else if (frame.expectValue && frame.key !== undefined) {
      reach(state, frame, frame.key, undefined, ownValue(frame.value, frame.key));
    } else {
      frame.keyLine = state.line + 1;
    }
  };

  const closeChild = (state: ParserState, frame: Frame): void => {
    frame.lastClose = state.position;
    if (frame.delegated) return;
    if (frame.isSeq) {
      if (frame.key !== undefined) frame.remaining.delete(frame.key);
    } else if (frame.expectValue) {
      frame.expectValue = false;
      if (frame.key !== undefined) frame.remaining.delete(frame.key);
    } else {
      // A key; js-yaml names an entry by its key's text, as the schema's paths do.
      const key = String(state.result);
      frame.key = key;
      for (const step of frame.steps) {
        const next = step.next.get(key);
        if (next !== undefined) next.line = frame.keyLine;
      }
      // A key in a flow mapping may come without a value: `{ a, b: 1 }`.
      frame.expectValue = colonFollows(state.input, state.position);
      if (!frame.expectValue) frame.remaining.delete(key);
    }
  };

  const onOpen = (state: ParserState): void => {
    depth++;
    opens.push(state.position);
    const top = frames.at(-1);
    if (depth === 1 && aliased === undefined) {
      // A document with nothing in it has no line; its root closes without a kind or a result.
      root.line = state.line + 1;
      if (isCollection(data) && root.next.size > 0) rootFrame = push(state, [root], data);
    } else if (top !== undefined && top.depth === depth - 1) {
      openChild(state, top);
    }
    const waiting = aliased?.get(state.position);
    if (waiting !== undefined) {
      // Only the outermost node opened here is the anchored value.
      aliased?.delete(state.position);
      const just = frames.at(-1);
      const steps = [...new Set(waiting.flatMap((w) => w.steps))];
      if (just !== undefined && just.depth === depth) {
        frames.pop();
        push(state, [...new Set([...just.steps, ...steps])], just.value);
      } else {
        push(state, steps, waiting[0]?.value ?? {});
      }
    }
  };

  const onClose = (state: ParserState): void => {
    const open = opens.pop() ?? 0;
    if (typeof state.anchor === 'string' && isCollection(state.result)) anchors.set(state.result, open);
    let top = frames.at(-1);
    if (top !== undefined && top.depth === depth) {
      frames.pop();
      if (top.isSeq && !top.delegated && (top.value as readonly unknown[])[top.index] === null) {
        emptyEntries(state, top, top.children === 0 ? top.open : top.lastClose, false);
      }
      // An alias: js-yaml hands back the anchored value itself and gives the node no kind.
      if (state.kind === null && isCollection(state.result) && !top.delegated) {
        const start = anchors.get(state.result);
        if (start !== undefined) found.set(start, [...(found.get(start) ?? []), { steps: top.steps, value: top.value }]);
      }
      top = frames.at(-1);
    }
    if (depth === 1 && aliased === undefined && state.kind === null && state.result === null) root.line = undefined;
    if (top !== undefined && top.depth === depth - 1) closeChild(state, top);
    depth--;
    const finished = aliased === undefined ? rootFrame !== undefined && rootFrame.remaining.size === 0 : aliased.size === 0 && frames.length === 0;
    if (finished) throw new Done();
  };

  const listener = (event: EventType, state: State): void => {
    if (event === 'open') onOpen(state as unknown as ParserState);
    else onClose(state as unknown as ParserState);
  };

  try {
    // As the text was read, except that a repeated key, which has been refused already, is let pass.
    load(text, { schema: CORE_SCHEMA, json: true, listener });
  } catch (err) {
    // js-yaml may refuse some JSON that JSON.parse accepts; those problems then go without lines.
    if (!(err instanceof Done) && !(err instanceof YAMLException)) throw err;
  }
  return found;
}

/** js-yaml backed out of reading the frame one way and reads it again another: forget its children so far. */
function restart(frame: Frame): void {
  frame.children = 0;
  frame.index = 0;
  frame.key = undefined;
  frame.expectValue = false;
  frame.lastClose = -1;
  frame.delegated = false;
  frame.remaining.clear();
  for (const key of wantedKeys(frame.steps)) frame.remaining.add(key);
}

/**
 * Whether the frame's first child is the frame itself: where a block
 * collection may start, js-yaml first tries a flow collection (`- [a, b]`,
 * a JSON file's outer `{`) or an alias as a mapping's key, and keeps it as
 * the node when no `:` follows. Only blank space, comments, an anchor or a
 * tag come between the two; a first entry follows a `-` or `[` of the frame's own.
 */
function isSameNode(frame: Frame, input: string, at: number): boolean {
  const ch = input.charCodeAt(at);
  if (ch !== 0x2a && ch !== (frame.isSeq ? 0x5b : 0x7b)) return false; // *, [ or {
  return !/[[{]/.test(input.slice(frame.open, at)) && entryStarts(input, frame.open, at).length === 0;
}

/**
 * Where the `-` entry indicators that begin lines in input[from, to) are:
 * between two entries of a block sequence there is only blank space,
 * comments and these.
 */
function entryStarts(input: string, from: number, to: number): number[] {
  const starts: number[] = [];
  let lineStart = /^[ \t]*$/.test(input.slice(input.lastIndexOf('\n', from - 1) + 1, from));
  for (let at = from; at < to; at++) {
    const ch = input.charCodeAt(at);
    if (ch === 0x0a) {
      lineStart = true;
    } else if (ch === 0x23) {
      // A comment runs to the end of its line.
      const end = input.indexOf('\n', at);
      at = end === -1 || end >= to ? to : end - 1;
    } else if (lineStart && ch === 0x2d && /[ \t\r\n\0]/.test(input.charAt(at + 1))) {
      starts.push(at);
      lineStart = false;
    } else if (ch !== 0x20 && ch !== 0x09 && ch !== 0x0d) {
      lineStart = false;
    }
  }
  return starts;
}

/** Counts in place: the text may be tens of megabytes, and splitting it would copy every line. */
export function newlines(input: string, from: number, to: number): number {
  let count = 0;
  for (let at = input.indexOf('\n', from); at !== -1 && at < to; at = input.indexOf('\n', at + 1)) count++;
  return count;
}

function colonFollows(input: string, at: number): boolean {
  let ch = input.charCodeAt(at);
  while (ch === 0x20 || ch === 0x09) ch = input.charCodeAt(++at);
  return ch === 0x3a;
}

function wantedKeys(steps: readonly Step[]): Set<string> {
  const keys = new Set<string>();
  for (const step of steps) for (const key of step.next.keys()) keys.add(key);
  return keys;
}

function isCollection(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function ownValue(value: object, key: string): unknown {
  return Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}
