/**
 * The typed bus: every message is validated against its topic's schema on the
 * way out and on the way in, JetStream publishes are deduplicated by
 * `Nats-Msg-Id`, trace context rides in the headers, and a message a consumer
 * cannot use goes to `fb.dlq.<subject>` instead of crashing or blocking it.
 * Request/reply (core NATS) validates both ways too: a bad request gets an
 * error reply naming what is wrong, never a crashed or silent responder.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import {
  AckPolicy,
  DeliverPolicy,
  ErrorCode,
  NatsError,
  headers as natsHeaders,
  nanos,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type PubAck,
} from 'nats';
import type { z } from 'zod';
import { FirebreakError, InvalidMessageError, errorCodes, toFirebreakError, type FirebreakErrorOptions } from '../errors.ts';
import type { DeadLetter } from '../schemas/dead-letter.schema.ts';
import { describeIssues, fieldIssues, type FieldIssue } from '../schemas/validation.ts';
import { assertToken, headers } from '../subjects.ts';
import {
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  MESSAGING_SYSTEM_VALUE_NATS,
  messagingOperationTypes,
} from '../telemetry/semconv.ts';
import { topics, type Topic } from '../topics.ts';
import { natsHeaderGetter, natsHeaderSetter } from './trace-headers.ts';

/** The subset of a pino logger the bus needs; a pino `Logger` fits as is. */
export interface BusLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: BusLogger = { info: () => {}, warn: () => {}, error: () => {} };

export interface PublishOptions {
  /** Dedupe key within the stream's duplicate window; a random uuid when absent. */
  msgId?: string;
  headers?: Readonly<Record<string, string>>;
}

export interface MessageContext {
  /** The concrete subject, e.g. `fb.cmd.power` for a consumer of `fb.cmd.>`. */
  subject: string;
  msgId: string | undefined;
  /** 1 on first delivery. */
  deliveries: number;
  headers: Readonly<Record<string, string>>;
  /** Aborted when the consumer stops; a handler that gives up early has its message redelivered at once. */
  signal: AbortSignal;
}

export type MessageHandler<T> = (message: T, ctx: MessageContext) => Promise<void>;

export interface ConsumeOptions<S extends z.ZodType> {
  /** Gives the stream, the schema and (by default) the filter subject. */
  topic: Topic<S>;
  /** Instances that pass the same durable share its messages. */
  durable: string;
  /**
   * Defaults to the topic's subject. On the FB_CMDS work queue, filters of
   * different durables must not overlap: use one durable per command kind or
   * one for `fb.cmd.>`.
   */
  filterSubject?: string;
  handler: MessageHandler<z.output<S>>;
  /** Deliveries before a failing message is dead-lettered; default 5. */
  maxDeliver?: number;
  /** Default 30 s; a running handler keeps its message with progress acks, so this only bounds a dead process. */
  ackWaitMs?: number;
  /** Redelivery delay after the n-th failed delivery (the last entry repeats); default 1 s doubling to 60 s. */
  backoffMs?: readonly number[];
  /** Handlers running at once in this process; default 1. */
  concurrency?: number;
}

export interface ConsumerHandle {
  /** Stops pulling, aborts handlers' signals, and waits for in-flight handlers to settle. */
  stop(): Promise<void>;
}

export interface CoreCounters {
  received: number;
  /** Bad JSON or failed schema; dropped. */
  invalid: number;
  /** The handler threw or rejected. */
  failed: number;
}

export interface CoreSubscription {
  readonly counters: Readonly<CoreCounters>;
  stop(): Promise<void>;
}

export type CoreHandler<T> = (message: T, ctx: { subject: string }) => void | Promise<void>;

export interface ServeOptions {
  /** Responders in one queue group share the requests: each goes to one of them. */
  queue?: string;
}

export interface RequestContext {
  subject: string;
  headers: Readonly<Record<string, string>>;
}

/**
 * Resolves to the reply, or to undefined to stay silent because the request
 * is another responder's to answer. Throwing sends an error reply with the
 * message: 400 for a non-retryable FirebreakError, 500 for anything else.
 */
export type RequestHandler<Req, Rep> = (request: Req, ctx: RequestContext) => Promise<Rep | undefined>;

export interface ResponderCounters {
  received: number;
  /** Bad JSON, failed schema or no reply subject: answered with an error where possible. */
  invalid: number;
  /** The handler threw, or its reply failed the reply schema. */
  failed: number;
  /** Left to another responder. */
  silent: number;
}

export interface Responder {
  readonly counters: Readonly<ResponderCounters>;
  /** Stops taking requests and waits for the ones being answered. */
  stop(): Promise<void>;
}

export interface RequestOptions {
  /** Default 5 s. */
  timeoutMs?: number;
  /** Who should answer, for the error messages ("no planner answered on …"); default "responder". */
  responder?: string;
}

/** A request got no usable reply: nobody answered, the responder said no, or its reply was invalid. */
export class RequestError extends FirebreakError {
  override name = 'RequestError';
  constructor(
    message: string,
    readonly subject: string,
    options: FirebreakErrorOptions,
  ) {
    super(message, options);
  }
}

const DEFAULT_MAX_DELIVER = 5;
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const DEFAULT_ACK_WAIT_MS = 30_000;
const DEFAULT_BACKOFF_BASE_MS = 1_000;
const DEFAULT_BACKOFF_MAX_MS = 60_000;
/** How long one pull request waits on the server; also bounds recovery after a reconnect loses it. */
const PULL_EXPIRES_MS = 10_000;
/** Pause after a failed pull or dead-letter publish, so an outage does not become a busy loop. */
const RETRY_PAUSE_MS = 1_000;
/** A header value must be one line; the envelope keeps the full reason. */
const MAX_REASON_HEADER = 256;
/** nats-server's default max_payload, for a connection that has not said its own. */
const DEFAULT_MAX_PAYLOAD = 1_048_576;
/** Room a dead letter keeps for everything but the payload's copy: its fields, reason, issues and headers. */
const DEAD_LETTER_OVERHEAD = 64 * 1024;
const MAX_REASON = 4_096;
const MAX_ISSUES = 100;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const tracer = () => trace.getTracer('@firebreak/shared/bus');

type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string; issues: FieldIssue[] };

function decode<S extends z.ZodType>(schema: S, data: Uint8Array): Decoded<z.output<S>> {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data));
  } catch (err) {
    return { ok: false, reason: `payload is not JSON: ${err instanceof Error ? err.message : String(err)}`, issues: [] };
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    return { ok: false, reason: `schema validation failed: ${describeIssues(result.error)}`, issues: fieldIssues(result.error) };
  }
  return { ok: true, value: result.data };
}

/** Validates and serialises the parsed form, so defaults and normalisations travel on the wire. */
function encode(topic: Topic, message: unknown): Uint8Array {
  const result = topic.schema.safeParse(message);
  if (!result.success) {
    throw new InvalidMessageError(`invalid message for ${topic.subject}: ${describeIssues(result.error)}`, result.error);
  }
  return encoder.encode(JSON.stringify(result.data));
}

function assertPublishable(subject: string): void {
  if (subject.split('.').some((token) => token === '*' || token === '>')) {
    throw new Error(`cannot publish to the pattern ${subject}: use a topic with a concrete subject`);
  }
}

/** One line, bounded: what a header can carry. */
const headerLine = (text: string): string => text.replace(/\s+/g, ' ').slice(0, MAX_REASON_HEADER);

function headerRecord(hdrs: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of hdrs?.keys() ?? []) out[key] = hdrs?.get(key) ?? '';
  return out;
}

function recordError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

function backoffDelay(backoffMs: readonly number[] | undefined, deliveries: number): number {
  if (backoffMs !== undefined && backoffMs.length > 0) {
    return backoffMs[Math.min(deliveries, backoffMs.length) - 1] ?? 0;
  }
  return Math.min(DEFAULT_BACKOFF_BASE_MS * 2 ** (deliveries - 1), DEFAULT_BACKOFF_MAX_MS);
}

/** The error text of an error reply's body, when it has one. */
function errorReason(data: Uint8Array): string | undefined {
  try {
    const body: unknown = JSON.parse(decoder.decode(data));
    if (typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string' && body.error !== '') return body.error;
  } catch {
    // The header's one-line reason stands in.
  }
  return undefined;
}

interface ResponderRuntime<S extends z.ZodType, R extends z.ZodType> {
  topic: Topic<S>;
  replySchema: R;
  handler: RequestHandler<z.output<S>, z.input<R>>;
  queue: string | undefined;
  counters: ResponderCounters;
  /** Subjects already warned about, so one misbehaving publisher is one log line. */
  warned: Set<string>;
}

interface ConsumerRuntime<S extends z.ZodType> {
  schema: S;
  durable: string;
  filterSubject: string;
  handler: MessageHandler<z.output<S>>;
  maxDeliver: number;
  ackWaitMs: number;
  backoffMs: readonly number[] | undefined;
  abort: AbortController;
  /** The pump's open pull request, closed on stop so it does not wait out its expiry. */
  pull: ConsumerMessages | undefined;
}

export class Bus {
  readonly js: JetStreamClient;
  private readonly consumers = new Set<ConsumerHandle>();
  private readonly responders = new Set<Responder>();

  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    private readonly logger: BusLogger,
  ) {
    this.js = nc.jetstream();
  }

  /** Wraps an open connection; fails when the server has no JetStream, unless told not to ask (`checkJetStream: false`). */
  static async open(nc: NatsConnection, logger: BusLogger = silentLogger, options: { checkJetStream?: boolean } = {}): Promise<Bus> {
    return new Bus(nc, await nc.jetstreamManager({ checkAPI: options.checkJetStream ?? true }), logger);
  }

  /** Publishes to a JetStream topic and resolves once the stream has stored it (or recognised a duplicate). */
  publish<S extends z.ZodType>(topic: Topic<S>, message: z.input<S>, options: PublishOptions = {}): Promise<PubAck> {
    return this.send(topic, message, options, context.active());
  }

  /**
   * Fire-and-forget on core NATS, for heartbeats. No span per message: at one
   * heartbeat per host per second a span each would cost more than the
   * publish and flood the trace backend. A caller's active trace still rides
   * along in the headers.
   */
  publishCore<S extends z.ZodType>(topic: Topic<S>, message: z.input<S>): void {
    if (topic.stream !== undefined) {
      throw new Error(`${topic.subject} is stored in ${topic.stream}: use publish() so it is deduplicated and acknowledged`);
    }
    assertPublishable(topic.subject);
    const data = encode(topic, message);
    const active = trace.getSpanContext(context.active());
    if (active === undefined || !isSpanContextValid(active)) {
      this.nc.publish(topic.subject, data);
      return;
    }
    const hdrs = natsHeaders();
    propagation.inject(context.active(), hdrs, natsHeaderSetter);
    this.nc.publish(topic.subject, data, { headers: hdrs });
  }

  /**
   * Creates (or updates) the durable pull consumer and starts processing.
   * Acks only after the handler resolved; a throwing handler's message is
   * redelivered with backoff, and dead-lettered after `maxDeliver` deliveries
   * or at once for a non-retryable FirebreakError.
   */
  async consume<S extends z.ZodType>(options: ConsumeOptions<S>): Promise<ConsumerHandle> {
    const stream = options.topic.stream;
    if (stream === undefined) throw new Error(`${options.topic.subject} is a core NATS subject: use subscribeCore()`);
    const durable = assertToken(options.durable, 'durable');
    const maxDeliver = options.maxDeliver ?? DEFAULT_MAX_DELIVER;
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(maxDeliver) || maxDeliver < 1) throw new RangeError(`maxDeliver must be a positive integer, got ${maxDeliver}`);
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    const filterSubject = options.filterSubject ?? options.topic.subject;

    // Same config twice is a no-op; changed limits update the durable in place.
    await this.jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: filterSubject,
      ack_wait: nanos(ackWaitMs),
      // One spare delivery: when the last attempt never settled (the process died),
      // the message comes back once more to be dead-lettered instead of being
      // silently given up by the server.
      max_deliver: maxDeliver + 1,
    });
    const consumer = await this.js.consumers.get(stream, durable);

    const runtime: ConsumerRuntime<S> = {
      schema: options.topic.schema,
      durable,
      filterSubject,
      handler: options.handler,
      maxDeliver,
      ackWaitMs,
      backoffMs: options.backoffMs,
      abort: new AbortController(),
      pull: undefined,
    };
    const pumping = this.pump(consumer, runtime, concurrency);
    const handle: ConsumerHandle = {
      stop: async () => {
        if (!runtime.abort.signal.aborted) {
          runtime.abort.abort();
          void runtime.pull?.close();
        }
        await pumping;
        this.consumers.delete(handle);
      },
    };
    this.consumers.add(handle);
    return handle;
  }

  /**
   * Core NATS subscription for high-rate subjects (heartbeats). Invalid
   * messages are counted and dropped, with one warning per subject: a
   * dead-letter publish per bad heartbeat would turn one broken agent into a
   * flood on the DLQ stream. Resolves once the server has the interest, so
   * nothing published afterwards is missed.
   */
  async subscribeCore<S extends z.ZodType>(topic: Topic<S>, handler: CoreHandler<z.output<S>>): Promise<CoreSubscription> {
    const counters: CoreCounters = { received: 0, invalid: 0, failed: 0 };
    const warned = new Set<string>();
    const warnOnce = (kind: 'invalid' | 'failed', subject: string, fields: object, msg: string) => {
      const key = `${kind} ${subject}`;
      if (warned.has(key)) return;
      warned.add(key);
      this.logger.warn({ subject, ...fields }, `${msg} (logged once per subject)`);
    };
    const onFailure = (subject: string, err: unknown) => {
      counters.failed++;
      warnOnce('failed', subject, { err }, 'core handler failed');
    };

    const sub = this.nc.subscribe(topic.subject, {
      callback: (err, msg) => {
        if (err) {
          this.logger.error({ subject: topic.subject, err }, 'core subscription error');
          return;
        }
        counters.received++;
        const decoded = decode(topic.schema, msg.data);
        if (!decoded.ok) {
          counters.invalid++;
          warnOnce('invalid', msg.subject, { reason: decoded.reason }, 'dropping invalid message');
          return;
        }
        try {
          const pending = handler(decoded.value, { subject: msg.subject });
          if (pending instanceof Promise) pending.catch((e: unknown) => onFailure(msg.subject, e));
        } catch (e) {
          onFailure(msg.subject, e);
        }
      },
    });
    await this.nc.flush();
    return {
      counters,
      stop: async () => {
        if (!sub.isClosed() && !this.nc.isClosed()) await sub.drain();
      },
    };
  }

  /**
   * Answers requests on a core NATS topic: each request is validated against
   * the topic's schema and each reply against `replySchema`. A request that
   * fails validation, or whose handler throws, gets an error reply naming
   * what went wrong (headers `Nats-Service-Error` and `-Code`, and
   * `{"error": …}` as the body); the responder goes on either way. Resolves
   * once the server has the interest.
   */
  async serve<S extends z.ZodType, R extends z.ZodType>(
    topic: Topic<S>,
    replySchema: R,
    handler: RequestHandler<z.output<S>, z.input<R>>,
    options: ServeOptions = {},
  ): Promise<Responder> {
    if (topic.stream !== undefined) throw new Error(`${topic.subject} is stored in ${topic.stream}: requests run on core NATS subjects`);
    const counters: ResponderCounters = { received: 0, invalid: 0, failed: 0, silent: 0 };
    const inFlight = new Set<Promise<void>>();
    const warned = new Set<string>();
    const sub = this.nc.subscribe(topic.subject, {
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      callback: (err, msg) => {
        if (err) {
          this.logger.error({ subject: topic.subject, err }, 'responder subscription error');
          return;
        }
        counters.received++;
        const answering = this.answer(msg, { topic, replySchema, handler, queue: options.queue, counters, warned }).finally(() => inFlight.delete(answering));
        inFlight.add(answering);
      },
    });
    await this.nc.flush();
    const responder: Responder = {
      counters,
      stop: async () => {
        if (!sub.isClosed() && !this.nc.isClosed()) await sub.drain();
        await Promise.all(inFlight);
        this.responders.delete(responder);
      },
    };
    this.responders.add(responder);
    return responder;
  }

  /**
   * Sends a request on a core NATS topic and resolves with the validated
   * reply. Throws a RequestError whose message says what went wrong: nobody
   * answered in time, nobody listens, the responder's error reply (its
   * reason), or a reply that fails `replySchema`. An invalid request throws
   * InvalidMessageError before anything is sent.
   */
  async request<S extends z.ZodType, R extends z.ZodType>(
    topic: Topic<S>,
    message: z.input<S>,
    replySchema: R,
    options: RequestOptions = {},
  ): Promise<z.output<R>> {
    if (topic.stream !== undefined) throw new Error(`${topic.subject} is stored in ${topic.stream}: requests run on core NATS subjects`);
    assertPublishable(topic.subject);
    const data = encode(topic, message);
    const subject = topic.subject;
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const who = options.responder ?? 'responder';
    const parent = context.active();
    const span = tracer().startSpan(
      `send ${subject}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_VALUE_NATS,
          [ATTR_MESSAGING_DESTINATION_NAME]: subject,
          [ATTR_MESSAGING_OPERATION_TYPE]: messagingOperationTypes.send,
          [ATTR_MESSAGING_OPERATION_NAME]: 'request',
          [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: data.length,
        },
      },
      parent,
    );
    try {
      const hdrs = natsHeaders();
      propagation.inject(trace.setSpan(parent, span), hdrs, natsHeaderSetter);
      let reply: Msg;
      try {
        reply = await this.nc.request(subject, data, { timeout: timeoutMs, headers: hdrs });
      } catch (err) {
        if (err instanceof NatsError && err.code === ErrorCode.Timeout) {
          throw new RequestError(`no ${who} answered on ${subject} within ${timeoutMs} ms`, subject, { code: errorCodes.timeout, retryable: true, cause: err });
        }
        if (err instanceof NatsError && err.code === ErrorCode.NoResponders) {
          throw new RequestError(`no ${who} answered on ${subject}: nothing listens on it`, subject, { code: errorCodes.transient, retryable: true, cause: err });
        }
        throw err;
      }
      const refusal = reply.headers?.get(headers.serviceError);
      if (refusal) {
        const badRequest = reply.headers?.get(headers.serviceErrorCode) === '400';
        throw new RequestError(errorReason(reply.data) ?? refusal, subject, badRequest ? { code: errorCodes.permanent, retryable: false } : { code: errorCodes.transient, retryable: true });
      }
      const decoded = decode(replySchema, reply.data);
      if (!decoded.ok) throw new RequestError(`invalid reply on ${subject}: ${decoded.reason}`, subject, { code: errorCodes.invalidMessage, retryable: false });
      return decoded.value;
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Stops every consumer and responder (waiting for in-flight handlers), then drains the connection. */
  async close(): Promise<void> {
    await Promise.all([...this.consumers, ...this.responders].map((c) => c.stop()));
    if (this.nc.isClosed()) return;
    if (this.nc.isDraining()) {
      await this.nc.closed();
      return;
    }
    await this.nc.drain();
    // nats.js 2.29: a connection with no subscription (a core-only bus) drained while it reconnects
    // resolves the drain yet stays open, reconnecting for ever and keeping the process alive.
    if (!this.nc.isClosed()) await this.nc.close();
  }

  /** Never throws: a request that cannot be answered is counted, logged and (when it can be) answered with an error. */
  private async answer<S extends z.ZodType, R extends z.ZodType>(msg: Msg, rt: ResponderRuntime<S, R>): Promise<void> {
    const parent = propagation.extract(ROOT_CONTEXT, msg.headers, natsHeaderGetter);
    const attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_VALUE_NATS,
      [ATTR_MESSAGING_DESTINATION_NAME]: msg.subject,
      [ATTR_MESSAGING_OPERATION_TYPE]: messagingOperationTypes.process,
      [ATTR_MESSAGING_OPERATION_NAME]: 'process',
      [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: msg.data.length,
    };
    if (rt.queue !== undefined) attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = rt.queue;
    const span = tracer().startSpan(`process ${msg.subject}`, { kind: SpanKind.CONSUMER, attributes }, parent);
    const refuse = (code: 400 | 500, reason: string): void => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
      const hdrs = natsHeaders();
      hdrs.set(headers.serviceError, headerLine(reason));
      hdrs.set(headers.serviceErrorCode, String(code));
      msg.respond(encoder.encode(JSON.stringify({ error: reason })), { headers: hdrs });
    };
    try {
      if (!msg.reply) {
        rt.counters.invalid++;
        if (!rt.warned.has(msg.subject)) {
          rt.warned.add(msg.subject);
          this.logger.warn({ subject: msg.subject }, 'dropping a message with no reply subject: send requests, not publishes (logged once per subject)');
        }
        return;
      }
      const decoded = decode(rt.topic.schema, msg.data);
      if (!decoded.ok) {
        rt.counters.invalid++;
        refuse(400, `invalid request on ${msg.subject}: ${decoded.reason}`);
        return;
      }
      let result: z.input<R> | undefined;
      try {
        const ctx: RequestContext = { subject: msg.subject, headers: headerRecord(msg.headers) };
        result = await context.with(trace.setSpan(parent, span), () => rt.handler(decoded.value, ctx));
      } catch (err) {
        rt.counters.failed++;
        recordError(span, err);
        const failure = toFirebreakError(err);
        this.logger.warn({ subject: msg.subject, err }, 'request handler failed; sent an error reply');
        refuse(failure.retryable ? 500 : 400, failure.message);
        return;
      }
      if (result === undefined) {
        rt.counters.silent++;
        return;
      }
      const checked = rt.replySchema.safeParse(result);
      if (!checked.success) {
        rt.counters.failed++;
        const reason = `the responder's reply on ${msg.subject} failed its schema: ${describeIssues(checked.error)}`;
        this.logger.error({ subject: msg.subject, reason }, 'invalid reply not sent; sent an error reply');
        refuse(500, reason);
        return;
      }
      msg.respond(encoder.encode(JSON.stringify(checked.data)));
    } catch (err) {
      // Responding failed (connection closed under us): the requester times out.
      recordError(span, err);
      this.logger.warn({ subject: msg.subject, err }, 'could not send a reply');
    } finally {
      span.end();
    }
  }

  private async send(topic: Topic, message: unknown, options: PublishOptions, parent: Context): Promise<PubAck> {
    const stream = topic.stream;
    if (stream === undefined) throw new Error(`${topic.subject} is a core NATS subject: use publishCore()`);
    assertPublishable(topic.subject);
    const data = encode(topic, message);
    const msgId = options.msgId ?? randomUUID();

    const span = tracer().startSpan(
      `send ${topic.subject}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_VALUE_NATS,
          [ATTR_MESSAGING_DESTINATION_NAME]: topic.subject,
          [ATTR_MESSAGING_OPERATION_TYPE]: messagingOperationTypes.send,
          [ATTR_MESSAGING_OPERATION_NAME]: 'publish',
          [ATTR_MESSAGING_MESSAGE_ID]: msgId,
          [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: data.length,
        },
      },
      parent,
    );
    try {
      const hdrs = natsHeaders();
      for (const [key, value] of Object.entries(options.headers ?? {})) hdrs.set(key, value);
      // Inject from an explicit context: without a context manager `context.active()` would not hold the span.
      propagation.inject(trace.setSpan(parent, span), hdrs, natsHeaderSetter);
      // `expect` makes the server refuse a subject that landed in the wrong stream.
      return await this.js.publish(topic.subject, data, { msgID: msgId, headers: hdrs, expect: { streamName: stream } });
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * Pulls only as many messages as there are free handler slots, and hands
   * each to a handler the moment it arrives: nothing waits in a client-side
   * buffer while its ack timer runs on the server, and under load one pull
   * request serves many messages instead of one request per message.
   */
  private async pump<S extends z.ZodType>(consumer: Consumer, rt: ConsumerRuntime<S>, concurrency: number): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const dispatch = (msg: JsMsg): void => {
      const handled = this.process(msg, rt).finally(() => inFlight.delete(handled));
      inFlight.add(handled);
    };
    // Pull in batches: a busy consumer waits for a quarter of its slots to free up, so it makes
    // one pull per batch rather than one per finished message (each pull is a request and a reply).
    const batch = Math.max(1, Math.floor(concurrency / 4));
    while (!rt.abort.signal.aborted && !this.nc.isClosed()) {
      if (inFlight.size > 0 && concurrency - inFlight.size < batch) {
        await Promise.race(inFlight);
        continue;
      }
      try {
        const pull = await consumer.fetch({ max_messages: concurrency - inFlight.size, expires: PULL_EXPIRES_MS });
        rt.pull = pull;
        try {
          for await (const msg of pull) {
            // A message that arrived as we stopped goes straight back for another instance.
            if (rt.abort.signal.aborted) msg.nak();
            else dispatch(msg);
          }
        } finally {
          rt.pull = undefined;
        }
      } catch (err) {
        if (rt.abort.signal.aborted || this.nc.isClosed()) break;
        this.logger.warn({ durable: rt.durable, err }, 'pull failed; retrying');
        await sleep(RETRY_PAUSE_MS, undefined, { signal: rt.abort.signal }).catch(() => {});
      }
    }
    await Promise.all(inFlight);
  }

  /** Never throws: whatever happens to one message, the pump moves on to the next. */
  private async process<S extends z.ZodType>(msg: JsMsg, rt: ConsumerRuntime<S>): Promise<void> {
    const deliveries = msg.info.deliveryCount;
    const msgId = msg.headers?.get(headers.msgId) || undefined;
    const parent = propagation.extract(ROOT_CONTEXT, msg.headers, natsHeaderGetter);
    const attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_VALUE_NATS,
      [ATTR_MESSAGING_DESTINATION_NAME]: msg.subject,
      [ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME]: rt.filterSubject,
      [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: rt.durable,
      [ATTR_MESSAGING_OPERATION_TYPE]: messagingOperationTypes.process,
      [ATTR_MESSAGING_OPERATION_NAME]: 'process',
      [ATTR_MESSAGING_MESSAGE_BODY_SIZE]: msg.data.length,
    };
    if (msgId !== undefined) attributes[ATTR_MESSAGING_MESSAGE_ID] = msgId;
    const span = tracer().startSpan(`process ${msg.subject}`, { kind: SpanKind.CONSUMER, attributes }, parent);
    const spanContext = trace.setSpan(parent, span);
    const deadLetter = (reason: string, issues: FieldIssue[] = []) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
      return this.deadLetter(msg, rt, { reason, issues, msgId }, spanContext);
    };

    try {
      const decoded = decode(rt.schema, msg.data);
      if (!decoded.ok) return await deadLetter(decoded.reason, decoded.issues);
      if (deliveries > rt.maxDeliver) {
        return await deadLetter(`max deliveries (${rt.maxDeliver}) exceeded: the last attempt never settled (ack wait expired)`);
      }

      const ctx: MessageContext = { subject: msg.subject, msgId, deliveries, headers: headerRecord(msg.headers), signal: rt.abort.signal };
      try {
        await this.runHandler(msg, rt, () => context.with(spanContext, () => rt.handler(decoded.value, ctx)));
      } catch (err) {
        recordError(span, err);
        if (rt.abort.signal.aborted) {
          msg.nak(); // interrupted by stop(), not a failure of the message
          return;
        }
        const failure = toFirebreakError(err);
        if (!failure.retryable) return await deadLetter(`non-retryable error: ${failure.message}`);
        if (deliveries >= rt.maxDeliver) return await deadLetter(`max deliveries (${rt.maxDeliver}) exceeded: ${failure.message}`);
        const delay = backoffDelay(rt.backoffMs, deliveries);
        this.logger.warn({ subject: msg.subject, msgId, deliveries, delayMs: delay, err }, 'handler failed; will retry');
        msg.nak(delay);
        return;
      }
      msg.ack();
    } catch (err) {
      // Settling failed (connection closed under us): the server redelivers after ack wait.
      recordError(span, err);
      this.logger.error({ subject: msg.subject, msgId, err }, 'could not settle message');
    } finally {
      span.end();
    }
  }

  /** Keeps the message ours while the handler runs, however long that is. */
  private async runHandler<S extends z.ZodType>(msg: JsMsg, rt: ConsumerRuntime<S>, run: () => Promise<void>): Promise<void> {
    const progress = setInterval(() => {
      if (this.nc.isClosed()) {
        clearInterval(progress);
        return;
      }
      try {
        msg.working();
      } catch {
        // Disconnected for now; if the ack wait runs out the message is redelivered, which is safe.
      }
    }, Math.max(rt.ackWaitMs / 2, 50));
    progress.unref();
    try {
      await run();
    } finally {
      clearInterval(progress);
    }
  }

  private async deadLetter<S extends z.ZodType>(
    msg: JsMsg,
    rt: ConsumerRuntime<S>,
    why: { reason: string; issues: FieldIssue[]; msgId: string | undefined },
    parent: Context,
  ): Promise<void> {
    // The envelope must fit under the server's limit, which the original may have filled: keep the beginning, with the size and hash of the whole.
    const room = Math.floor(((this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - DEAD_LETTER_OVERHEAD) * 0.75);
    const kept = msg.data.length > room ? msg.data.subarray(0, Math.max(0, room)) : msg.data;
    const envelope: z.input<typeof DeadLetter> = {
      originalSubject: msg.subject,
      reason: why.reason.slice(0, MAX_REASON),
      issues: why.issues.slice(0, MAX_ISSUES),
      payloadBase64: Buffer.from(kept).toString('base64'),
      payloadBytes: msg.data.length,
      payloadSha256: createHash('sha256').update(msg.data).digest('hex'),
      ...(kept.length < msg.data.length && { payloadTruncated: true }),
      originalSeq: msg.seq,
      stream: msg.info.stream,
      consumer: rt.durable,
      deliveries: msg.info.deliveryCount,
      deadLetteredAt: Date.now(),
      ...(why.msgId === undefined ? {} : { originalMsgId: why.msgId }),
    };
    try {
      await this.send(
        topics.deadLetter(msg.subject),
        envelope,
        {
          // Stable per stored message, so a redelivery after a crash between publish and term is deduplicated.
          msgId: `dlq:${msg.info.stream}:${msg.seq}`,
          headers: { [headers.deadLetterReason]: headerLine(why.reason) },
        },
        parent,
      );
    } catch (err) {
      // Keep the original rather than lose it; it comes back and is dead-lettered then.
      this.logger.error({ subject: msg.subject, reason: why.reason, err }, 'dead-letter publish failed; will retry');
      msg.nak(RETRY_PAUSE_MS);
      return;
    }
    // No reason argument: nats-server 2.9 only recognises a bare +TERM.
    msg.term();
    this.logger.warn({ subject: msg.subject, msgId: why.msgId, reason: why.reason, deliveries: msg.info.deliveryCount }, 'message dead-lettered');
  }
}
