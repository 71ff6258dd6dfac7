/**
 * A floor under each site's planner fencing tokens, kept in JetStream
 * (stream FB_FENCING, one message per site, never aged out). Redis hands the
 * tokens out; should Redis lose its data, its counter would start again at 1
 * and a new leader's commands would look older than a deposed one's. A newly
 * elected planner reads the floor, lifts its token above it, and records the
 * token before it acts: tokens only rise, whatever happens to Redis.
 */
import type { JetStreamClient, JetStreamManager } from 'nats';
import { z } from 'zod';
import { streams, subjects } from '../subjects.ts';
import { jetStreamErrorCode, jetStreamErrors } from './jetstream-errors.ts';

const FloorMessage = z.object({ site: z.string(), token: z.number().int().positive(), owner: z.string(), at: z.number() });

export interface TokenFloorRecord {
  token: number;
  /** The stream sequence of the record: `record` succeeds only if it is still the newest. */
  seq: number;
}

export class TokenFloorConflictError extends Error {
  override name = 'TokenFloorConflictError';
}

export class TokenFloor {
  constructor(private readonly bus: { readonly js: JetStreamClient; readonly jsm: JetStreamManager }) {}

  /** The highest token recorded for the site, or undefined before the first. */
  async read(site: string): Promise<TokenFloorRecord | undefined> {
    try {
      const msg = await this.bus.jsm.streams.getMessage(streams.fencing, { last_by_subj: subjects.plannerTokenFloor(site) });
      const parsed = FloorMessage.safeParse(JSON.parse(new TextDecoder().decode(msg.data)));
      if (!parsed.success) throw new Error(`the fencing floor of site ${site} in ${streams.fencing} is not a floor record: ${z.prettifyError(parsed.error)}`);
      return { token: parsed.data.token, seq: msg.seq };
    } catch (err) {
      if (jetStreamErrorCode(err) === jetStreamErrors.noMessage) return undefined;
      throw err;
    }
  }

  /**
   * Records `token` as the site's floor, provided nobody recorded since `after`
   * was read (undefined: nothing was there); else TokenFloorConflictError.
   */
  async record(site: string, token: number, owner: string, after: TokenFloorRecord | undefined): Promise<void> {
    const body = new TextEncoder().encode(JSON.stringify(FloorMessage.parse({ site, token, owner, at: Date.now() })));
    try {
      await this.bus.js.publish(subjects.plannerTokenFloor(site), body, {
        msgID: `floor-${site}-${token}`,
        expect: { streamName: streams.fencing, lastSubjectSequence: after?.seq ?? 0 },
      });
    } catch (err) {
      if (jetStreamErrorCode(err) === jetStreamErrors.wrongLastSequence) {
        throw new TokenFloorConflictError(`another planner recorded a fencing token for site ${site} first`, { cause: err });
      }
      throw err;
    }
  }
}
