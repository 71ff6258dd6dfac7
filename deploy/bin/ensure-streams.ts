/**
 * Creates Firebreak's four JetStream streams, or brings them up to date, as
 * the one NATS user allowed to (`admin` in deploy/nats/nats.conf), then exits.
 * The services only check that the streams exist, so a compromised service
 * cannot shorten a stream's retention or point it at other subjects.
 *
 *   NATS_URL=nats://nats:4222 NATS_USER=admin NATS_PASSWORD=… \
 *     node --import tsx deploy/bin/ensure-streams.ts
 */
import type { StreamConfig } from 'nats';
import { connectBus, createLogger, ensureStreams, loadConfig, redactConfig, runMain, streamConfig, type StreamName } from '@firebreak/shared';
import { ensureStreamsConfigSchema } from './ensure-streams.config.ts';

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
  } finally {
    await bus.close();
  }
});

function tunedDifferences(have: StreamConfig, want: Partial<StreamConfig>): string[] {
  const fields = ['max_age', 'duplicate_window', 'num_replicas', 'storage', 'discard'] as const;
  return fields.filter((field) => want[field] !== undefined && have[field] !== want[field]).map((field) => `${field} ${String(have[field])}, wanted ${String(want[field])}`);
}
