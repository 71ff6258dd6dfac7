/** Talks to a running lab's control API; unreachable or refused → UsageError (exit 2). */
import { findRunningLab, stateDir, statePath } from './lab-state.ts';
import { UsageError } from './usage-error.ts';

export async function labUrl(explicit: string | undefined): Promise<string> {
  if (explicit) return explicit;
  if (process.env.FB_LAB_URL) return process.env.FB_LAB_URL;
  const dir = stateDir();
  const lab = await findRunningLab(dir);
  if (lab === undefined || lab.stale) {
    const recorded = lab === undefined ? `nothing is recorded in ${statePath(dir)}` : `the lab recorded in ${statePath(dir)} (pid ${lab.state.pid}) is no longer running`;
    throw new UsageError(
      `no running lab found: ${recorded}.\n  Start one with "firebreak lab" (or "firebreak up") from this folder, or point at one with --lab URL (or FB_LAB_URL); FB_STATE_DIR names another state dir.`,
    );
  }
  return lab.state.controlUrl;
}

export async function labRequest(base: string, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method,
      ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(5_000),
    });
  } catch (err) {
    throw new UsageError(`cannot reach the lab at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); is "firebreak lab" running?`);
  }
  const payload = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new UsageError(`the lab refused: ${payload.error ?? `HTTP ${res.status}`}`);
  return payload;
}
