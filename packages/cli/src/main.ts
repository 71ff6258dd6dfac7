import { parseArgs } from 'node:util';
import { redactUrl } from '@firebreak/shared';
import { drill, drillUsage } from './drill.ts';
import { fault, faultUsage } from './faults.ts';
import { inventory, inventoryUsage, ReportedError } from './inventory-command.ts';
import { lab, labSizes } from './lab.ts';
import { plan, planUsage } from './plan.ts';
import { status, statusUsage } from './status.ts';
import { up } from './up.ts';
import { UsageError } from './usage-error.ts';

const usage = `usage: firebreak <command> [options]

commands:
  up   [--demo] [--logs] [--size ${labSizes.join('|')}] [--seed N] [--nats-url URL] [--redis-url URL]
      the detector, planner and executor against the simulated data center,
      with a live view of hosts and incidents (service logs go to a file; --logs
      prints them instead); starts nats-server and redis-server as child
      processes unless URLs are given (or NATS_URL / REDIS_URL are set).
      --demo burns a rack once everything runs, shows the recovery, prints the
      incident report and exits 0 if every server came back, 1 if not
  lab  [--size ${labSizes.join('|')}] [--seed N] [--nats-url URL] [--redis-url URL]
       [--boot-url URL] [--trap-receiver HOST:PORT]...
      the simulated data center alone; prints its endpoints
${statusUsage}
${drillUsage}
${planUsage}
${inventoryUsage}
${faultUsage}
  help
      show this text

Commands that talk to a running system find NATS and Redis through --nats-url /
--redis-url, else NATS_URL / REDIS_URL (and NATS_USER / NATS_PASSWORD), else the
running "firebreak up" or "firebreak lab". Exit codes: 0 done, 1 the answer is
"no" (plan: not ready; drill --wait and up --demo: not recovered), 2 bad
arguments or an unreachable service.`;

const systemOptions = {
  size: { type: 'string', default: 'tiny' },
  seed: { type: 'string', default: '1' },
  'nats-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'boot-url': { type: 'string' },
  'trap-receiver': { type: 'string', multiple: true },
} as const;

function systemArgs(values: {
  size: string;
  seed: string;
  'nats-url'?: string | undefined;
  'redis-url'?: string | undefined;
  'boot-url'?: string | undefined;
  'trap-receiver'?: string[] | undefined;
}) {
  return {
    size: values.size,
    seed: values.seed,
    natsUrl: values['nats-url'] || process.env.NATS_URL || undefined,
    redisUrl: values['redis-url'] || process.env.REDIS_URL || undefined,
    bootServiceUrl: values['boot-url'],
    ...(values['trap-receiver'] !== undefined && { trapReceivers: values['trap-receiver'] }),
  };
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'up': {
        const { values } = parseArgs({
          args: rest,
          strict: true,
          options: { ...systemOptions, demo: { type: 'boolean', default: false }, logs: { type: 'boolean', default: false } },
        });
        return await up({ ...systemArgs(values), demo: values.demo, logs: values.logs });
      }
      case 'lab':
        return await lab(systemArgs(parseArgs({ args: rest, options: systemOptions, strict: true }).values));
      case 'status':
        return await status(rest);
      case 'drill':
        return await drill(rest);
      case 'plan':
        return await plan(rest);
      case 'inventory':
        return await inventory(rest);
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
      case '-h':
        console.log(usage);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"; "firebreak help" lists the commands`);
    }
  } catch (err) {
    if (err instanceof ReportedError) return 2;
    // parseArgs reports bad flags with a TypeError carrying an ERR_PARSE_ARGS_* code.
    const parseError = err instanceof TypeError && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    if (err instanceof UsageError || parseError) {
      console.error(`firebreak: ${redactUrl((err as Error).message)}${parseError ? `\n\n${usage}` : ''}`);
      return 2;
    }
    // A bug or an unexpected failure: say what, never a connection string's password.
    console.error(`firebreak: ${command} failed: ${redactUrl(err instanceof Error ? (err.stack ?? err.message) : String(err))}`);
    return 1;
  }
}
