import { inspect } from 'node:util';
import { REDACTED } from './logger.ts';

/**
 * A value that must never be printed. Logging, JSON, string conversion and
 * util.inspect all show `[REDACTED]`; only `reveal()` gives the value, at the
 * one place that sends it to a device.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
