import { runService } from '@firebreak/shared';
import { start } from './index.ts';

await runService({ name: 'executor', start });
