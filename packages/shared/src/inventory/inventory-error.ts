import { errorCodes, FirebreakError } from '../errors.ts';

export interface InventoryProblem {
  /** `hosts[12].nics[0].mac`; `(file)` or `(syntax)` when no field is to blame. */
  path: string;
  message: string;
  /** 1-based line in the source file, when it can be told. */
  line?: number;
}

/** An inventory that cannot be used; it lists every problem so one edit fixes them all. */
export class InventoryError extends FirebreakError {
  override name = 'InventoryError';
  readonly source: string;
  readonly problems: readonly InventoryProblem[];

  constructor(source: string, problems: readonly InventoryProblem[], cause?: unknown) {
    const lines = problems.map((p) => `  ${p.path}: ${p.message}${p.line === undefined ? '' : ` (line ${p.line})`}`);
    super(`cannot load inventory ${source}:\n${lines.join('\n')}`, {
      code: errorCodes.invalidInventory,
      retryable: false,
      cause,
    });
    this.source = source;
    this.problems = problems;
  }
}
