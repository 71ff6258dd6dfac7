import { parseArgs } from 'node:util';
import { fault, faultUsage } from './faults.ts';
import { lab, labSizes } from './lab.ts';
import { up } from './up.ts';
import { UsageError } from './usage-error.ts';

const usage = `usage: firebreak <command> [options]

commands:
  up   [--size ${labSizes.join('|')}] [--seed N] [--nats-url URL] [--redis-url URL]
      the detector, planner and executor against the simulated data center;
      starts nats-server and redis-server as child processes unless URLs are
      given (or NATS_URL / REDIS_URL are set)
  lab  [--size ${labSizes.join('|')}] [--seed N] [--nats-url URL] [--redis-url URL]
       [--boot-url URL] [--trap-receiver HOST:PORT]...
      the simulated data center alone; prints its endpoints
${faultUsage}
  help
      show this text`;

const systemOptions = {
  size: { type: 'string', default: 'tiny' },
  seed: { type: 'string', default: '1' },
  'nats-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'boot-url': { type: 'string' },
  'trap-receiver': { type: 'string', multiple: true },
} as const;

function systemArgs(rest: string[]) {
  const { values } = parseArgs({ args: rest, options: systemOptions, strict: true });
  return {
    size: values.size,
    seed: values.seed,
    natsUrl: values['nats-url'] ?? process.env.NATS_URL,
    redisUrl: values['redis-url'] ?? process.env.REDIS_URL,
    bootServiceUrl: values['boot-url'],
    ...(values['trap-receiver'] !== undefined && { trapReceivers: values['trap-receiver'] }),
  };
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'up':
        return await up(systemArgs(rest));
      case 'lab':
        return await lab(systemArgs(rest));
      case 'burn':
      case 'kill':
      case 'isolate':
      case 'flap':
      case 'restore':
      case 'bmc':
      case 'health':
        return await fault(command, rest);
      case undefined:
      case 'help':
      case '--help':
        console.log(usage);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"; "firebreak help" lists the commands`);
    }
  } catch (err) {
    // parseArgs reports bad flags with a TypeError carrying an ERR_PARSE_ARGS_* code.
    const parseError = err instanceof TypeError && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    if (err instanceof UsageError || parseError) {
      console.error(`firebreak: ${(err as Error).message}${parseError ? `\n\n${usage}` : ''}`);
      return 2;
    }
    throw err;
  }
}
