/**
 * `firebreak lab`: the simulated data center on its own, for exploring and
 * for pointing services at by hand. Prints every endpoint and records where
 * its control API is, so `firebreak burn rack r2` finds it.
 */
import { startLab, type Lab, type LabOptions } from '@firebreak/lab';
import { startInfrastructure, untilSignal, type Infrastructure } from './infrastructure.ts';
import { clearLabState, credentialsPath, stateDir, writeLabState } from './lab-state.ts';
import { UsageError } from './usage-error.ts';

export const labSizes = ['tiny', 'rack', 'row', '10k'] as const;
export type LabSize = (typeof labSizes)[number];

export const labUsage = `  lab  [--size ${labSizes.join('|')}] [--seed N] [--nats-url URL] [--redis-url URL]
       [--boot-url URL] [--trap-receiver HOST:PORT]...
      the simulated data center alone; prints its endpoints`;

export interface LabCommandOptions {
  size: string;
  seed: string;
  natsUrl?: string | undefined;
  redisUrl?: string | undefined;
  bootServiceUrl?: string | undefined;
  trapReceivers?: string[];
}

export function labOptionsFrom(options: LabCommandOptions): Omit<LabOptions, 'natsUrl'> {
  if (!(labSizes as readonly string[]).includes(options.size)) {
    throw new UsageError(`--size must be one of ${labSizes.join(', ')}, got "${options.size}"`);
  }
  const seed = Number(options.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a whole number, got "${options.seed}"`);
  return {
    size: options.size as LabSize,
    seed,
    ...(options.bootServiceUrl !== undefined && { bootServiceUrl: options.bootServiceUrl }),
    ...(options.trapReceivers !== undefined && { trapReceivers: options.trapReceivers }),
  };
}

/** Starts infrastructure and the lab, and records the lab's whereabouts. */
export async function startLabWithInfrastructure(options: LabCommandOptions): Promise<{ infra: Infrastructure; lab: Lab; stop(): Promise<void> }> {
  const labOptions = labOptionsFrom(options);
  const infra = await startInfrastructure(options);
  let lab: Lab;
  try {
    // Its hosts only heartbeat: the host agents' user.
    const agent = infra.natsIdentity('host-agent');
    lab = await startLab({ ...labOptions, natsUrl: infra.natsUrl, ...(agent.user !== undefined && { natsUser: agent.user }), ...(agent.password !== undefined && { natsPassword: agent.password }) });
  } catch (err) {
    await infra.stop();
    throw err;
  }
  const dir = stateDir();
  const d = lab.describe();
  try {
    await writeLabState(
      dir,
      { controlUrl: d.controlUrl, natsUrl: infra.natsUrl, redisUrl: infra.redisUrl, inventoryPath: d.inventoryPath, pid: process.pid },
      infra.credentials,
    );
  } catch (err) {
    await lab.stop();
    await infra.stop();
    throw err;
  }
  return {
    infra,
    lab,
    stop: async () => {
      await clearLabState(dir);
      await lab.stop();
      await infra.stop();
    },
  };
}

/** Where the passwords are, when `up`/`lab` generated any: the file, never a password. */
export function printCredentials(infra: Infrastructure): void {
  const nats = infra.credentials.nats !== undefined;
  const redis = infra.credentials.redis !== undefined;
  if (!nats && !redis) return;
  const what = [nats && 'one per NATS user of deploy/nats/nats.conf', redis && 'Redis\'s'].filter(Boolean).join(' and ');
  console.log(`firebreak: passwords in ${credentialsPath(stateDir())} (mode 600), ${what}${nats ? '; firebreak commands from this folder log in as operator' : ''}`);
}

export function printLab(lab: Lab): void {
  const d = lab.describe();
  const list = (items: string[], max = 4): string =>
    items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} … (${items.length} in all)`;
  console.log(
    [
      `lab: ${d.hosts} hosts in ${d.racks} racks, ${d.servers} servers`,
      `  inventory     ${d.inventoryPath}`,
      `  device logins ${d.credentialsPath}`,
      `  BMC CA bundle ${d.caBundlePath}`,
      `  control API   ${d.controlUrl}`,
      `  NATS          ${d.natsUrl}`,
      `  Redfish BMCs  ${list(d.bmcEndpoints)}`,
      `  SNMP switches ${list(d.switches)}`,
      `  SAN arrays    ${list(d.sanArrays)}`,
    ].join('\n'),
  );
}

export async function lab(options: LabCommandOptions): Promise<number> {
  const running = await startLabWithInfrastructure(options);
  printLab(running.lab);
  printCredentials(running.infra);
  console.log('firebreak: lab running; try "firebreak burn rack r2" in another terminal; Ctrl-C stops it');
  await untilSignal();
  await running.stop();
  return 0;
}
