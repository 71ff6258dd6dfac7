import { z } from 'zod';
import { baseConfigSchema } from '@firebreak/shared';

const int = (min: number) => z.coerce.number().int().min(min);

export const detectorConfigSchema = baseConfigSchema.extend({
  /** Without it, the inventory `firebreak inventory import` stored in Redis. */
  FB_INVENTORY: z.string().min(1).optional().describe('path of the inventory file, e.g. /etc/firebreak/inventory.yaml'),
  FB_HB_INTERVAL_MS: int(10).default(1_000),
  FB_HB_MISSED: int(1).default(3),
  FB_HB_MODE: z.enum(['fixed', 'phi']).default('fixed'),
  FB_HB_PHI_THRESHOLD: z.coerce.number().positive().default(8),
  FB_BMC_TIMEOUT_MS: int(50).default(1_000),
  /** 0 turns BMC health polling off. */
  FB_BMC_POLL_INTERVAL_MS: int(0).default(30_000),
  FB_BMC_POLL_CONCURRENCY: int(1).default(16),
  /** SNMP trap port; 162 needs privileges, so the default is unprivileged. */
  FB_TRAP_PORT: int(0).max(65_535).default(10_162),
  FB_CORRELATION_WINDOW_MS: int(0).default(100),
  FB_DOMAIN_MIN_HOSTS: int(2).default(3),
  FB_DOMAIN_MIN_FRACTION: z.coerce.number().min(0).max(1).default(0.5),
  FB_RECOVER_HOLD_MS: int(0).default(3_000),
});
export type DetectorConfig = z.output<typeof detectorConfigSchema>;
