/** Talks to a running lab's control API; unreachable or refused → UsageError (exit 2). */
import { readLabState, stateDir } from './lab-state.ts';
import { UsageError } from './usage-error.ts';

export async function labUrl(explicit: string | undefined): Promise<string> {
  if (explicit) return explicit;
  if (process.env.FB_LAB_URL) return process.env.FB_LAB_URL;
  const state = await readLabState(stateDir());
  if (!state) throw new UsageError(`no running lab found (no ${stateDir()}/lab.json); start one with "firebreak lab" or pass --lab URL`);
  return state.controlUrl;
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
