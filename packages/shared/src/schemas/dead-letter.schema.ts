import { z } from 'zod';
import { EpochMs } from './common.schema.ts';

/** What lands on fb.dlq.<original subject>: the raw message and why it was refused. */
export const DeadLetter = z.object({
  originalSubject: z.string().min(1),
  reason: z.string().min(1),
  /** Field-level problems when the message failed its schema. */
  issues: z.array(z.object({ path: z.string(), message: z.string() })).default([]),
  /** The original payload, base64 so any bytes survive. */
  payloadBase64: z.string(),
  originalMsgId: z.string().optional(),
  stream: z.string().optional(),
  consumer: z.string().optional(),
  deliveries: z.number().int().nonnegative().optional(),
  deadLetteredAt: EpochMs,
});
export type DeadLetter = z.infer<typeof DeadLetter>;
