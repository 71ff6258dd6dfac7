import { z } from 'zod';
import { baseConfigSchema } from '@firebreak/shared';

const int = (min: number) => z.coerce.number().int().min(min);

export const executorConfigSchema = baseConfigSchema.extend({
  /** Without it, the inventory `firebreak inventory import` stored in Redis. */
  FB_INVENTORY: z.string().min(1).optional().describe('path of the inventory file, e.g. /etc/firebreak/inventory.yaml'),
  /** Commands this executor works on at once. */
  FB_EXEC_CONCURRENCY: int(1).default(64),
  FB_EXEC_PER_KIND: int(1).default(32),
  /** No BMC, switch or array gets more than this many requests at once from one executor. */
  FB_EXEC_PER_DEVICE: int(1).default(4),
  FB_EXEC_RETRY_INITIAL_MS: int(1).default(200),
  FB_EXEC_RETRY_MAX_MS: int(1).default(5_000),
  /** The boot service's base URL; without it boot commands fail, saying so. */
  FB_BOOT_SERVICE_URL: z.url().optional(),
  FB_DEVICE_TIMEOUT_MS: int(50).default(10_000),
});
export type ExecutorConfig = z.output<typeof executorConfigSchema>;
