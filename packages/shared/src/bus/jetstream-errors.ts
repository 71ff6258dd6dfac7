/** JetStream API error codes Firebreak acts on, and reading one from whatever a nats.js call threw. */
export const jetStreamErrors = {
  /** Nothing stored on that subject (JSNoMessageFoundErr). */
  noMessage: 10037,
  /** A stream of that name exists with another configuration. */
  streamNameInUse: 10058,
  streamNotFound: 10059,
  /** `expect.lastSubjectSequence` did not hold: someone published on the subject first. */
  wrongLastSequence: 10071,
} as const;

/** The JetStream error code of a failed API call, if that is what `err` is. */
export function jetStreamErrorCode(err: unknown): number | undefined {
  const code = (err as { api_error?: { err_code?: unknown } } | null)?.api_error?.err_code;
  return typeof code === 'number' ? code : undefined;
}
