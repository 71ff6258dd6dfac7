/**
 * Runs `tgtadm`, tgt's administration client, which talks to a tgtd on this
 * machine over the unix socket `/var/run/tgtd/socket.<control-port>`. A
 * non-zero exit is an answer (tgtd refused, e.g. "this access control rule
 * already exists"), not an exception: the driver decides what it means. Only
 * a tgtadm that could not run, or was stopped, rejects.
 */
import { execFile } from 'node:child_process';

export interface TgtadmOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs tgtadm with these arguments; killed when `signal` aborts. Injectable so tests can see what is sent. */
export type TgtadmRunner = (args: readonly string[], signal: AbortSignal) => Promise<TgtadmOutcome>;

/** A `show` of a few hundred targets is well under this. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export function tgtadmRunner(command = 'tgtadm'): TgtadmRunner {
  return (args, signal) =>
    new Promise((resolve, reject) => {
      execFile(command, [...args], { signal, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err === null) {
          resolve({ exitCode: 0, stdout, stderr });
          return;
        }
        // A number is tgtadm's exit status; a string (ENOENT, ABORT_ERR) or a kill means it never answered.
        if (typeof err.code === 'number' && err.signal == null) {
          resolve({ exitCode: err.code, stdout, stderr });
          return;
        }
        reject(err);
      });
    });
}
