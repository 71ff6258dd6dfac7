/**
 * Carries out one command exactly once in effect, in bounded time, and says
 * precisely what happened. Order matters:
 *   1. the command must come from the site's current planner lease holder
 *      (lease-authority.ts): anything else is dead-lettered with the reason,
 *      records nothing and publishes no result, so a forged or late command
 *      can neither act nor stand in for a real one's result;
 *   2. an idempotency record is claimed: a command whose result is recorded
 *      returns that result without touching hardware (a redelivery after a
 *      crash between record and ack); one still pending runs again (see below);
 *   3. the driver ensures the state, retrying transient errors with backoff
 *      until the command's deadline;
 *   4. the result is recorded, then published; only then does the handler
 *      return and the bus ack.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import {
  CommandResult,
  errorCodes,
  FirebreakError,
  toFirebreakError,
  topics,
  type Command,
  type Logger,
  type Store,
} from '@firebreak/shared';
import { KeyedLimiter } from './keyed-limiter.ts';
import { LeaseAuthority } from './lease-authority.ts';

/** What the drivers did, read back from the device. */
export interface Execution {
  observed?: Record<string, unknown>;
}

export interface CommandDrivers {
  /** The device a command talks to, e.g. `bmc:127.0.0.1:443`, for per-device limits and spans. */
  deviceOf(command: Command): string;
  /** Ensures the command's state on the device; throws a FirebreakError (retryable or not). */
  execute(command: Command, signal: AbortSignal): Promise<Execution>;
}

export interface ResultSink {
  publish(result: CommandResult): Promise<void>;
}

export interface CommandRunnerOptions {
  store: Store;
  drivers: CommandDrivers;
  results: ResultSink;
  executorId: string;
  logger: Logger;
  /**
   * Concurrent commands per device, whatever their kind; it bounds this runner
   * (one executor process) only, executors do not share it. The per-kind
   * limits are the handler slots of each kind's consumer (executor.ts).
   */
  limits: { perDevice: number };
  retry: { initialMs: number; maxMs: number };
  /** How long the lease holder read from the store is trusted (lease-authority.ts). */
  leaseCacheMs?: number;
  clock?: () => number;
}

const tracer = trace.getTracer('firebreak-executor');

/** The idempotency record of one command. */
export const idempotencyKey = (commandId: string): string => `cmd-${commandId}`;

export class CommandRunner {
  readonly deviceLimiter: KeyedLimiter;
  private readonly authority: LeaseAuthority;
  private readonly clock: () => number;

  constructor(private readonly options: CommandRunnerOptions) {
    this.deviceLimiter = new KeyedLimiter(options.limits.perDevice);
    this.clock = options.clock ?? Date.now;
    this.authority = new LeaseAuthority({ leases: options.store.leaderLeases, clock: this.clock, ...(options.leaseCacheMs !== undefined && { cacheMs: options.leaseCacheMs }) });
  }

  /** The bus handler: resolves once the result is durable and published. */
  async handle(command: Command, deliveries: number): Promise<CommandResult> {
    const startedAt = this.clock();
    const { store } = this.options;
    const key = idempotencyKey(command.commandId);

    const lease = await this.authority.check(command);
    if (!lease.accepted) {
      this.options.logger.warn({ commandId: command.commandId, site: command.site, fencingToken: command.fencingToken, issuer: command.issuer }, lease.reason);
      throw new FirebreakError(lease.reason, { code: errorCodes.staleFencingToken, retryable: false });
    }
    const begun = await store.idempotency.begin(key, undefined, CommandResult);
    if (!begun.first && begun.record.state === 'done') {
      const replay = { ...begun.record.result, replayed: true };
      await this.options.results.publish(replay);
      this.options.logger.info({ commandId: command.commandId, deliveries }, 'command already carried out; replaying its result');
      return replay;
    }
    // A pending record: an earlier delivery began this command and never recorded a result. A handler
    // keeps its message with progress acks, so it came back because that executor died or lost its
    // connection, and whether its effect reached the device is unknown: the command runs again. That is
    // harmless because drivers ensure a state, never toggle: they read the device and act only where the
    // state does not hold yet, so a second run finds it held and reads it back for the result
    // (executor.int.test.ts, "killed after the effect but before recording it").

    const device = this.options.drivers.deviceOf(command);
    return this.deviceLimiter.run(device, () => this.execute(command, device, startedAt, key));
  }

  private async execute(command: Command, device: string, startedAt: number, key: string): Promise<CommandResult> {
    return tracer.startActiveSpan(`execute ${command.kind} ${command.action}`, async (span) => {
      span.setAttributes({
        'firebreak.command.id': command.commandId,
        'firebreak.incident.id': command.incidentId,
        'firebreak.command.kind': command.kind,
        'firebreak.command.action': command.action,
        'firebreak.device': device,
        ...('host' in command && { 'firebreak.host': command.host }),
      });
      let attempts = 0;
      let delay = this.options.retry.initialMs;
      for (;;) {
        attempts++;
        const remaining = command.deadline - this.clock();
        if (remaining <= 0) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'deadline passed' });
          span.end();
          return this.record(key, command, startedAt, attempts, {
            outcome: 'failed',
            error: { code: errorCodes.timeout, message: `deadline passed after ${attempts - 1} attempt(s) on ${device}`, retryable: false },
          });
        }
        try {
          const done = await this.options.drivers.execute(command, AbortSignal.timeout(remaining));
          span.end();
          return this.record(key, command, startedAt, attempts, { outcome: 'succeeded', ...(done.observed && { observed: done.observed }) });
        } catch (thrown) {
          const err = toFirebreakError(thrown);
          const timedOut = (thrown as Error).name === 'TimeoutError' || err.code === errorCodes.timeout;
          const wait = Math.min(delay, command.deadline - this.clock());
          if (!err.retryable || (timedOut && this.clock() >= command.deadline) || wait <= 0) {
            span.recordException(err);
            span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
            span.end();
            return this.record(key, command, startedAt, attempts, {
              outcome: 'failed',
              error: { code: err.code, message: err.message, retryable: err.retryable },
            });
          }
          this.options.logger.warn({ commandId: command.commandId, device, attempts, err: err.message }, 'transient failure; retrying');
          await new Promise((r) => setTimeout(r, wait));
          delay = Math.min(delay * 2, this.options.retry.maxMs);
        }
      }
    });
  }

  /** Records the result before publishing it, so a redelivery finds it. */
  private async record(key: string, command: Command, startedAt: number, attempts: number, outcome: Pick<CommandResult, 'outcome'> & Partial<CommandResult>): Promise<CommandResult> {
    const result = this.build(command, startedAt, attempts, outcome);
    await this.options.store.idempotency.complete(key, result);
    await this.options.results.publish(result);
    return result;
  }

  /** Typed from typed parts; the bus validates it against CommandResult as it publishes, so it is not parsed here a second time. */
  private build(command: Command, startedAt: number, attempts: number, outcome: Pick<CommandResult, 'outcome'> & Partial<CommandResult>): CommandResult {
    return {
      commandId: command.commandId,
      incidentId: command.incidentId,
      kind: command.kind,
      attempts,
      startedAt,
      finishedAt: this.clock(),
      executor: this.options.executorId,
      replayed: false,
      ...outcome,
    };
  }
}

/** Publishes results on fb.res.<incident>.<command>, one message id per command and attempt. */
export function busResultSink(bus: { publish: (topic: ReturnType<typeof topics.result>, msg: CommandResult, opts: { msgId: string }) => Promise<unknown> }): ResultSink {
  return {
    publish: async (result) => {
      await bus.publish(topics.result(result.incidentId, result.commandId), result, {
        msgId: `res-${result.commandId}-${result.replayed ? `replay-${result.finishedAt}` : 'first'}`,
      });
    },
  };
}

