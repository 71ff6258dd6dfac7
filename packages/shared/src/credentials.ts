/**
 * Resolves an inventory `credentialsRef` to the credentials it names. The
 * inventory and every message carry only the reference; secrets come from the
 * environment or a file readable by the service alone.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { FirebreakError, errorCodes } from './errors.ts';
import { Secret } from './secret.ts';

export interface Credentials {
  readonly username?: string;
  readonly password?: Secret;
  /** SNMP community string. */
  readonly community?: Secret;
}

const CredentialsDoc = z.object({
  username: z.string().min(1).optional(),
  password: z.string().optional(),
  community: z.string().optional(),
});

export class CredentialsError extends FirebreakError {
  override name = 'CredentialsError';
  constructor(message: string) {
    super(message, { code: errorCodes.permanent, retryable: false });
  }
}

function fromDoc(ref: string, value: unknown): Credentials {
  const parsed = CredentialsDoc.safeParse(value);
  if (!parsed.success) {
    throw new CredentialsError(`credentials ${ref}: expected an object with username/password or community`);
  }
  const { username, password, community } = parsed.data;
  return {
    ...(username !== undefined && { username }),
    ...(password !== undefined && { password: new Secret(password) }),
    ...(community !== undefined && { community: new Secret(community) }),
  };
}

/**
 * `env:VAR` holds JSON (`{"username":"admin","password":"…"}`) or
 * `user:password`; `file:/path#key` is a JSON file whose member `key` (or the
 * whole file without `#key`) is such an object. Errors name the reference,
 * never the value.
 */
export async function resolveCredentials(ref: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials> {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const raw = env[name];
    if (raw === undefined || raw === '') throw new CredentialsError(`credentials ${ref}: environment variable ${name} is not set`);
    if (raw.trimStart().startsWith('{')) {
      try {
        return fromDoc(ref, JSON.parse(raw));
      } catch (err) {
        if (err instanceof CredentialsError) throw err;
        throw new CredentialsError(`credentials ${ref}: ${name} is not valid JSON`);
      }
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) throw new CredentialsError(`credentials ${ref}: ${name} must be JSON or "user:password"`);
    return { username: raw.slice(0, colon), password: new Secret(raw.slice(colon + 1)) };
  }
  if (ref.startsWith('file:')) {
    const [path = '', key] = ref.slice(5).split('#', 2);
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'not a readable JSON file';
      throw new CredentialsError(`credentials ${ref}: ${why}`);
    }
    if (key === undefined) return fromDoc(ref, doc);
    const member = (doc as Record<string, unknown> | null)?.[key];
    if (member === undefined) throw new CredentialsError(`credentials ${ref}: no entry "${key}" in ${path}`);
    return fromDoc(ref, member);
  }
  throw new CredentialsError(`credentials ${ref}: must start with env: or file:`);
}
