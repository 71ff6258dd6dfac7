import { z } from 'zod';
import { baseConfigSchema } from '@firebreak/shared';

/** What deploy/bin/ensure-streams.ts reads: NATS only, no Redis. */
export const ensureStreamsConfigSchema = baseConfigSchema
  .pick({ NATS_URL: true, NATS_USER: true, NATS_PASSWORD: true, LOG_LEVEL: true, SERVICE_INSTANCE_ID: true })
  .extend({
    /** Copies of each stream: 3 on a three-node NATS cluster, 1 on a single server. */
    FB_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  });
