/**
 * Every NATS subject, stream and header name Firebreak uses. No other file
 * spells one: services call these builders so a rename happens in one place.
 */

export const streams = {
  events: 'FB_EVENTS',
  commands: 'FB_CMDS',
  results: 'FB_RESULTS',
  deadLetters: 'FB_DLQ',
  /** The highest fencing token each site's planner lease has handed out: a floor that survives the loss of Redis's data. */
  fencing: 'FB_FENCING',
} as const;
export type StreamName = (typeof streams)[keyof typeof streams];

export const commandKinds = ['power', 'net', 'storage', 'boot', 'vm'] as const;
export type CommandKind = (typeof commandKinds)[number];

export const hostVerdicts = ['failed', 'suspect', 'recovered'] as const;
export type HostVerdict = (typeof hostVerdicts)[number];

const PREFIX = 'fb';

/** NATS forbids '.', '*', '>' and whitespace inside a token. */
const TOKEN = /^[^.*>\s]+$/;

export function assertToken(value: string, what: string): string {
  if (!TOKEN.test(value)) {
    throw new Error(`${what} "${value}" cannot be used in a NATS subject: it must not be empty or contain '.', '*', '>' or spaces`);
  }
  return value;
}

export const subjects = {
  heartbeat: (site: string, rack: string, host: string): string =>
    `${PREFIX}.hb.${assertToken(site, 'site')}.${assertToken(rack, 'rack')}.${assertToken(host, 'host')}`,
  heartbeatAll: `${PREFIX}.hb.>`,

  hostEvent: (verdict: HostVerdict): string => `${PREFIX}.evt.host.${verdict}`,
  domainFailed: `${PREFIX}.evt.domain.failed`,
  eventsAll: `${PREFIX}.evt.>`,

  drillStart: `${PREFIX}.drill.start`,
  drillStop: `${PREFIX}.drill.stop`,
  drillAll: `${PREFIX}.drill.>`,

  command: (kind: CommandKind): string => `${PREFIX}.cmd.${kind}`,
  commandsAll: `${PREFIX}.cmd.>`,

  result: (incidentId: string, commandId: string): string =>
    `${PREFIX}.res.${assertToken(incidentId, 'incidentId')}.${assertToken(commandId, 'commandId')}`,
  resultsOf: (incidentId: string): string => `${PREFIX}.res.${assertToken(incidentId, 'incidentId')}.*`,
  resultsAll: `${PREFIX}.res.>`,

  incidentProgress: (incidentId: string, phase: string): string =>
    `${PREFIX}.incident.${assertToken(incidentId, 'incidentId')}.${assertToken(phase, 'phase')}`,
  incidentAll: `${PREFIX}.incident.>`,

  /** What-if readiness: published per site (core NATS), and checked on demand by request/reply. */
  readiness: (site: string): string => `${PREFIX}.readiness.${assertToken(site, 'site')}`,
  readinessCheck: `${PREFIX}.readiness-check`,

  deadLetter: (originalSubject: string): string => `${PREFIX}.dlq.${originalSubject}`,
  deadLettersAll: `${PREFIX}.dlq.>`,

  plannerTokenFloor: (site: string): string => `${PREFIX}.fencing.planner.${assertToken(site, 'site')}`,
  fencingAll: `${PREFIX}.fencing.>`,
} as const;

/** Which subjects each JetStream stream captures. */
export const streamSubjects: Record<StreamName, string[]> = {
  [streams.events]: [subjects.eventsAll, subjects.drillAll, subjects.incidentAll],
  [streams.commands]: [subjects.commandsAll],
  [streams.results]: [subjects.resultsAll],
  [streams.deadLetters]: [subjects.deadLettersAll],
  [streams.fencing]: [subjects.fencingAll],
};

export const headers = {
  msgId: 'Nats-Msg-Id',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Why a message was dead-lettered; also inside the envelope body. */
  deadLetterReason: 'Fb-Dlq-Reason',
  /** On an error reply to a request: the reason (one line; the body has it in full) and 400 (bad request) or 500 (the responder failed), as NATS services do. */
  serviceError: 'Nats-Service-Error',
  serviceErrorCode: 'Nats-Service-Error-Code',
} as const;
