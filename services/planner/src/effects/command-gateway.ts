/**
 * Sends commands to the executors and collects their results. The order of
 * operations per command is what makes a resumed planner safe: listen for the
 * result first, then look for one already recorded in FB_RESULTS, and publish
 * only when there is none. A finished command is never issued twice, and a
 * result that lands between the look-up and the publish is still heard.
 */
import {
  CommandResult,
  jetStreamErrorCode,
  jetStreamErrors,
  streams,
  topics,
  type Bus,
  type BusLogger,
  type Command,
  type CommandKind,
  type Topic,
} from '@firebreak/shared';
import { SharedSubscriptions, type Membership } from './shared-subscriptions.ts';
import { ABORTED, defaultRetry, raceAbort, retryUntilAborted, type RetryPolicy } from './until-aborted.ts';

/** What the effects use of the bus; tests may wrap it. */
export type EffectsBus = Pick<Bus, 'publish' | 'subscribeCore' | 'jsm'>;

export interface CommandGatewayOptions {
  bus: EffectsBus;
  logger: BusLogger;
  /**
   * How often results still missing are looked up in FB_RESULTS again. The
   * subscription is core NATS: a result published while the connection was
   * down, or dropped for a slow consumer, is only found in the stream.
   */
  recheckMs?: number;
  /** Look-ups and publishes in flight per call, so hundreds of commands do not hit the JetStream API at once. */
  concurrency?: number;
  retry?: RetryPolicy;
}

const DEFAULT_RECHECK_MS = 5_000;
const DEFAULT_CONCURRENCY = 32;

interface Waiter {
  readonly command: Command;
  readonly subject: string;
  /** Looked up and, if nothing was stored, published: from now on only the recheck looks again. */
  issued: boolean;
  result: CommandResult | undefined;
}

function commandTopic(kind: CommandKind): Topic<typeof Command> {
  return { ...topics.commands, subject: topics.command(kind).subject };
}

/** A result belongs to a waiter only when it names the command its subject names. */
function belongsTo(result: CommandResult, waiter: Waiter): boolean {
  return result.commandId === waiter.command.commandId && result.incidentId === waiter.command.incidentId;
}

export class CommandGateway {
  private readonly bus: EffectsBus;
  private readonly logger: BusLogger;
  private readonly recheckMs: number;
  private readonly concurrency: number;
  private readonly retry: RetryPolicy;
  private readonly results: SharedSubscriptions<CommandResult>;

  constructor(options: CommandGatewayOptions) {
    this.bus = options.bus;
    this.logger = options.logger;
    this.recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.retry = options.retry ?? defaultRetry;
    this.results = new SharedSubscriptions(options.logger);
  }

  /** Incidents with a live result subscription. */
  get subscriptions(): number {
    return this.results.size;
  }

  async run(commands: readonly Command[], signal: AbortSignal): Promise<CommandResult[]> {
    signal.throwIfAborted();
    if (commands.length === 0) return [];

    // Subjects first: a command id that cannot be a subject token is a bug, reported now rather than retried until the deadline.
    const waiters = new Map<string, Waiter>();
    for (const command of commands) {
      const subject = topics.result(command.incidentId, command.commandId).subject;
      if (!waiters.has(subject)) waiters.set(subject, { command, subject, issued: false, result: undefined });
    }

    let remaining = waiters.size;
    let allIn!: () => void;
    const complete = new Promise<void>((resolve) => (allIn = resolve));
    const settle = (waiter: Waiter, result: CommandResult): void => {
      if (waiter.result !== undefined || !belongsTo(result, waiter)) return;
      waiter.result = result;
      if (--remaining === 0) allIn();
    };
    const listener = (result: CommandResult, subject: string): void => {
      const waiter = waiters.get(subject);
      if (waiter !== undefined) settle(waiter, result);
    };

    const finished = new AbortController();
    const stop = AbortSignal.any([signal, finished.signal]);
    const incidents = new Set([...waiters.values()].map((w) => w.command.incidentId));
    const memberships: Membership[] = [...incidents].map((incidentId) =>
      this.results.join(
        incidentId,
        (deliver) => this.bus.subscribeCore(topics.resultsOf(incidentId), (result, ctx) => deliver(result, ctx.subject)),
        listener,
      ),
    );
    let recheck: NodeJS.Timeout | undefined;
    try {
      await raceAbort(Promise.all(memberships.map((m) => m.ready)), signal);

      let failure: ((err: unknown) => void) | undefined;
      const failed = new Promise<never>((_, reject) => (failure = reject));
      failed.catch(() => {});
      const queue = [...waiters.values()];
      const worker = async (): Promise<void> => {
        for (let waiter = queue.shift(); waiter !== undefined; waiter = queue.shift()) {
          await this.issue(waiter, stop, settle);
        }
      };
      for (let i = 0; i < Math.min(this.concurrency, queue.length); i++) {
        worker().catch((err: unknown) => failure?.(err));
      }
      recheck = this.startRecheck(waiters, stop, settle);

      await raceAbort(Promise.race([complete, failed]), signal);
      return commands.map((command) => {
        const result = waiters.get(topics.result(command.incidentId, command.commandId).subject)?.result;
        if (result === undefined) throw new Error(`no result for command ${command.commandId}: every command should have one by now`);
        return result;
      });
    } finally {
      finished.abort();
      if (recheck !== undefined) clearInterval(recheck);
      await Promise.all(memberships.map((m) => m.leave()));
    }
  }

  async close(): Promise<void> {
    await this.results.closeAll();
  }

  /** Looks the result up, and publishes the command only when none is stored. */
  private async issue(waiter: Waiter, signal: AbortSignal, settle: (w: Waiter, r: CommandResult) => void): Promise<void> {
    const fields = { incidentId: waiter.command.incidentId, commandId: waiter.command.commandId, kind: waiter.command.kind };
    if (waiter.result !== undefined) return;
    const stored = await retryUntilAborted(() => this.lookup(waiter), signal, {
      what: 'looking up a recorded result',
      logger: this.logger,
      fields,
      retry: this.retry,
    });
    if (stored === ABORTED || waiter.result !== undefined) return;
    if (stored !== undefined) {
      settle(waiter, stored);
      return;
    }
    const topic = commandTopic(waiter.command.kind);
    // The command id is the dedupe key: a repeat within the stream's duplicate window is dropped by JetStream.
    const sent = await retryUntilAborted(() => this.bus.publish(topic, waiter.command, { msgId: waiter.command.commandId }), signal, {
      what: 'publishing a command',
      logger: this.logger,
      fields,
      retry: this.retry,
    });
    if (sent !== ABORTED) waiter.issued = true;
  }

  private async lookup(waiter: Waiter): Promise<CommandResult | undefined> {
    let data: Uint8Array;
    try {
      data = (await this.bus.jsm.streams.getMessage(streams.results, { last_by_subj: waiter.subject })).data;
    } catch (err) {
      if (jetStreamErrorCode(err) === jetStreamErrors.noMessage) return undefined;
      throw err;
    }
    let parsed: ReturnType<typeof CommandResult.safeParse>;
    try {
      parsed = CommandResult.safeParse(JSON.parse(new TextDecoder().decode(data)));
    } catch {
      parsed = CommandResult.safeParse(undefined);
    }
    if (!parsed.success || !belongsTo(parsed.data, waiter)) {
      // Treated as no result: publishing again is safe, the executor replays what it recorded.
      this.logger.warn({ subject: waiter.subject }, 'ignoring an unusable message stored as a command result');
      return undefined;
    }
    return parsed.data;
  }

  private startRecheck(waiters: Map<string, Waiter>, signal: AbortSignal, settle: (w: Waiter, r: CommandResult) => void): NodeJS.Timeout {
    let running = false;
    const timer = setInterval(() => {
      if (running || signal.aborted) return;
      running = true;
      void (async () => {
        for (const waiter of waiters.values()) {
          if (signal.aborted) break;
          if (!waiter.issued || waiter.result !== undefined) continue;
          try {
            const stored = await this.lookup(waiter);
            if (stored !== undefined) settle(waiter, stored);
          } catch (err) {
            this.logger.warn({ subject: waiter.subject, err }, 'recheck of a missing result failed; will try again');
            break;
          }
        }
      })().finally(() => (running = false));
    }, this.recheckMs);
    timer.unref();
    return timer;
  }
}
