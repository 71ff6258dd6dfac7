import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { waitFor } from '@firebreak/shared/testing';

export const bin = fileURLToPath(new URL('../bin/firebreak.js', import.meta.url));

export interface CliProcess {
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Waits until the output satisfies `check`; the failure shows the output. */
  waitForOutput(what: string, check: (out: string) => boolean, timeoutMs: number): Promise<void>;
  interrupt(): void;
  readonly exited: Promise<number | null>;
}

/**
 * A long-running `firebreak` command; a failed assertion must not leave it
 * (and what it started) running under the test runner, so the test's end
 * sends it `cleanupSignal`.
 */
export function startCli(t: TestContext, args: string[], env: NodeJS.ProcessEnv, cleanupSignal: NodeJS.Signals): CliProcess {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill(cleanupSignal);
  });
  return {
    output: () => out,
    waitForOutput: async (what, check, timeoutMs) => {
      try {
        await waitFor(what, () => check(out), timeoutMs);
      } catch (err) {
        throw new Error(`${(err as Error).message}:\n${out}`, { cause: err });
      }
    },
    interrupt: () => child.kill('SIGINT'),
    exited,
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a short `firebreak` command to its end without blocking the event
 * loop, so the test's own bus connections keep working meanwhile.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`firebreak ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The caller's environment without anything that would point the CLI at another system. */
export function isolatedEnv(stateDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, FB_STATE_DIR: stateDir, NATS_URL: '', REDIS_URL: '', NATS_USER: '', NATS_PASSWORD: '', FB_INVENTORY: '', FB_SITE: '', FB_LAB_URL: '', ...extra };
}

/**
 * Runs `main(argv)` in this process, as the bin does, with what it prints.
 * For commands that start nothing long-lived: quicker than a process each.
 */
export async function runMain(argv: string[]): Promise<CliRun> {
  const { main } = await import('../src/main.ts');
  let stdout = '';
  let stderr = '';
  const { log, error } = console;
  console.log = (...parts: unknown[]) => void (stdout += `${format(...parts)}\n`);
  console.error = (...parts: unknown[]) => void (stderr += `${format(...parts)}\n`);
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    console.log = log;
    console.error = error;
  }
}
