import { hostname } from 'node:os';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';

export type { Logger } from 'pino';
export type LogLevel = LevelWithSilent;
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const satisfies readonly LogLevel[];

export const REDACTED = '[REDACTED]';

/** Key names that hold secrets wherever they appear in a logged object. */
const secretKeys = [
  'password',
  'passwd',
  'secret',
  'clientSecret',
  'token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'privateKey',
  'authorization',
  'cookie',
  'credentials',
];
/** Redfish sessions authenticate with X-Auth-Token; header objects keep whatever case the caller used. */
const secretHeaders = ['authorization', 'cookie', 'x-auth-token', 'X-Auth-Token'];

const redactPaths = [
  ...secretKeys,
  ...secretKeys.map((key) => `*.${key}`),
  ...secretHeaders.map((name) => `headers["${name}"]`),
  ...secretHeaders.map((name) => `*.headers["${name}"]`),
];

/**
 * `scheme://userinfo@`: the userinfo runs to the last '@' before the
 * authority ends, so a password with an unescaped '@' is still covered.
 * '"' also ends it, so the pattern never crosses a JSON string boundary.
 */
const urlCredentials = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"]*@/gi;

/** Replaces the `user:pass@` (or `token@`) part of every URL in `text`. */
export function redactUrl(text: string): string {
  return text.replace(urlCredentials, `$1${REDACTED}@`);
}

/** The instance id used when SERVICE_INSTANCE_ID is not set. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`;
}

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** Defaults to `<hostname>-<pid>`. */
  instance?: string;
  /** Defaults to stdout; tests pass a stream to capture lines. */
  destination?: DestinationStream;
}

/** Correlates a log line with the trace that was active when it was written. */
function activeTraceFields(): Record<string, string> {
  const spanContext = trace.getSpanContext(context.active());
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/** JSON logs with secrets censored by key name and URL credentials stripped. */
export function createLogger(service: string, options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service, instance: options.instance ?? defaultInstanceId() },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: activeTraceFields,
      redact: { paths: redactPaths, censor: REDACTED },
      // Scrubbing the finished line reaches URLs anywhere: messages, error
      // messages and stacks, nested fields and child bindings alike.
      hooks: { streamWrite: redactUrl },
    },
    options.destination,
  );
}
