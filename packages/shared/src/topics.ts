/**
 * A topic pairs a subject (or subject pattern) with the schema of what flows
 * on it, so the bus validates at the edge and callers get parsed types.
 */
import type { z } from 'zod';
import {
  Command,
  CommandResult,
  DeadLetter,
  DomainFailed,
  DrillStart,
  DrillStop,
  Heartbeat,
  HostFailed,
  HostRecovered,
  HostSuspect,
  IncidentProgress,
  ReadinessCheck,
  ReadinessReport,
  commandSchemas,
} from './schemas/index.ts';
import { streams, subjects, type CommandKind, type StreamName } from './subjects.ts';

export interface Topic<S extends z.ZodType = z.ZodType> {
  readonly subject: string;
  readonly schema: S;
  /** The JetStream stream that stores it; absent for core-NATS subjects. */
  readonly stream?: StreamName;
}

const topic = <S extends z.ZodType>(subject: string, schema: S, stream?: StreamName): Topic<S> =>
  stream === undefined ? { subject, schema } : { subject, schema, stream };

type CommandTopics = { readonly [K in CommandKind]: Topic<(typeof commandSchemas)[K]> };
const commandTopics: CommandTopics = {
  power: topic(subjects.command('power'), commandSchemas.power, streams.commands),
  net: topic(subjects.command('net'), commandSchemas.net, streams.commands),
  storage: topic(subjects.command('storage'), commandSchemas.storage, streams.commands),
  boot: topic(subjects.command('boot'), commandSchemas.boot, streams.commands),
  vm: topic(subjects.command('vm'), commandSchemas.vm, streams.commands),
};

export const topics = {
  heartbeat: (site: string, rack: string, host: string) => topic(subjects.heartbeat(site, rack, host), Heartbeat),
  heartbeats: topic(subjects.heartbeatAll, Heartbeat),

  hostFailed: topic(subjects.hostEvent('failed'), HostFailed, streams.events),
  hostSuspect: topic(subjects.hostEvent('suspect'), HostSuspect, streams.events),
  hostRecovered: topic(subjects.hostEvent('recovered'), HostRecovered, streams.events),
  domainFailed: topic(subjects.domainFailed, DomainFailed, streams.events),
  drillStart: topic(subjects.drillStart, DrillStart, streams.events),
  drillStop: topic(subjects.drillStop, DrillStop, streams.events),

  command: <K extends CommandKind>(kind: K): CommandTopics[K] => commandTopics[kind],
  commands: topic(subjects.commandsAll, Command, streams.commands),

  result: (incidentId: string, commandId: string) =>
    topic(subjects.result(incidentId, commandId), CommandResult, streams.results),
  resultsOf: (incidentId: string) => topic(subjects.resultsOf(incidentId), CommandResult, streams.results),
  results: topic(subjects.resultsAll, CommandResult, streams.results),

  incidentProgress: (incidentId: string, phase: string) =>
    topic(subjects.incidentProgress(incidentId, phase), IncidentProgress, streams.events),
  incidents: topic(subjects.incidentAll, IncidentProgress, streams.events),

  readiness: (site: string) => topic(subjects.readiness(site), ReadinessReport),
  readinessCheck: topic(subjects.readinessCheck, ReadinessCheck),

  /** Where a message that failed on `originalSubject` is dead-lettered. */
  deadLetter: (originalSubject: string) => topic(subjects.deadLetter(originalSubject), DeadLetter, streams.deadLetters),
  deadLetters: topic(subjects.deadLettersAll, DeadLetter, streams.deadLetters),
} as const;

export type MessageOf<T extends Topic> = z.output<T['schema']>;
export type MessageInput<T extends Topic> = z.input<T['schema']>;
