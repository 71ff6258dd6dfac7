/**
 * `firebreak burn rack r2`, `kill host h`, `isolate host h`, `flap host h`,
 * `restore host h`, `bmc h fail|slow|unreachable|ok`, `health h critical|warning|ok`:
 * fault injection on a running lab.
 */
import { parseArgs } from 'node:util';
import { labRequest, labUrl } from './lab-client.ts';
import { UsageError } from './usage-error.ts';

export const faultCommands = ['burn', 'kill', 'isolate', 'flap', 'restore', 'bmc', 'health'] as const;
export type FaultCommand = (typeof faultCommands)[number];

const faultLines: Record<FaultCommand, { syntax: string; what: string }> = {
  burn: { syntax: 'burn rack <id>', what: 'power, BMCs, links and heartbeats of a rack gone' },
  kill: { syntax: 'kill host <id>', what: 'the host dies; its BMC reports it off' },
  isolate: { syntax: 'isolate host <id> [--undo]', what: 'heartbeats stop, the BMC says all is well' },
  flap: { syntax: 'flap host <id> [--period-ms N] [--cycles N]', what: 'heartbeats stop and resume, like a bad cable or NIC' },
  restore: { syntax: 'restore host <id>', what: 'undo burn/kill/isolate/BMC faults for one host' },
  bmc: { syntax: 'bmc <host> unreachable|ok|fail [--requests N]|slow --latency-ms N', what: 'the BMC stops answering, fails requests or answers slowly' },
  health: { syntax: 'health <host> ok|warning|critical', what: "the BMC's Status.Health" },
};

const labNote = 'all take --lab URL; default: FB_LAB_URL, else the running "firebreak lab" or "firebreak up"';

export const faultUsage = [
  ...faultCommands.map((c) => {
    const { syntax, what } = faultLines[c];
    return syntax.length < 36 ? `  ${syntax.padEnd(36)}${what}` : `  ${syntax}\n${' '.repeat(38)}${what}`;
  }),
  `      (${labNote})`,
].join('\n');

/** One fault command's usage, for `firebreak burn --help`. */
export function faultCommandUsage(command: FaultCommand): string {
  const { syntax, what } = faultLines[command];
  return `  ${syntax} [--json] [--lab URL]\n      ${what}\n      (${labNote.replace('all take', 'takes')})`;
}

export function isFaultCommand(command: string | undefined): command is FaultCommand {
  return (faultCommands as readonly (string | undefined)[]).includes(command);
}

function noun(args: string[], expected: string, command: string): string {
  const [kind, id] = args;
  if (kind !== expected || !id) throw new UsageError(`usage: firebreak ${command} ${expected} <id>`);
  return id;
}

export async function fault(command: string, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      lab: { type: 'string' },
      json: { type: 'boolean' },
      undo: { type: 'boolean' },
      'period-ms': { type: 'string' },
      cycles: { type: 'string' },
      'latency-ms': { type: 'string' },
      requests: { type: 'string' },
    },
  });
  const int = (name: 'period-ms' | 'cycles' | 'latency-ms' | 'requests'): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive whole number, got "${raw}"`);
    return n;
  };
  let request: Record<string, unknown>;
  switch (command) {
    case 'burn':
      request = { fault: 'burn-rack', rack: noun(positionals, 'rack', command) };
      break;
    case 'kill':
      request = { fault: 'kill-host', host: noun(positionals, 'host', command) };
      break;
    case 'isolate':
      request = { fault: 'isolate-host', host: noun(positionals, 'host', command), isolated: !values.undo };
      break;
    case 'flap':
      request = { fault: 'flap-host', host: noun(positionals, 'host', command), periodMs: int('period-ms'), cycles: int('cycles') };
      break;
    case 'restore':
      request = { fault: 'restore-host', host: noun(positionals, 'host', command) };
      break;
    case 'bmc': {
      const [host, mode] = positionals;
      if (!host || !mode || !['unreachable', 'ok', 'fail', 'slow'].includes(mode)) {
        throw new UsageError('usage: firebreak bmc <host> unreachable|ok|fail|slow');
      }
      if (mode === 'slow' && values['latency-ms'] === undefined) throw new UsageError('firebreak bmc <host> slow needs --latency-ms N');
      request = { fault: `bmc-${mode}`, host, latencyMs: int('latency-ms'), requests: int('requests') };
      break;
    }
    case 'health': {
      const [host, health] = positionals;
      const value = { ok: 'OK', warning: 'Warning', critical: 'Critical' }[health?.toLowerCase() ?? ''];
      if (!host || !value) throw new UsageError('usage: firebreak health <host> ok|warning|critical');
      request = { fault: 'health', host, health: value };
      break;
    }
    default:
      throw new UsageError(`unknown fault command "${command}"`);
  }
  const result = await labRequest(await labUrl(values.lab), 'POST', '/v1/faults', JSON.parse(JSON.stringify(request)));
  if (values.json) console.log(JSON.stringify(result));
  else if (command === 'burn') console.log(`burned rack ${String(request.rack)}: ${((result as { hosts?: string[] }).hosts ?? []).join(', ')}`);
  else console.log(`${command}: done`);
  return 0;
}
