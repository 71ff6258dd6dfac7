import { z } from 'zod';
import { baseConfigSchema } from '@firebreak/shared';

const int = (min: number) => z.coerce.number().int().min(min);

export const plannerConfigSchema = baseConfigSchema.extend({
  FB_INVENTORY: z.string().min(1).optional().describe('path of the inventory file, e.g. /etc/firebreak/inventory.yaml'),
  /** The leader lease: a dead planner's site is taken over within this long. */
  FB_PLANNER_LEASE_MS: int(300).default(10_000),
  FB_STEP_TIMEOUT_MS: int(100).default(120_000),
  FB_BMC_FENCE_TIMEOUT_MS: int(100).default(15_000),
  FB_HEARTBEAT_TIMEOUT_MS: int(100).default(600_000),
  FB_STEP_ATTEMPTS: int(1).default(3),
  FB_RETRY_BASE_MS: int(1).default(1_000),
  FB_VCPU_OVERCOMMIT: z.coerce.number().positive().default(4),
  FB_ALLOW_PREEMPTION: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** What-if readiness on fb.readiness.<site> this often while leader (and after every closed incident); 0 turns the periodic report off. */
  FB_READINESS_INTERVAL_MS: int(0).default(60_000).describe('e.g. 60000, or 0 for no periodic readiness report'),
  /** Scheduled drills (README, "Scheduled drills"); none without it. */
  FB_DRILL_SCHEDULE: z.string().min(1).optional().describe('path of the drill schedule file, e.g. /etc/firebreak/drills.yaml'),
});
export type PlannerConfig = z.output<typeof plannerConfigSchema>;
