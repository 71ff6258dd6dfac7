import { parseArgs } from 'node:util';
import { up } from './up.ts';
import { UsageError } from './usage-error.ts';

const usage = `usage: firebreak <command> [options]

commands:
  up [--nats-url URL] [--redis-url URL]
      run the detector, planner and executor; starts nats-server and
      redis-server as child processes when no URLs are given (or NATS_URL /
      REDIS_URL in the environment)
  help
      show this text`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'up': {
        const { values } = parseArgs({
          args: rest,
          options: { 'nats-url': { type: 'string' }, 'redis-url': { type: 'string' } },
          strict: true,
        });
        return await up({ natsUrl: values['nats-url'] ?? process.env.NATS_URL, redisUrl: values['redis-url'] ?? process.env.REDIS_URL });
      }
      case undefined:
      case 'help':
      case '--help':
        console.log(usage);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    // parseArgs reports bad flags with a TypeError carrying an ERR_PARSE_ARGS_* code.
    const parseError = err instanceof TypeError && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    if (err instanceof UsageError || parseError) {
      console.error(`firebreak: ${(err as Error).message}\n\n${usage}`);
      return 2;
    }
    throw err;
  }
}
