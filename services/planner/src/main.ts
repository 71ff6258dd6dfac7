import { runService } from '@firebreak/shared';
import { plannerConfigSchema } from './config.ts';
import { start } from './index.ts';

await runService({ name: 'planner', configSchema: plannerConfigSchema, start });
