/**
 * The four JetStream streams, created or brought up to date idempotently so
 * every service can call `ensureStreams` at start-up, even several at once.
 */
import { DiscardPolicy, NatsError, RetentionPolicy, StorageType, nanos, type JetStreamManager, type StreamConfig, type StreamInfo } from 'nats';
import { streamSubjects, streams, type StreamName } from '../subjects.ts';

/** How long `Nats-Msg-Id` dedupe remembers an id: covers a publisher's retries across a reconnect. */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;

const HOUR_MS = 60 * 60_000;
const DAY_MS = 24 * HOUR_MS;

interface StreamPolicy {
  retention: RetentionPolicy;
  maxAgeMs: number;
}

const policies: Record<StreamName, StreamPolicy> = {
  // Incident history for dashboards and replay after a planner restart.
  [streams.events]: { retention: RetentionPolicy.Limits, maxAgeMs: 7 * DAY_MS },
  // Each command is taken by exactly one executor and removed once acked; a day
  // bounds anything no executor could take (commands carry shorter deadlines anyway).
  [streams.commands]: { retention: RetentionPolicy.Workqueue, maxAgeMs: DAY_MS },
  [streams.results]: { retention: RetentionPolicy.Limits, maxAgeMs: 7 * DAY_MS },
  // Kept long enough for a human to look after a weekend or a holiday.
  [streams.deadLetters]: { retention: RetentionPolicy.Limits, maxAgeMs: 30 * DAY_MS },
};

export interface EnsureStreamsOptions {
  /** Copies per stream in a NATS cluster; 1 on a single server. */
  replicas?: number;
}

export function streamConfig(name: StreamName, options: EnsureStreamsOptions = {}): Partial<StreamConfig> & { name: StreamName } {
  const policy = policies[name];
  return {
    name,
    subjects: [...streamSubjects[name]],
    retention: policy.retention,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(policy.maxAgeMs),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: options.replicas ?? 1,
  };
}

/** JetStream's "stream name already in use with a different configuration". */
const STREAM_NAME_IN_USE = 10058;

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: StreamName }): Promise<StreamInfo> {
  try {
    // Creating with an identical config is a no-op on the server, which makes concurrent start-ups safe.
    return await jsm.streams.add(config);
  } catch (err) {
    if (!(err instanceof NatsError) || err.api_error?.err_code !== STREAM_NAME_IN_USE) throw err;
  }
  try {
    return await jsm.streams.update(config.name, config);
  } catch (err) {
    throw new Error(`stream ${config.name} exists with a configuration that cannot be updated to Firebreak's: ${String(err)}`, {
      cause: err,
    });
  }
}

export async function ensureStreams(jsm: JetStreamManager, options: EnsureStreamsOptions = {}): Promise<StreamInfo[]> {
  return Promise.all(Object.values(streams).map((name) => ensureStream(jsm, streamConfig(name, options))));
}
