/**
 * One incident, one trace: every effect an incident's machines call runs in a
 * span whose parent is the incident's trace (the detector's event that opened
 * it), so the commands it publishes — and the executors' spans under them —
 * join that trace however long ago, or in which planner process, it began.
 */
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context } from '@opentelemetry/api';
import type { Command, CommandResult, IncidentProgress } from '@firebreak/shared';
import type { ClaimOutcome, HeartbeatWanted, IncidentEffects } from '../incident/effects.ts';

const tracer = trace.getTracer('firebreak-planner');

/** W3C trace context headers, as stored with an incident so a resumed planner continues its trace. */
export type TraceCarrier = Record<string, string>;

/** The active trace context, written into a carrier. */
export function currentTraceCarrier(): TraceCarrier {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

export function traceContextOf(carrier: TraceCarrier | undefined): Context {
  return carrier === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, carrier);
}

async function inSpan<T>(parent: Context, name: string, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, parent, async (span) => {
    try {
      return await work();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Wraps effects so each call is a span in its incident's trace. `traceOf`
 * gives an incident's trace context (ROOT_CONTEXT when it has none).
 */
export function tracedEffects(inner: IncidentEffects, traceOf: (incidentId: string) => Context): IncidentEffects {
  return {
    runCommands: (commands: readonly Command[], signal: AbortSignal): Promise<CommandResult[]> => {
      const first = commands[0];
      if (first === undefined) return inner.runCommands(commands, signal);
      const kinds = [...new Set(commands.map((c) => `${c.kind} ${c.action}`))].join(', ');
      return inSpan(
        traceOf(first.incidentId),
        `commands ${kinds}`,
        { 'firebreak.incident.id': first.incidentId, 'firebreak.commands': commands.length, 'firebreak.hosts': [...new Set(commands.flatMap((c) => ('host' in c ? [c.host] : [])))].join(',') },
        () => inner.runCommands(commands, signal),
      );
    },
    waitForHeartbeat: (wanted: HeartbeatWanted, signal: AbortSignal): Promise<number> =>
      wanted.incidentId === undefined
        ? inner.waitForHeartbeat(wanted, signal)
        : inSpan(
            traceOf(wanted.incidentId),
            'wait for heartbeat',
            { 'firebreak.incident.id': wanted.incidentId, 'firebreak.host': wanted.host, 'firebreak.server': wanted.server ?? '' },
            () => inner.waitForHeartbeat(wanted, signal),
          ),
    ...(inner.watchHeartbeats !== undefined && { watchHeartbeats: inner.watchHeartbeats.bind(inner) }),
    claimHosts: (incidentId: string, hosts: readonly string[]): Promise<ClaimOutcome> =>
      inSpan(traceOf(incidentId), 'claim hosts', { 'firebreak.incident.id': incidentId, 'firebreak.hosts': hosts.join(',') }, () =>
        inner.claimHosts(incidentId, hosts),
      ),
    releaseHosts: (incidentId: string, hosts: readonly string[]): Promise<void> =>
      inSpan(traceOf(incidentId), 'release hosts', { 'firebreak.incident.id': incidentId, 'firebreak.hosts': hosts.join(',') }, () =>
        inner.releaseHosts(incidentId, hosts),
      ),
    publishProgress: (progress: IncidentProgress): void => context.with(traceOf(progress.incidentId), () => inner.publishProgress(progress)),
  };
}
