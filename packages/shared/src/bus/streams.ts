/**
 * The JetStream streams, created or brought up to date idempotently so
 * every service can call `ensureStreams` at start-up, even several at once.
 * Where the NATS user may not manage streams (deploy/nats/nats.conf gives that
 * to one user), it checks instead that they exist as Firebreak needs them.
 */
import { DiscardPolicy, NatsError, RetentionPolicy, StorageType, nanos, type JetStreamManager, type StreamConfig, type StreamInfo } from 'nats';
import { streamSubjects, streams, type StreamName } from '../subjects.ts';
import { jetStreamErrorCode, jetStreamErrors } from './jetstream-errors.ts';

/** How long `Nats-Msg-Id` dedupe remembers an id: covers a publisher's retries across a reconnect. */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;

const HOUR_MS = 60 * 60_000;
const DAY_MS = 24 * HOUR_MS;

interface StreamPolicy {
  retention: RetentionPolicy;
  /** 0 keeps messages for ever. */
  maxAgeMs: number;
  /** Only the newest message of each subject is kept. */
  lastPerSubject?: boolean;
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
  // One message per site, never aged out: a planner elected years later must still find it.
  [streams.fencing]: { retention: RetentionPolicy.Limits, maxAgeMs: 0, lastPerSubject: true },
};

type FirebreakStreamConfig = Partial<StreamConfig> & { name: StreamName };

export interface EnsureStreamsOptions {
  /** Copies per stream in a NATS cluster; 1 on a single server. */
  replicas?: number;
}

export function streamConfig(name: StreamName, options: EnsureStreamsOptions = {}): FirebreakStreamConfig {
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
    ...(policy.lastPerSubject === true && { max_msgs_per_subject: 1 }),
  };
}


/** The server refused the request itself: this NATS user may not manage streams (deploy/nats/nats.conf). */
function isPermissionDenied(err: unknown): boolean {
  return err instanceof NatsError && err.isPermissionError();
}

async function currentInfo(jsm: JetStreamManager, name: StreamName): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (jetStreamErrorCode(err) === jetStreamErrors.streamNotFound) return undefined;
    throw err;
  }
}

function sameSubjects(have: StreamConfig, want: FirebreakStreamConfig): boolean {
  return [...(have.subjects ?? [])].sort().join(' ') === [...(want.subjects ?? [])].sort().join(' ');
}

/** Replicas count only when the caller asked for a number: a service does not undo a cluster's replication. */
function upToDate(have: StreamConfig, want: FirebreakStreamConfig, compareReplicas: boolean): boolean {
  const fields = ['retention', 'storage', 'discard', 'max_age', 'duplicate_window', ...(compareReplicas ? (['num_replicas'] as const) : [])] as const;
  return sameSubjects(have, want) && fields.every((field) => have[field] === want[field]);
}

/**
 * For a user that may not change the stream: it must exist and keep what
 * correctness depends on (subjects, retention). Limits and replicas are the
 * stream owner's to tune.
 */
function usable(info: StreamInfo | undefined, config: FirebreakStreamConfig, denied: unknown): StreamInfo {
  const fix = "let the user that manages streams create or update them (deploy/README.md, 'Streams')";
  if (info === undefined) throw new Error(`stream ${config.name} does not exist and this NATS user may not create it: ${fix}`, { cause: denied });
  if (!sameSubjects(info.config, config) || info.config.retention !== config.retention) {
    throw new Error(
      `stream ${config.name} captures [${info.config.subjects?.join(', ') ?? ''}] with ${info.config.retention} retention, ` +
        `Firebreak needs [${config.subjects?.join(', ') ?? ''}] with ${config.retention}, and this NATS user may not change it: ${fix}`,
      { cause: denied },
    );
  }
  return info;
}

/**
 * Looks first, so a service whose user may only read stream info never asks
 * for more while the streams are as Firebreak needs them (a refused request
 * is logged by the server and the client as a permissions violation).
 */
async function ensureStream(jsm: JetStreamManager, config: FirebreakStreamConfig, compareReplicas: boolean): Promise<StreamInfo> {
  const existing = await currentInfo(jsm, config.name);
  if (existing !== undefined && upToDate(existing.config, config, compareReplicas)) return existing;
  if (existing === undefined) {
    try {
      // Another process creating the same config at once is a no-op on the server, which makes concurrent start-ups safe.
      return await jsm.streams.add(config);
    } catch (err) {
      if (isPermissionDenied(err)) return usable(undefined, config, err);
      if (jetStreamErrorCode(err) !== jetStreamErrors.streamNameInUse) throw err;
    }
  }
  try {
    return await jsm.streams.update(config.name, config);
  } catch (err) {
    if (isPermissionDenied(err)) return usable(existing ?? (await currentInfo(jsm, config.name)), config, err);
    throw new Error(`stream ${config.name} exists with a configuration that cannot be updated to Firebreak's: ${String(err)}`, {
      cause: err,
    });
  }
}

export async function ensureStreams(jsm: JetStreamManager, options: EnsureStreamsOptions = {}): Promise<StreamInfo[]> {
  return Promise.all(Object.values(streams).map((name) => ensureStream(jsm, streamConfig(name, options), options.replicas !== undefined)));
}
