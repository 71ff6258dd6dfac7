import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { defaultInstanceId, logLevels, REDACTED, redactUrl } from './logger.ts';
import { assertToken } from './subjects.ts';

export type ConfigEnv = Readonly<Record<string, string | undefined>>;

/** Exit code of a service that refused to start on bad configuration. */
export const configErrorExitCode = 2;

const secretName = /_(PASSWORD|TOKEN|SECRET)$/i;

/** Values of these variables never appear in errors or logs. */
export function isSecretName(name: string): boolean {
  return secretName.test(name);
}

function urlSchema(protocols: readonly string[], example: string) {
  return z
    .url({
      protocol: new RegExp(`^(${protocols.join('|')})$`),
      error: `expected a ${new Intl.ListFormat('en', { type: 'disjunction' }).format(protocols.map((p) => `${p}://`))} URL`,
    })
    .describe(`e.g. ${example}`);
}

function isSubjectToken(value: string): boolean {
  try {
    assertToken(value, 'FB_SITE');
    return true;
  } catch {
    return false;
  }
}

/** `scheme://userinfo@host`, in any of the comma-separated URLs. */
function hasUrlCredentials(value: string): boolean {
  return value.split(',').some((url) => /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url.trim()));
}

/** Variables every service reads. Services `.extend()` it with their own. */
export const baseConfigSchema = z.object({
  NATS_URL: urlSchema(['nats', 'tls', 'ws', 'wss'], 'nats://127.0.0.1:4222').refine(
    (value) => !hasUrlCredentials(value),
    // nats.js ignores a URL's user:password and the server answers "Authorization Violation".
    'must not carry credentials (the NATS client ignores them): set NATS_USER and NATS_PASSWORD instead',
  ),
  /** A user of deploy/nats/nats.conf; absent for a server without authentication (the lab, tests). */
  NATS_USER: z
    .string()
    .refine(isSubjectToken, "must not contain '.', '*', '>' or spaces: replies come to the inbox _INBOX.<user>.> the server lets this user read")
    .optional()
    .describe('e.g. executor'),
  NATS_PASSWORD: z.string().min(1).optional(),
  REDIS_URL: urlSchema(['redis', 'rediss'], 'redis://127.0.0.1:6379'),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  SERVICE_INSTANCE_ID: z.string().default(defaultInstanceId),
  FB_SITE: z
    .string()
    .refine(isSubjectToken, "must not contain '.', '*', '>' or spaces: it is a NATS subject token")
    .default('site1')
    .describe('e.g. site1'),
});
export type BaseConfig = z.output<typeof baseConfigSchema>;

/**
 * Parses the environment once, at start-up. Throws a ConfigError naming
 * every missing or invalid variable, so one restart fixes them all.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: ConfigEnv = process.env): Readonly<z.output<S>> {
  // Compose files and CI often pass `VAR=` for "unset"; let defaults apply.
  const input = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = schema.safeParse(input);
  if (!result.success) throw new ConfigError(describeIssues(schema, result.error.issues, input));
  return Object.freeze(result.data);
}

function describeIssues(schema: z.ZodObject, issues: readonly z.core.$ZodIssue[], input: ConfigEnv): string {
  const messagesByName = new Map<string, string[]>();
  for (const issue of issues) {
    const name = issue.path.length > 0 ? String(issue.path[0]) : '(environment)';
    const message = issue.message.replace(/^Invalid input: /, '');
    messagesByName.set(name, [...(messagesByName.get(name) ?? []), message]);
  }
  const lines = [...messagesByName].map(([name, messages]) => {
    const value = input[name];
    const description = schema.shape[name]?.description;
    const hint = description === undefined ? '' : ` (${description})`;
    if (value === undefined) return `  ${name}: required${hint}`;
    return `  ${name}: ${redactUrl(messages.join('; '))}${hint}${echo(name, value)}`;
  });
  return `invalid configuration:\n${lines.join('\n')}`;
}

/**
 * Echoing the bad value helps the operator, unless it may hold a credential:
 * a secret variable, or an '@' that survived URL redaction (a URL too
 * malformed for the pattern, e.g. with a space in the password).
 */
function echo(name: string, value: string): string {
  if (isSecretName(name)) return '';
  const shown = redactUrl(value);
  if (shown.replaceAll(`${REDACTED}@`, '').includes('@')) return '';
  return `, got "${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}"`;
}

/** A copy of a parsed config that is safe to log: secrets censored, URL credentials stripped. */
export function redactConfig(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([name, value]) => {
      if (isSecretName(name)) return [name, REDACTED];
      return [name, typeof value === 'string' ? redactUrl(value) : value];
    }),
  );
}

/**
 * Runs a service's main. A ConfigError exits 2 with its message on stderr;
 * anything else exits 1 with its stack. Both pass through redactUrl so a
 * connection string in an error never reaches the terminal.
 */
export async function runMain(main: () => unknown): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof ConfigError) exitWith(configErrorExitCode, err.message);
    exitWith(1, `fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
}

function exitWith(code: number, message: string): never {
  process.stderr.write(`${redactUrl(message)}\n`);
  process.exit(code);
}
