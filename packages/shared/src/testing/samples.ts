import type { Command, CommandResult } from '../schemas/commands.schema.ts';
import type { FailureDomain } from '../schemas/common.schema.ts';
import type { DeadLetter } from '../schemas/dead-letter.schema.ts';
import type {
  DomainFailed,
  DrillStart,
  DrillStop,
  Heartbeat,
  HostFailed,
  HostRecovered,
  HostSuspect,
} from '../schemas/events.schema.ts';
import type { IncidentProgress } from '../schemas/incident.schema.ts';
import type { Assignment, Host, Inventory, Server } from '../schemas/inventory.schema.ts';
import { streams, subjects } from '../subjects.ts';

/*
 * Valid samples of every contract, each call a fresh object so a test may
 * mutate its copy. They describe one small site and agree with each other:
 * rack r2 burns, its production host r2-h1 ran server "db1", and the commands
 * move db1 onto spare r1-h3.
 */

const t0 = Date.UTC(2025, 0, 15, 3, 0, 0);

/** Site site1: racks r1 and r2, a production host in each, a spare, a repurposable host, one assignment. */
export function sampleInventory(): Inventory {
  return {
    version: 1,
    racks: [
      { id: 'r1', site: 'site1', pdu: 'pdu-r1', tor: 'tor-r1' },
      { id: 'r2', site: 'site1', pdu: 'pdu-r2', tor: 'tor-r2' },
    ],
    switches: [
      { id: 'tor-r1', fabric: 'lan1', driver: 'snmp', address: '127.0.0.1:1161', credentialsRef: 'env:TOR_R1_COMMUNITY' },
      { id: 'tor-r2', fabric: 'lan1', driver: 'snmp', address: '127.0.0.1:1162', credentialsRef: 'env:TOR_R2_COMMUNITY' },
    ],
    vlans: [
      { id: 100, name: 'web', fabric: 'lan1', drillVlan: 3100 },
      { id: 200, name: 'db', fabric: 'lan1', drillVlan: 3200 },
    ],
    storageArrays: [
      { id: 'array1', fabric: 'san1', driver: 'fc-zoning', address: 'https://127.0.0.1:8443', credentialsRef: 'file:/etc/firebreak/san.json#array1' },
    ],
    luns: [
      { id: 'lun-db1', array: 'array1', sizeGiB: 500 },
      { id: 'lun-web1', array: 'array1', sizeGiB: 50 },
    ],
    images: [
      { id: 'rhel9-x86', arch: 'x86_64', url: 'http://127.0.0.1:8080/images/rhel9-x86.ipxe', hypervisor: false },
      { id: 'rhel9-arm', arch: 'aarch64', url: 'http://127.0.0.1:8080/images/rhel9-arm.ipxe', hypervisor: false },
      { id: 'kvm-x86', arch: 'x86_64', url: 'http://127.0.0.1:8080/images/kvm-x86.ipxe', hypervisor: true },
    ],
    hosts: [
      sampleHost(),
      host('r1-h2', 'r1', 'aarch64', 'production', '52:54:00:00:01:02', 2, { cpus: 64, memoryGiB: 256 }),
      {
        ...host('r1-h3', 'r1', 'x86_64', 'spare', '52:54:00:00:01:03', 3, { cpus: 32, memoryGiB: 256 }),
        hba: { initiator: '50:01:43:80:00:01:00:03', fabric: 'san1' },
        hypervisorCapable: true,
      },
      {
        ...host('r1-h4', 'r1', 'x86_64', 'repurposable', '52:54:00:00:01:04', 4, { cpus: 16, memoryGiB: 64 }),
        hba: { initiator: 'iqn.2025-01.com.example:r1-h4', fabric: 'san1' },
        workload: { name: 'print-server', priority: 8 },
        hypervisorCapable: true,
      },
    ],
    servers: [
      sampleServer(),
      {
        id: 'web1',
        image: 'rhel9-arm',
        vlans: [100],
        luns: ['lun-web1'],
        cpus: 8,
        memoryGiB: 16,
        arch: 'aarch64',
        priority: 2,
        bareMetalOnly: false,
        rtoSeconds: 900,
      },
    ],
    assignments: [sampleAssignment()],
  };
}

/** r2-h1: the production x86_64 host in rack r2 that runs "db1". */
export function sampleHost(): Host {
  return {
    ...host('r2-h1', 'r2', 'x86_64', 'production', '52:54:00:00:02:01', 1, { cpus: 32, memoryGiB: 256 }),
    hba: { initiator: '50:01:43:80:00:02:00:01', fabric: 'san1' },
  };
}

function host(
  id: string,
  rack: 'r1' | 'r2',
  arch: Host['arch'],
  role: Host['role'],
  mac: string,
  port: number,
  size: Pick<Host, 'cpus' | 'memoryGiB'>,
): Host {
  return {
    id,
    site: 'site1',
    rack,
    pdu: `pdu-${rack}`,
    tor: `tor-${rack}`,
    arch,
    ...size,
    nics: [{ mac, switch: `tor-${rack}`, port }],
    bmc: {
      driver: 'redfish',
      address: `https://127.0.0.1:${rack === 'r1' ? 8000 + port : 8100 + port}`,
      systemId: '1',
      auth: 'auto',
      credentialsRef: `file:/etc/firebreak/bmc.json#${id}`,
      tls: { verify: true },
    },
    role,
    hypervisorCapable: false,
  };
}

/** db1: a critical bare-metal-only database server. */
export function sampleServer(): Server {
  return {
    id: 'db1',
    image: 'rhel9-x86',
    vlans: [200],
    luns: ['lun-db1'],
    cpus: 16,
    memoryGiB: 128,
    arch: 'x86_64',
    priority: 0,
    bareMetalOnly: true,
    antiAffinity: 'db',
    rtoSeconds: 600,
  };
}

export function sampleAssignment(): Assignment {
  return { server: 'db1', mode: 'bare-metal', host: 'r2-h1' };
}

export function sampleFailureDomain(): FailureDomain {
  return { kind: 'rack', id: 'r2', site: 'site1' };
}

export function sampleHeartbeat(): Heartbeat {
  return { host: 'r2-h1', site: 'site1', rack: 'r2', server: 'db1', seq: 41, sentAt: t0 - 5_000 };
}

export function sampleHostFailed(): HostFailed {
  return {
    host: 'r2-h1',
    site: 'site1',
    rack: 'r2',
    epoch: 1,
    detectedAt: t0,
    detector: 'detector-1',
    cause: 'bmc-unreachable',
    evidence: {
      lastHeartbeatAt: t0 - 5_000,
      missedHeartbeats: 5,
      phi: 9.2,
      bmc: { reachable: false, error: 'connect ECONNREFUSED 127.0.0.1:8101' },
    },
  };
}

/** Isolated, not dead: no heartbeats, but the BMC says on and healthy. */
export function sampleHostSuspect(): HostSuspect {
  return {
    host: 'r1-h2',
    site: 'site1',
    rack: 'r1',
    epoch: 1,
    detectedAt: t0,
    detector: 'detector-1',
    evidence: {
      lastHeartbeatAt: t0 - 5_000,
      missedHeartbeats: 5,
      bmc: { reachable: true, powerState: 'on', health: 'OK' },
      link: { switch: 'tor-r1', port: 2, status: 'down' },
    },
  };
}

export function sampleHostRecovered(): HostRecovered {
  return {
    host: 'r2-h1',
    site: 'site1',
    rack: 'r2',
    epoch: 1,
    detectedAt: t0 + 3_600_000,
    detector: 'detector-1',
    server: null,
    downForMs: 3_600_000,
  };
}

export function sampleDomainFailed(): DomainFailed {
  return {
    domain: sampleFailureDomain(),
    hosts: ['r2-h1'],
    causes: ['bmc-unreachable', 'pdu-trap'],
    firstFailureAt: t0 - 2_000,
    detectedAt: t0,
    epoch: 1,
    detector: 'detector-1',
  };
}

export function sampleDrillStart(): DrillStart {
  return {
    drillId: 'drill-1',
    scope: { domain: sampleFailureDomain() },
    requestedBy: 'operator@example.com',
    requestedAt: t0,
    maxDurationSeconds: 3600,
  };
}

export function sampleDrillStop(): DrillStop {
  return { drillId: 'drill-1', requestedBy: 'operator@example.com', requestedAt: t0 + 600_000, reason: 'done' };
}

const commandBase = {
  commandId: 'cmd-1',
  incidentId: 'inc-1',
  site: 'site1',
  fencingToken: 7,
  issuer: 'planner-a',
  issuedAt: t0 + 10_000,
  deadline: t0 + 70_000,
  attempt: 1,
  drill: false,
};

const commandsByKind = {
  power: () => ({ ...commandBase, kind: 'power', host: 'r1-h3', action: 'on' }),
  net: () => ({ ...commandBase, kind: 'net', host: 'r1-h3', switch: 'tor-r1', port: 3, action: 'access', vlan: 200 }),
  storage: () => ({
    ...commandBase,
    kind: 'storage',
    array: 'array1',
    action: 'grant',
    lun: 'lun-db1',
    initiator: '50:01:43:80:00:01:00:03',
    host: 'r1-h3',
  }),
  boot: () => ({
    ...commandBase,
    kind: 'boot',
    host: 'r1-h3',
    mac: '52:54:00:00:01:03',
    action: 'configure',
    image: 'rhel9-x86',
    server: 'db1',
  }),
  vm: () => ({
    ...commandBase,
    kind: 'vm',
    hypervisor: 'r1-h4',
    vm: 'vm-web1',
    action: 'define',
    spec: { cpus: 8, memoryGiB: 16, image: 'rhel9-x86', vlans: [100], luns: ['lun-web1'], mac: '52:54:00:aa:00:01' },
  }),
} satisfies { [K in Command['kind']]: () => Extract<Command, { kind: K }> };

/** A typical command of each kind: the steps that move db1 onto spare r1-h3 (and a VM define for vm). */
export function sampleCommand<K extends Command['kind']>(kind: K): Extract<Command, { kind: K }> {
  return commandsByKind[kind]() as Extract<Command, { kind: K }>;
}

export function sampleCommandResult(): CommandResult {
  return {
    commandId: 'cmd-1',
    incidentId: 'inc-1',
    kind: 'power',
    outcome: 'succeeded',
    attempts: 1,
    startedAt: t0 + 10_100,
    finishedAt: t0 + 14_000,
    executor: 'executor-1',
    replayed: false,
    observed: { powerState: 'on' },
  };
}

export function sampleIncidentProgress(): IncidentProgress {
  return {
    incidentId: 'inc-1',
    site: 'site1',
    phase: 'recovering',
    trigger: 'event',
    openedAt: t0,
    at: t0 + 12_000,
    hosts: ['r2-h1'],
    servers: [{ server: 'db1', host: 'r1-h3', mode: 'bare-metal', step: 'boot', percent: 60 }],
  };
}

export function sampleDeadLetter(): DeadLetter {
  return {
    originalSubject: subjects.command('power'),
    reason: 'failed schema validation',
    issues: [{ path: 'fencingToken', message: 'Too small: expected number to be >=0' }],
    payloadBase64: Buffer.from('{"kind":"power","fencingToken":-1}').toString('base64'),
    originalMsgId: 'cmd-9',
    stream: streams.commands,
    consumer: 'executor',
    deliveries: 1,
    deadLetteredAt: t0,
  };
}
