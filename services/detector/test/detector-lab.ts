/**
 * The world a detector integration test runs in: nats-server with
 * Firebreak's streams, a lab of the given size heartbeating on it, and every
 * verdict published on fb.evt.> recorded with when it arrived. Started by
 * the first call of the function `useDetectorLab` returns (in a `before`
 * hook), stopped after the file's tests.
 */
import { readFile } from 'node:fs/promises';
import { after } from 'node:test';
import { connect, StringCodec, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { connectBus, ensureStreams, subjects, type Bus } from '@firebreak/shared';
import { startNats, type TestServer } from '@firebreak/shared/testing';
import { startLab, type Lab, type LabOptions } from '@firebreak/lab';
import type { DetectorOptions } from '../src/index.ts';

export interface Verdict {
  subject: string;
  at: number;
  body: { host?: string; hosts?: string[]; cause?: string; causes?: string[]; domain?: { kind: string; id: string }; evidence?: Record<string, unknown> };
}

export interface DetectorLab {
  readonly lab: Lab;
  readonly bus: Bus;
  readonly verdicts: Verdict[];
  /** Detector options for this lab and bus, the switches' trap communities included; a test adds its timings. */
  readonly base: Pick<DetectorOptions, 'inventory' | 'bus' | 'logger' | 'detectorId' | 'trapCommunities'>;
  /** The rack's hosts that are running now, by id. */
  running(rack: string): string[];
  /** Runs `stop` after the file's tests, before the lab and NATS go: for the detectors a test starts. */
  stopFirst(stop: () => Promise<void>): void;
}

export function useDetectorLab(options: { name: string; size: LabOptions['size']; heartbeatPeriodMs: number }): () => Promise<DetectorLab> {
  let nats: TestServer | undefined;
  let bus: Bus | undefined;
  let nc: NatsConnection | undefined;
  let world: DetectorLab | undefined;
  let starting: Promise<DetectorLab> | undefined;
  const stoppers: (() => Promise<void>)[] = [];
  const start = async (): Promise<DetectorLab> => {
    nats = await startNats();
    bus = await connectBus({ url: nats.url, name: options.name });
    await ensureStreams(bus.jsm);
    const lab = await startLab({ natsUrl: nats.url, size: options.size, powerDelayMs: 100, heartbeatPeriodMs: options.heartbeatPeriodMs });
    const verdicts: Verdict[] = [];
    nc = await connect({ servers: nats.url });
    const sc = StringCodec();
    nc.subscribe(subjects.eventsAll, {
      callback: (_e, m) => verdicts.push({ subject: m.subject, at: Date.now(), body: JSON.parse(sc.decode(m.data)) as Verdict['body'] }),
    });
    const creds = JSON.parse(await readFile(lab.credentialsPath, 'utf8')) as Record<string, { community?: string }>;
    world = {
      lab,
      bus,
      verdicts,
      base: {
        inventory: lab.inventory,
        bus,
        logger: pino({ level: 'silent' }),
        detectorId: 'd1',
        trapCommunities: Object.values(creds).flatMap((c) => (c.community ? [c.community] : [])),
      },
      running: (rack) => [...lab.world.allHosts()].filter((h) => h.host.rack === rack && h.phase === 'running').map((h) => h.host.id).sort(),
      stopFirst: (stop) => void stoppers.push(stop),
    };
    return world;
  };
  after(async () => {
    for (const stop of stoppers) await stop();
    await nc?.close();
    await world?.lab.stop();
    await bus?.close();
    await nats?.stop();
  });
  return () => (starting ??= start());
}
