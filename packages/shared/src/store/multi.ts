import type { ChainableCommander } from 'ioredis';
import { FirebreakError } from '../errors.ts';

/**
 * Runs a MULTI and returns its replies. ioredis resolves EXEC even when a
 * command inside failed (the error sits in that command's slot), which would
 * let a half-applied transaction pass silently; this throws instead.
 */
export async function execMulti(multi: ChainableCommander, what: string): Promise<unknown[]> {
  const replies = await multi.exec();
  if (replies === null) throw FirebreakError.transient(`${what}: transaction aborted`);
  return replies.map(([err, reply]) => {
    if (err) throw FirebreakError.permanent(`${what}: ${err.message}`, err);
    return reply;
  });
}
