import { runService } from '@firebreak/shared';
import { detectorConfigSchema } from './config.ts';
import { start } from './index.ts';

await runService({ name: 'detector', configSchema: detectorConfigSchema, start });
