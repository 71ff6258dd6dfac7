import { z } from 'zod';
import { baseConfigSchema, commandKinds, ConfigError, type CommandKind, type ConfigEnv } from '@firebreak/shared';
import type { ExecutorLimits } from './executor.ts';

const int = (min: number) => z.coerce.number().int().min(min);

const PER_KIND = 'FB_EXEC_PER_KIND';
const perKindVariable = (kind: CommandKind): string => `${PER_KIND}_${kind.toUpperCase()}`;
const perKind = (kind: CommandKind) => int(1).optional().describe(`${kind} commands at once, a whole number ≥ 1; unset, ${PER_KIND} applies`);

export const executorConfigSchema = baseConfigSchema.extend({
  /** Without it, the inventory `firebreak inventory import` stored in Redis. */
  FB_INVENTORY: z.string().min(1).optional().describe('path of the inventory file, e.g. /etc/firebreak/inventory.yaml'),
  /**
   * Commands of one kind this executor runs at once, for every kind without
   * its own FB_EXEC_PER_KIND_<KIND>. Each kind has its own durable consumer
   * on FB_CMDS (executor-<kind>, shared by all executors) with this many
   * handler slots, so a kind at its limit leaves its further commands in the
   * work queue, where they hold up no other kind. One process runs up to the
   * sum over the kinds at once (5 × 64 by default). Slots are cheap (a real
   * BMC call mostly waits), FB_EXEC_PER_DEVICE protects each device, and the
   * consumer pulls a quarter of its slots at a time, so more slots mean fewer,
   * larger pulls under load (services/executor/bench).
   */
  FB_EXEC_PER_KIND: int(1).default(64),
  FB_EXEC_PER_KIND_POWER: perKind('power'),
  FB_EXEC_PER_KIND_NET: perKind('net'),
  FB_EXEC_PER_KIND_STORAGE: perKind('storage'),
  FB_EXEC_PER_KIND_BOOT: perKind('boot'),
  FB_EXEC_PER_KIND_VM: perKind('vm'),
  /**
   * No BMC, switch or array gets more than this many requests at once from
   * one executor process. The bound is per process, not global: with N
   * executors a device can get up to N × this at once. Making it global would
   * cost a Redis round trip per command.
   */
  FB_EXEC_PER_DEVICE: int(1).default(4),
  /**
   * How long a command pulled by an executor that died stays its before it is
   * delivered to another. A running command keeps it with progress acks
   * (every half of this), so it bounds only a dead process.
   */
  FB_EXEC_ACK_WAIT_MS: int(500).default(3_000),
  FB_EXEC_RETRY_INITIAL_MS: int(1).default(200),
  FB_EXEC_RETRY_MAX_MS: int(1).default(5_000),
  /** The boot service's base URL; without it boot commands fail, saying so. */
  FB_BOOT_SERVICE_URL: z.url().optional(),
  FB_DEVICE_TIMEOUT_MS: int(50).default(10_000),
});
export type ExecutorConfig = z.output<typeof executorConfigSchema>;

/** The executor's limits: FB_EXEC_PER_KIND for each kind unless its own variable overrides it. */
export function executorLimits(config: ExecutorConfig): ExecutorLimits {
  const overrides: Record<CommandKind, number | undefined> = {
    power: config.FB_EXEC_PER_KIND_POWER,
    net: config.FB_EXEC_PER_KIND_NET,
    storage: config.FB_EXEC_PER_KIND_STORAGE,
    boot: config.FB_EXEC_PER_KIND_BOOT,
    vm: config.FB_EXEC_PER_KIND_VM,
  };
  const perKind: Partial<Record<CommandKind, number>> = {};
  for (const kind of commandKinds) {
    const limit = overrides[kind];
    if (limit !== undefined) perKind[kind] = limit;
  }
  return { perKind, defaultPerKind: config.FB_EXEC_PER_KIND, perDevice: config.FB_EXEC_PER_DEVICE };
}

/** Variables an older executor read, with what replaced them. */
const removedVariables: Readonly<Record<string, string>> = {
  FB_EXEC_CONCURRENCY:
    `no longer read: each command kind has its own consumer with ${PER_KIND}_<KIND> handler slots (${PER_KIND} for a kind without its own), ` +
    'and an executor runs up to their sum at once; set those instead and remove FB_EXEC_CONCURRENCY',
};

/**
 * The schema drops variables it does not know, so a misspelt kind
 * (FB_EXEC_PER_KIND_SAN) or a variable an older version read
 * (FB_EXEC_CONCURRENCY) would silently leave the defaults in force: refuse
 * them, naming what to set instead.
 */
export function checkExecutorVariables(env: ConfigEnv = process.env): void {
  const known = new Set(commandKinds.map(perKindVariable));
  const set = Object.keys(env).filter((name) => env[name] !== undefined && env[name] !== '');
  const lines = [
    ...set.filter((name) => name in removedVariables).map((name) => `  ${name}: ${removedVariables[name]}`),
    ...set
      .filter((name) => name.startsWith(`${PER_KIND}_`) && !known.has(name))
      .map((name) => `  ${name}: no command kind "${name.slice(PER_KIND.length + 1).toLowerCase()}"; the per-kind limits are ${[...known].join(', ')}`),
  ];
  if (lines.length === 0) return;
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}
