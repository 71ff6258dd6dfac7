/**
 * Publishes the detector's verdicts. Message ids derive from the host (or
 * domain) and the failure epoch, so two detectors that see one failure
 * publish the same id and JetStream keeps one.
 */
import { trace } from '@opentelemetry/api';
import {
  topics,
  type Bus,
  type DomainFailed,
  type FailureDomain,
  type HostFailed,
  type HostRecovered,
  type HostSuspect,
  type Logger,
} from '@firebreak/shared';

const tracer = trace.getTracer('firebreak-detector');

export const verdictIds = {
  hostFailed: (host: string, epoch: number): string => `host-failed-${host}-${epoch}`,
  hostSuspect: (host: string, epoch: number): string => `host-suspect-${host}-${epoch}`,
  hostRecovered: (host: string, epoch: number): string => `host-recovered-${host}-${epoch}`,
  domainFailed: (domain: FailureDomain, epoch: number): string => `domain-failed-${domain.kind}-${domain.id}-${epoch}`,
};

export class VerdictPublisher {
  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  hostFailed(v: HostFailed): Promise<void> {
    return this.send('host.failed', v.host, () => this.bus.publish(topics.hostFailed, v, { msgId: verdictIds.hostFailed(v.host, v.epoch) }));
  }

  hostSuspect(v: HostSuspect): Promise<void> {
    return this.send('host.suspect', v.host, () => this.bus.publish(topics.hostSuspect, v, { msgId: verdictIds.hostSuspect(v.host, v.epoch) }));
  }

  hostRecovered(v: HostRecovered): Promise<void> {
    return this.send('host.recovered', v.host, () =>
      this.bus.publish(topics.hostRecovered, v, { msgId: verdictIds.hostRecovered(v.host, v.epoch) }),
    );
  }

  domainFailed(v: DomainFailed): Promise<void> {
    const what = `${v.domain.kind} ${v.domain.id}`;
    return this.send('domain.failed', what, () => this.bus.publish(topics.domainFailed, v, { msgId: verdictIds.domainFailed(v.domain, v.epoch) }));
  }

  /** A verdict starts the incident's trace: every later span hangs off this one. */
  private async send(kind: string, subject: string, publish: () => Promise<{ duplicate: boolean }>): Promise<void> {
    await tracer.startActiveSpan(`detect ${kind}`, async (span) => {
      span.setAttribute('firebreak.verdict', kind);
      span.setAttribute('firebreak.subject', subject);
      try {
        const ack = await publish();
        this.logger.info({ verdict: kind, subject, duplicate: ack.duplicate }, ack.duplicate ? 'verdict already published by a peer' : 'verdict published');
      } catch (err) {
        span.recordException(err as Error);
        this.logger.error({ err, verdict: kind, subject }, 'could not publish verdict');
        throw err;
      } finally {
        span.end();
      }
    });
  }
}
