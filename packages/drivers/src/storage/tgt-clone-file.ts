/**
 * Drill clones on tgt are copies of a target's backing file, made beside it
 * and named `<cloneId>.clone-of-<lun>.img`. tgtd keeps no free-form
 * attribute on a target, and its backing-store path is what `--op show`
 * prints, so the file name is how the driver later tells a clone (which it
 * may delete) from an original (which it must never delete). Inventory ids
 * hold no dots, so the name parses one way only.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const CLONE_FILE = /^([A-Za-z0-9][A-Za-z0-9_-]*)\.clone-of-([A-Za-z0-9][A-Za-z0-9_-]*)\.img$/;

export function cloneFilePath(sourcePath: string, cloneId: string, lun: string): string {
  return join(dirname(sourcePath), `${cloneId}.clone-of-${lun}.img`);
}

/** The LUN `path` is a clone of when its name marks it as clone `cloneId`; else undefined. */
export function cloneOriginOf(path: string, cloneId: string): string | undefined {
  const match = CLONE_FILE.exec(basename(path));
  return match && match[1] === cloneId ? match[2] : undefined;
}

/**
 * Copies `source` to `dest` with `cp --reflink=auto --sparse=always`: on
 * btrfs or XFS a reflink is instant and a point-in-time copy; elsewhere it
 * is a full (sparse) copy of a LUN that may be in use, so not crash
 * consistent. The copy lands under a temporary name and is renamed into
 * place, so `dest` is never a partial copy, even when the signal kills cp.
 */
export async function copyBackingFile(source: string, dest: string, signal: AbortSignal): Promise<void> {
  const partial = join(dirname(dest), `.${basename(dest)}.${randomBytes(4).toString('hex')}.partial`);
  try {
    await new Promise<void>((resolve, reject) => {
      execFile('cp', ['--reflink=auto', '--sparse=always', '--', source, partial], { signal, encoding: 'utf8' }, (err, _stdout, stderr) => {
        if (err === null) resolve();
        else reject(Object.assign(err, { message: stderr.trim() || err.message }));
      });
    });
    await rename(partial, dest);
  } finally {
    await rm(partial, { force: true });
  }
}
