import { z } from 'zod';
import { EpochMs } from './common.schema.ts';

/** What lands on fb.dlq.<original subject>: the raw message and why it was refused. */
export const DeadLetter = z.object({
  originalSubject: z.string().min(1),
  reason: z.string().min(1),
  /** Field-level problems when the message failed its schema. */
  issues: z.array(z.object({ path: z.string(), message: z.string() })).default([]),
  /** The original payload, base64 so any bytes survive; only its beginning when `payloadTruncated`. */
  payloadBase64: z.string(),
  /** The whole original payload's size and SHA-256, to match it against what its sender kept. */
  payloadBytes: z.number().int().nonnegative().optional(),
  payloadSha256: z.string().optional(),
  /** The original was too large to copy whole under the server's message size limit. */
  payloadTruncated: z.boolean().optional(),
  /** Its sequence in `stream`, while the stream still holds it. */
  originalSeq: z.number().int().positive().optional(),
  originalMsgId: z.string().optional(),
  stream: z.string().optional(),
  consumer: z.string().optional(),
  deliveries: z.number().int().nonnegative().optional(),
  deadLetteredAt: EpochMs,
});
export type DeadLetter = z.infer<typeof DeadLetter>;
