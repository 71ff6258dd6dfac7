/**
 * Creates Firebreak's four JetStream streams, or brings them up to date, as
 * the one NATS user allowed to (`admin` in deploy/nats/nats.conf), then exits.
 * The services only check that the streams exist, so a compromised service
 * cannot shorten a stream's retention or point it at other subjects. It also
 * deletes durables an older version left that the current one cannot work
 * beside (deploy/README.md, "Upgrading").
 *
 *   NATS_URL=nats://nats:4222 NATS_USER=admin NATS_PASSWORD=… \
 *     node --import tsx deploy/bin/ensure-streams.ts
 */
import { NatsError, type ConsumerInfo, type JetStreamManager, type StreamConfig } from 'nats';
import { RETIRED_EXECUTOR_DURABLE } from '@firebreak/executor/durables';
import { connectBus, createLogger, ensureStreams, loadConfig, redactConfig, runMain, streamConfig, streams, type Logger, type StreamName } from '@firebreak/shared';
import { ensureStreamsConfigSchema } from './ensure-streams.config.ts';

/**
 * Durables an older version left behind that get in the current one's way.
 * Executors before the per-kind durables shared one, "executor", for all of
 * fb.cmd.>; its filter overlaps every executor-<kind> and a work-queue stream
 * refuses overlapping filters, so the new executors cannot start beside it.
 * Deleting it loses nothing: unacked commands stay in the work queue (which
 * drops a message only when it is acked) and go to the new durables; one an
 * old executor still has in hand runs again there, which the idempotency
 * records make safe (a recorded result is replayed, a pending one re-run).
 */
const retiredConsumers = [{ stream: streams.commands, durable: RETIRED_EXECUTOR_DURABLE, replacedBy: 'one durable per command kind, executor-<kind>' }] as const;

/** JetStream's "consumer not found". */
const CONSUMER_NOT_FOUND = 10014;

await runMain(async () => {
  const config = loadConfig(ensureStreamsConfigSchema);
  const logger = createLogger('ensure-streams', { level: config.LOG_LEVEL, instance: config.SERVICE_INSTANCE_ID });
  logger.info({ config: redactConfig(config) }, 'starting');
  const bus = await connectBus({
    url: config.NATS_URL,
    name: `ensure-streams-${config.SERVICE_INSTANCE_ID}`,
    user: config.NATS_USER,
    password: config.NATS_PASSWORD,
    logger,
  });
  try {
    const infos = await ensureStreams(bus.jsm, { replicas: config.FB_STREAM_REPLICAS });
    // ensureStreams only checks subjects and retention where it may not manage streams; this job must have applied everything.
    const who = config.NATS_USER === undefined ? 'this connection' : `NATS user "${config.NATS_USER}"`;
    for (const info of infos) {
      const differences = tunedDifferences(info.config, streamConfig(info.config.name as StreamName, { replicas: config.FB_STREAM_REPLICAS }));
      if (differences.length > 0) {
        throw new Error(
          `stream ${info.config.name} differs from Firebreak's configuration (${differences.join(', ')}) and ${who} may not manage streams: run this job as the user that does (admin in deploy/nats/nats.conf)`,
        );
      }
      logger.info({ stream: info.config.name, subjects: info.config.subjects, replicas: info.config.num_replicas, messages: info.state.messages }, 'stream ready');
    }
    await retireConsumers(bus.jsm, logger, who);
  } finally {
    await bus.close();
  }
});

function tunedDifferences(have: StreamConfig, want: Partial<StreamConfig>): string[] {
  const fields = ['max_age', 'duplicate_window', 'num_replicas', 'storage', 'discard'] as const;
  return fields.filter((field) => want[field] !== undefined && have[field] !== want[field]).map((field) => `${field} ${String(have[field])}, wanted ${String(want[field])}`);
}

async function retireConsumers(jsm: JetStreamManager, logger: Logger, who: string): Promise<void> {
  for (const { stream, durable, replacedBy } of retiredConsumers) {
    let info: ConsumerInfo;
    try {
      info = await jsm.consumers.info(stream, durable);
      await jsm.consumers.delete(stream, durable);
    } catch (err) {
      if (err instanceof NatsError && err.api_error?.err_code === CONSUMER_NOT_FOUND) continue;
      if (err instanceof NatsError && err.isPermissionError()) {
        throw new Error(`${who} may not look up or delete the durable ${durable} on ${stream} that older versions left: run this job as the user that manages streams (admin in deploy/nats/nats.conf)`, {
          cause: err,
        });
      }
      throw err;
    }
    logger.warn(
      {
        stream,
        durable,
        filter: info.config.filter_subject,
        replacedBy,
        // Still in the old durable's hands: these come back through the new durables.
        inHand: info.num_ack_pending,
        // Pull requests open on it: an old process was still consuming.
        waitingPulls: info.num_waiting,
      },
      'deleted a durable an older version left',
    );
  }
}
