/**
 * One Firebreak service as its own operating-system process, started the way
 * `firebreak up` and the deployment files start it. Its log lines are kept so
 * a failing test can show what the service said.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { executorNodeFlags } from '@firebreak/executor/node-flags';

export const serviceNames = ['boot-service', 'detector', 'planner', 'executor'] as const;
export type ServiceName = (typeof serviceNames)[number];

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** Every line the process wrote, stdout and stderr interleaved. */
  readonly lines: readonly string[];
  /** Resolves when a log line satisfies `match`, including lines already written. */
  waitForLog(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** SIGKILL: a crash, no clean shutdown. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

// Resolved from here, so services start wherever the test runs from.
const tsxLoader = import.meta.resolve('tsx');

export function startServiceProcess(service: ServiceName, label: string, env: NodeJS.ProcessEnv): ServiceProcess {
  const entry = fileURLToPath(import.meta.resolve(`@firebreak/${service}/main`));
  const flags = service === 'executor' ? executorNodeFlags : [];
  const child: ChildProcess = spawn(process.execPath, [...flags, '--import', tsxLoader, entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const waiter of waiters) waiter(line);
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;

  return {
    name: label,
    pid: child.pid,
    lines,
    waitForLog: (match, timeoutMs) =>
      new Promise((resolve, reject) => {
        const seen = lines.find(match);
        if (seen !== undefined) return resolve(seen);
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${label} did not log the expected line within ${timeoutMs} ms; its last lines:\n${lines.slice(-20).join('\n')}`));
        }, timeoutMs);
        const waiter = (line: string): void => {
          if (!match(line)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(line);
        };
        waiters.add(waiter);
      }),
    kill: async () => {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (running()) {
        child.kill('SIGTERM');
        setTimeout(() => running() && child.kill('SIGKILL'), 5_000).unref();
      }
      await exited;
    },
  };
}
