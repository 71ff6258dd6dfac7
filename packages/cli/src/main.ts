import { parseArgs } from 'node:util';
import { redactUrl } from '@firebreak/shared';
import { drill, drillUsage } from './drill.ts';
import { fault, faultCommandUsage, faultUsage, isFaultCommand } from './faults.ts';
import { inventory, inventoryUsage, ReportedError } from './inventory-command.ts';
import { lab, labUsage } from './lab.ts';
import { plan, planUsage } from './plan.ts';
import { status, statusUsage } from './status.ts';
import { up, upUsage } from './up.ts';
import { UsageError } from './usage-error.ts';
import { history, historyUsage, where, whereUsage } from './where.ts';

const helpUsage = `  help [<command>]
      show this text, or one command's (as "firebreak <command> --help" does)`;

const findingTheSystem = `Commands that talk to a running system find NATS and Redis through --nats-url /
--redis-url, else NATS_URL / REDIS_URL (and NATS_USER / NATS_PASSWORD), else the
running "firebreak up" or "firebreak lab" (recorded in .firebreak/lab.json where
it was started; FB_STATE_DIR names another state dir). With none of these they
exit 2 rather than guess a port. They never create JetStream streams: a NATS
server that Firebreak's services have not set up is refused (exit 2).`;

const usage = `usage: firebreak <command> [options]

commands:
${upUsage}
${labUsage}
${statusUsage}
${whereUsage}
${historyUsage}
${drillUsage}
${planUsage}
${inventoryUsage}
${faultUsage}
${helpUsage}

${findingTheSystem}
Exit codes: 0 done, 1 the answer is "no" (plan: not ready; drill --wait: not
recovered or cleanup left work; up --demo: not recovered), 2 bad arguments (a
drill id that names no open drill too) or an unreachable service.`;

/** Each command's own usage block, as it appears in the overview. */
function commandUsage(command: string): string | undefined {
  if (isFaultCommand(command)) return faultCommandUsage(command);
  const blocks: Record<string, string> = { up: upUsage, lab: labUsage, status: statusUsage, where: whereUsage, history: historyUsage, drill: drillUsage, plan: planUsage, inventory: inventoryUsage, help: helpUsage };
  return Object.hasOwn(blocks, command) ? blocks[command] : undefined;
}

/** `firebreak <command> --help`: the command's lines from the overview, spelled out in full. */
function commandHelp(command: string): string | undefined {
  const block = commandUsage(command);
  if (block === undefined) return undefined;
  const talksToSystem = ['status', 'where', 'history', 'drill', 'plan', 'inventory'].includes(command);
  return [
    'usage:',
    block.replace(/^ {2}(?=\S)/gm, '  firebreak '),
    ...(talksToSystem ? ['', findingTheSystem] : []),
    '',
    '"firebreak help" lists every command.',
  ].join('\n');
}

/** `--help` or `-h` anywhere before a `--` asks for help, whatever else is on the line. */
function asksForHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

function help(topic: string | undefined): number {
  if (topic === undefined) {
    console.log(usage);
    return 0;
  }
  const text = commandHelp(topic);
  if (text === undefined) throw new UsageError(`unknown command "${topic}"; "firebreak help" lists the commands`);
  console.log(text);
  return 0;
}

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
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') return help(rest.find((a) => !a.startsWith('-')));
    if (commandUsage(command) !== undefined && asksForHelp(rest)) return help(command);
    if (isFaultCommand(command)) return await fault(command, rest);
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
      case 'where':
        return await where(rest);
      case 'history':
        return await history(rest);
      case 'drill':
        return await drill(rest);
      case 'plan':
        return await plan(rest);
      case 'inventory':
        return await inventory(rest);
      default:
        throw new UsageError(`unknown command "${command}"; "firebreak help" lists the commands`);
    }
  } catch (err) {
    if (err instanceof ReportedError) return 2;
    // parseArgs reports bad flags with a TypeError carrying an ERR_PARSE_ARGS_* code.
    const parseError = err instanceof TypeError && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    if (err instanceof UsageError || parseError) {
      console.error(`firebreak: ${redactUrl((err as Error).message)}${parseError ? `\n\n${commandHelp(command ?? '') ?? usage}` : ''}`);
      return 2;
    }
    // A bug or an unexpected failure: say what, never a connection string's password.
    console.error(`firebreak: ${command} failed: ${redactUrl(err instanceof Error ? (err.stack ?? err.message) : String(err))}`);
    return 1;
  }
}
