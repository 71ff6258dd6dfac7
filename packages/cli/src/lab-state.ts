/**
 * Where a running `firebreak lab` or `firebreak up` says how to reach it, so
 * later commands (`firebreak burn rack r2`) find it without flags.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';

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

export const statePath = (dir: string): string => join(dir, 'lab.json');

export async function writeLabState(dir: string, state: LabState): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);
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
}
