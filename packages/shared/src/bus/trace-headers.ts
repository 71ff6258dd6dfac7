/**
 * OpenTelemetry carrier accessors over NATS message headers, so W3C
 * `traceparent` / `tracestate` ride on every message.
 */
import type { TextMapGetter, TextMapSetter } from '@opentelemetry/api';
import { Match, type MsgHdrs } from 'nats';

export const natsHeaderGetter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => carrier?.keys() ?? [],
  // Case-insensitive: a peer may have canonicalised `traceparent` to `Traceparent`.
  get: (carrier, key) => (carrier?.has(key, Match.IgnoreCase) ? carrier.get(key, Match.IgnoreCase) : undefined),
};

export const natsHeaderSetter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
};
