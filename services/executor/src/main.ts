import { runService } from '@firebreak/shared';
import { executorConfigSchema } from './config.ts';
import { start } from './index.ts';

await runService({ name: 'executor', configSchema: executorConfigSchema, start });
