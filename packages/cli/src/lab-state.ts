/**
 * Where a running `firebreak lab` or `firebreak up` says how to reach it, so
 * later commands (`firebreak burn rack r2`) find it without flags: lab.json,
 * which anyone may read, and beside it credentials.json with the passwords,
 * readable by the user who started it only.
 */
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { natsUsers } from '@firebreak/shared';
import { UsageError } from './usage-error.ts';

export const LabState = z.object({
  controlUrl: z.string(),
  natsUrl: z.string(),
  redisUrl: z.string(),
  inventoryPath: z.string(),
  pid: z.number().int(),
});
export type LabState = z.infer<typeof LabState>;

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  // Under `npm start` (or any npm script) the command runs in its package's folder; INIT_CWD is
  // where the user typed it, so `npx firebreak burn` from that same folder finds the lab.
  return resolve(env.INIT_CWD ?? process.cwd(), env.FB_STATE_DIR ?? '.firebreak');
}

/**
 * The passwords of what `up`/`lab` started: every NATS user's of
 * deploy/nats/nats.conf (the CLI logs in as operator; a service started by
 * hand against a lab takes its own), and Redis's. Generated on each start.
 */
export const LabCredentials = z.object({
  nats: z.record(z.enum(natsUsers), z.string().min(1)).optional(),
  redis: z.object({ username: z.string().optional(), password: z.string().min(1) }).optional(),
});
export type LabCredentials = z.infer<typeof LabCredentials>;

export const statePath = (dir: string): string => join(dir, 'lab.json');
export const credentialsPath = (dir: string): string => join(dir, 'credentials.json');

/** lab.json, and credentials.json (mode 0600, its dir 0700) when there are any; a previous run's never outlives this one. */
export async function writeLabState(dir: string, state: LabState, credentials: LabCredentials = {}): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = credentialsPath(dir);
  await rm(file, { force: true });
  if (credentials.nats !== undefined || credentials.redis !== undefined) {
    // The dir may predate this rule (or hold up.log and Redis's files): nobody else lists or reads it.
    await chmod(dir, 0o700);
    // 'wx': created here with its mode, never an existing file (or a link someone left) written through.
    await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  }
  await writeFile(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);
}

/** The passwords a running `up`/`lab` recorded; none when it started no server of its own. */
export async function readLabCredentials(dir: string): Promise<LabCredentials> {
  const file = credentialsPath(dir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}; run the command as the user who started "firebreak up" (or set NATS_USER and NATS_PASSWORD)`);
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new UsageError(`${file} is readable by others (mode ${mode.toString(8)}): restart "firebreak up" or "firebreak lab" to make a new one, mode 600`);
  }
  // Never the file's content in the message (JSON.parse quotes it): it is passwords.
  const invalid = new UsageError(`${file} is not what "firebreak up" writes: restart it to make a new one`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid;
  }
  const parsed = LabCredentials.safeParse(doc);
  if (!parsed.success) throw invalid;
  return parsed.data;
}

export async function readLabState(dir: string): Promise<LabState | undefined> {
  try {
    return LabState.parse(JSON.parse(await readFile(statePath(dir), 'utf8')));
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that recorded `state` still runs: `firebreak up` killed
 * with SIGKILL (or a crashed machine) leaves its file behind, and its ports
 * may by now belong to something else.
 */
export function isRunning(state: LabState): boolean {
  try {
    process.kill(state.pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, but another user's (a shared state dir).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a running `firebreak up`/`lab` recorded; `stale` when the file names a process that is gone. */
export async function findRunningLab(dir: string): Promise<{ state: LabState; stale: boolean } | undefined> {
  const state = await readLabState(dir);
  if (state === undefined) return undefined;
  return { state, stale: !isRunning(state) };
}

export async function clearLabState(dir: string): Promise<void> {
  await rm(statePath(dir), { force: true });
  await rm(credentialsPath(dir), { force: true });
}

/** A Redis URL without its `user:password@` (for lab.json), and what it carried (for credentials.json). */
export function splitUrlCredentials(url: string): { url: string; redis?: NonNullable<LabCredentials['redis']> } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url };
  }
  if (parsed.password === '') return { url };
  const redis = { ...(parsed.username !== '' && { username: parsed.username }), password: parsed.password };
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), redis };
}

/** The Redis URL with the recorded `user:password@` put back. */
export function withUrlCredentials(url: string, redis: NonNullable<LabCredentials['redis']>): string {
  const parsed = new URL(url);
  parsed.username = redis.username ?? '';
  parsed.password = redis.password;
  return parsed.toString();
}
