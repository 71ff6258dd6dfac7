/**
 * Linux's SCHED_BATCH policy for the processes Firebreak starts side by side
 * on one machine (`firebreak up` and `lab`, the executor benchmark).
 *
 * Why: under the default policy a process woken by a message preempts the one
 * running, so a command handed between NATS, an executor, Redis and a BMC
 * costs a context switch at nearly every hop when they share two cores (the
 * executor bench: 4.6 switches per command). Under SCHED_BATCH a woken process
 * waits for the running one's time slice, which meanwhile finishes more of
 * its work per wake-up: 1.7 switches per command and about a fifth less CPU.
 * Each process keeps its fair share of the CPU; a wake-up waits at most a
 * slice (a few ms) and only while the CPU is busy.
 *
 * It needs `chrt` (util-linux, on every Debian). FB_SCHED_BATCH=0 turns it
 * off; without chrt, or when the command itself is not found (so the caller
 * reports the missing program), the command runs as given.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

const SCHED_BATCH = 3;

/** The executable `name` resolves to on PATH, if any. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = isAbsolute(name) || name.includes('/') ? [name] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** `command args` to spawn so that the process runs under SCHED_BATCH where it can. */
export function batchScheduled(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): { command: string; args: string[] } {
  const asGiven = { command, args: [...args] };
  if (process.platform !== 'linux' || env.FB_SCHED_BATCH === '0') return asGiven;
  const chrt = onPath('chrt', env);
  if (chrt === undefined || onPath(command, env) === undefined) return asGiven;
  return { command: chrt, args: ['--batch', '0', command, ...args] };
}

/** Whether a running process is under SCHED_BATCH, from /proc; undefined where /proc cannot tell. */
export function isBatchScheduled(pid: number | undefined): boolean | undefined {
  if (pid === undefined) return undefined;
  try {
    // After the command name (which may hold spaces), field 41 of stat, the policy, is the 39th.
    const policy = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[38]);
    return Number.isInteger(policy) ? policy === SCHED_BATCH : undefined;
  } catch {
    return undefined;
  }
}
