/**
 * Publishes the detector's verdicts through the outbox, which retries each
 * until JetStream acknowledges it. Message ids derive from the host (or
 * domain) and the failure epoch, so two detectors that see one failure, or
 * two attempts of one detector, publish the same id and JetStream keeps one.
 */
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { NatsConnection } from 'nats';
import {
  topics,
  type Bus,
  type DomainFailed,
  type FailureDomain,
  type HostFailed,
  type HostRecovered,
  type HostSuspect,
} from '@firebreak/shared';
import { watchConnection, type ConnectionWatch } from './connection-watch.ts';
import { VerdictOutbox, type OutboxBackoff, type OutboxLogger, type OutboxOutcome } from './verdict-outbox.ts';

const tracer = trace.getTracer('firebreak-detector');

export const verdictIds = {
  hostFailed: (host: string, epoch: number): string => `host-failed-${host}-${epoch}`,
  hostSuspect: (host: string, epoch: number): string => `host-suspect-${host}-${epoch}`,
  hostRecovered: (host: string, epoch: number): string => `host-recovered-${host}-${epoch}`,
  domainFailed: (domain: FailureDomain, epoch: number): string => `domain-failed-${domain.kind}-${domain.id}-${epoch}`,
};

export interface VerdictPublisherOptions {
  backoff?: OutboxBackoff;
  maxInFlight?: number;
}

/** Orders a host's verdicts after a domain verdict that named it. */
const hostKey = (host: string): string => `host:${host}`;

export class VerdictPublisher {
  private readonly outbox: VerdictOutbox;

  private readonly connection: ConnectionWatch;

  constructor(
    private readonly bus: Pick<Bus, 'publish'> & { readonly nc: Pick<NatsConnection, 'status'> },
    logger: OutboxLogger,
    options: VerdictPublisherOptions = {},
  ) {
    this.outbox = new VerdictOutbox({ logger, ...options });
    // A verdict that waited out an outage goes as soon as the connection is back, not after its backoff.
    this.connection = watchConnection(bus.nc, { reconnected: () => this.outbox.reconnected() });
  }

  /** Verdicts not yet acknowledged by JetStream. */
  get waiting(): number {
    return this.outbox.waiting;
  }

  hostFailed(v: HostFailed): Promise<OutboxOutcome> {
    return this.send('host.failed', v.host, [hostKey(v.host)], () => this.bus.publish(topics.hostFailed, v, { msgId: verdictIds.hostFailed(v.host, v.epoch) }));
  }

  hostSuspect(v: HostSuspect): Promise<OutboxOutcome> {
    return this.send('host.suspect', v.host, [hostKey(v.host)], () =>
      this.bus.publish(topics.hostSuspect, v, { msgId: verdictIds.hostSuspect(v.host, v.epoch) }),
    );
  }

  hostRecovered(v: HostRecovered): Promise<OutboxOutcome> {
    return this.send('host.recovered', v.host, [hostKey(v.host)], () =>
      this.bus.publish(topics.hostRecovered, v, { msgId: verdictIds.hostRecovered(v.host, v.epoch) }),
    );
  }

  domainFailed(v: DomainFailed): Promise<OutboxOutcome> {
    const keys = [`domain:${v.domain.kind}:${v.domain.id}`, ...v.hosts.map(hostKey)];
    return this.send('domain.failed', `${v.domain.kind} ${v.domain.id}`, keys, () =>
      this.bus.publish(topics.domainFailed, v, { msgId: verdictIds.domainFailed(v.domain, v.epoch) }),
    );
  }

  /** Gives up on verdicts not yet published (each is logged); later verdicts are refused. */
  stop(): void {
    this.outbox.stop();
    this.connection.stop();
  }

  /**
   * A verdict starts the incident's trace: every later span hangs off this
   * one, and each attempt's `send` span is its child, however late a retry runs.
   */
  private send(kind: string, subject: string, keys: string[], publish: () => Promise<{ duplicate: boolean }>): Promise<OutboxOutcome> {
    const span = tracer.startSpan(`detect ${kind}`, { attributes: { 'firebreak.verdict': kind, 'firebreak.subject': subject } });
    const ctx = trace.setSpan(context.active(), span);
    const outcome = this.outbox.add({
      kind,
      subject,
      keys,
      send: async (attempt) => {
        try {
          return await context.with(ctx, publish);
        } catch (err) {
          span.addEvent('publish failed', { attempt, 'exception.message': err instanceof Error ? err.message : String(err) });
          throw err;
        }
      },
    });
    return outcome.then((o) => {
      span.setAttribute('firebreak.verdict.outcome', o);
      if (o === 'rejected' || o === 'abandoned') span.setStatus({ code: SpanStatusCode.ERROR, message: `verdict ${o}` });
      span.end();
      return o;
    });
  }
}
