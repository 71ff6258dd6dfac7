/**
 * One `virsh -c <uri>` invocation as a child process: argument arrays (no
 * shell), a time limit, killed when the caller's signal aborts, output
 * captured for error messages with any password in the URI blanked out.
 * Messages are read in the C locale, since the driver matches them.
 */
import { spawn } from 'node:child_process';
import { DriverError } from '../driver-error.ts';

export interface VirshRunOptions {
  /** The virsh binary. */
  binary: string;
  uri: string;
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
}

export interface VirshOutput {
  code: number;
  stdout: string;
  /** With `error: ` prefixes dropped and lines joined; scrubbed of URI passwords. */
  stderr: string;
}

/** How a failed virsh call failed, from its messages. */
export type VirshFailure = 'unreachable' | 'refused' | 'not-found' | 'already' | 'other';

const MAX_OUTPUT = 4 * 1024 * 1024;
const KILL_GRACE_MS = 2_000;

/**
 * Runs `virsh -c uri -q ...args`; resolves with any exit code, throws only
 * when virsh could not run or did not finish in time.
 */
export function runVirsh(options: VirshRunOptions, args: readonly string[], signal: AbortSignal): Promise<VirshOutput> {
  const what = `virsh ${args[0] ?? ''}`.trim();
  if (signal.aborted) return Promise.reject(DriverError.timeout(`${what} against ${scrubUri(options.uri)}: the caller's deadline passed before it started`));
  return new Promise((resolve, reject) => {
    const child = spawn(options.binary, ['-c', options.uri, '-q', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...options.env, LC_ALL: 'C', LANG: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_OUTPUT) into.push(chunk);
    };
    child.stdout?.on('data', collect(out));
    child.stderr?.on('data', collect(err));
    let ended: 'timeout' | 'aborted' | undefined;
    let killer: NodeJS.Timeout | undefined;
    const kill = (why: 'timeout' | 'aborted'): void => {
      if (ended !== undefined) return;
      ended = why;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      killer.unref();
    };
    const timer = setTimeout(() => kill('timeout'), options.timeoutMs);
    const onAbort = (): void => kill('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
    const cleanUp = (): void => {
      clearTimeout(timer);
      clearTimeout(killer);
      signal.removeEventListener('abort', onAbort);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      cleanUp();
      if (error.code === 'ENOENT') {
        reject(DriverError.permanent(`${what}: "${options.binary}" not found; install libvirt-clients (apt-get install libvirt-clients)`, error));
      } else {
        reject(DriverError.transient(`${what}: could not run ${options.binary}: ${error.message}`, error));
      }
    });
    child.once('close', (code) => {
      cleanUp();
      const target = scrubUri(options.uri);
      if (ended === 'aborted') return reject(DriverError.timeout(`${what} against ${target}: the caller's deadline passed`));
      if (ended === 'timeout') return reject(DriverError.timeout(`${what} against ${target}: no answer within ${options.timeoutMs} ms`));
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: scrubText(errorText(Buffer.concat(err).toString('utf8')), options.uri),
      });
    });
  });
}

export function classifyVirshFailure(stderr: string): VirshFailure {
  if (/no connection driver available|authentication (failed|unavailable)|Permission denied|not supported by the connection driver/i.test(stderr)) return 'refused';
  if (
    /failed to connect to the hypervisor|Failed to connect socket|unable to connect to server|Cannot recv data|Cannot write data|End of file while reading data|Connection (reset|refused|timed out)|No route to host|client socket is closed|keepalive|cannot send data/i.test(
      stderr,
    )
  ) {
    return 'unreachable';
  }
  if (/failed to get domain|Domain not found|no domain with matching/i.test(stderr)) return 'not-found';
  if (/domain is already (active|running)|domain is not running/i.test(stderr)) {
    return 'already';
  }
  return 'other';
}

/** The URI with any password in its userinfo replaced by `***`. */
export function scrubUri(uri: string): string {
  return uri.replace(/^([a-z][\w+.-]*:\/\/[^:/@?#]*):[^@/?#]*@/i, '$1:***@');
}

/** The text with the URI's password (if any) replaced by `***` wherever it appears. */
export function scrubText(text: string, uri: string): string {
  const password = /^[a-z][\w+.-]*:\/\/[^:/@?#]*:([^@/?#]*)@/i.exec(uri)?.[1];
  let scrubbed = text.split(uri).join(scrubUri(uri));
  if (password !== undefined && password !== '') {
    scrubbed = scrubbed.split(password).join('***');
    try {
      const decoded = decodeURIComponent(password);
      if (decoded !== '') scrubbed = scrubbed.split(decoded).join('***');
    } catch {
      // Not percent-encoded: the raw form is already blanked.
    }
  }
  return scrubbed;
}

function errorText(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => line.replace(/^error:\s*/, '').trim())
    .filter((line) => line !== '')
    .join(': ');
}
