import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import {
  Assignment,
  BootCommand,
  Command,
  CommandResult,
  DeadLetter,
  DomainFailed,
  DrillStart,
  DrillStop,
  FailureDomain,
  Heartbeat,
  Host,
  HostFailed,
  HostRecovered,
  HostSuspect,
  IncidentProgress,
  Inventory,
  NetCommand,
  PowerCommand,
  Server,
  StorageCommand,
  VmCommand,
} from '../src/schemas/index.ts';
import { describeIssues, formatPath } from '../src/schemas/validation.ts';
import * as samples from '../src/testing/samples.ts';

const accepted: [string, z.ZodType, () => unknown][] = [
  ['Inventory', Inventory, samples.sampleInventory],
  ['Host', Host, samples.sampleHost],
  ['Server', Server, samples.sampleServer],
  ['Assignment', Assignment, samples.sampleAssignment],
  ['FailureDomain', FailureDomain, samples.sampleFailureDomain],
  ['Heartbeat', Heartbeat, samples.sampleHeartbeat],
  ['HostFailed', HostFailed, samples.sampleHostFailed],
  ['HostSuspect', HostSuspect, samples.sampleHostSuspect],
  ['HostRecovered', HostRecovered, samples.sampleHostRecovered],
  ['DomainFailed', DomainFailed, samples.sampleDomainFailed],
  ['DrillStart', DrillStart, samples.sampleDrillStart],
  ['DrillStop', DrillStop, samples.sampleDrillStop],
  ['PowerCommand', PowerCommand, () => samples.sampleCommand('power')],
  ['NetCommand', NetCommand, () => samples.sampleCommand('net')],
  ['StorageCommand', StorageCommand, () => samples.sampleCommand('storage')],
  ['BootCommand', BootCommand, () => samples.sampleCommand('boot')],
  ['VmCommand', VmCommand, () => samples.sampleCommand('vm')],
  ['Command (vm)', Command, () => samples.sampleCommand('vm')],
  ['CommandResult', CommandResult, samples.sampleCommandResult],
  ['IncidentProgress', IncidentProgress, samples.sampleIncidentProgress],
  ['DeadLetter', DeadLetter, samples.sampleDeadLetter],
];

for (const [name, schema, sample] of accepted) {
  test(`schemas - ${name} accepts its sample unchanged`, () => {
    const result = schema.safeParse(sample());
    assert.ok(result.success, result.success ? '' : describeIssues(result.error));
    // Samples spell out every default, so parsing is the identity: tests can compare against them.
    assert.deepEqual(result.data, sample());
  });
}

interface Rejection {
  name: string;
  schema: z.ZodType;
  input: unknown;
  /** The issue's field path, as formatPath spells it. */
  path: string;
  message?: RegExp;
}

const rejected: Rejection[] = [
  {
    name: 'a boot command with a bad MAC',
    schema: Command,
    input: { ...samples.sampleCommand('boot'), mac: '52:54:00:zz:01:03' },
    path: 'mac',
    message: /not a MAC address/,
  },
  {
    name: "a power command with the net action 'access'",
    schema: Command,
    input: { ...samples.sampleCommand('power'), action: 'access' },
    path: 'action',
    message: /"on"\|"off"\|"pxe-once"\|"status"/,
  },
  {
    name: 'a net command with an unknown action',
    schema: Command,
    input: { ...samples.sampleCommand('net'), action: 'flap' },
    path: 'action',
  },
  {
    name: 'a command of an unknown kind',
    schema: Command,
    input: { ...samples.sampleCommand('power'), kind: 'firmware' },
    path: 'kind',
  },
  {
    name: 'a negative fencing token',
    schema: Command,
    input: { ...samples.sampleCommand('net'), fencingToken: -1 },
    path: 'fencingToken',
  },
  {
    name: 'a command without commandId',
    schema: Command,
    input: { ...samples.sampleCommand('storage'), commandId: undefined },
    path: 'commandId',
  },
  {
    name: 'a net access command on VLAN 4095',
    schema: Command,
    input: { ...samples.sampleCommand('net'), vlan: 4095 },
    path: 'vlan',
    message: /VLAN ids run 1-4094/,
  },
  {
    name: 'a storage grant to a mistyped WWPN',
    schema: Command,
    input: { ...samples.sampleCommand('storage'), initiator: '50:01:43:80:00:01:00' },
    path: 'initiator',
    message: /not a WWPN .* or an iSCSI IQN/,
  },
  {
    name: 'a VM spec with a bad MAC',
    schema: Command,
    input: {
      ...samples.sampleCommand('vm'),
      spec: { cpus: 2, memoryGiB: 4, image: 'rhel9-x86', vlans: [100], mac: 'aa-bb' },
    },
    path: 'spec.mac',
  },
  {
    name: 'a command result with zero attempts',
    schema: CommandResult,
    input: { ...samples.sampleCommandResult(), attempts: 0 },
    path: 'attempts',
  },
  {
    name: 'a domain failure with no hosts',
    schema: DomainFailed,
    input: { ...samples.sampleDomainFailed(), hosts: [] },
    path: 'hosts',
    message: /names at least one host/,
  },
  {
    name: "a heartbeat from a host id containing '.'",
    schema: Heartbeat,
    input: { ...samples.sampleHeartbeat(), host: 'r2.h1' },
    path: 'host',
    message: /letters, digits/,
  },
  {
    name: 'a host failure with an unknown cause',
    schema: HostFailed,
    input: { ...samples.sampleHostFailed(), cause: 'gremlins' },
    path: 'cause',
  },
  {
    name: 'a suspect verdict with an unknown BMC power state',
    schema: HostSuspect,
    input: { ...samples.sampleHostSuspect(), evidence: { bmc: { reachable: true, powerState: 'maybe' } } },
    path: 'evidence.bmc.powerState',
  },
  {
    name: 'a recovery with a negative downtime',
    schema: HostRecovered,
    input: { ...samples.sampleHostRecovered(), downForMs: -5 },
    path: 'downForMs',
  },
  {
    name: 'a drill with a zero maximum duration',
    schema: DrillStart,
    input: { ...samples.sampleDrillStart(), maxDurationSeconds: 0 },
    path: 'maxDurationSeconds',
  },
  {
    name: 'a drill stop without requester',
    schema: DrillStop,
    input: { ...samples.sampleDrillStop(), requestedBy: '' },
    path: 'requestedBy',
  },
  {
    name: 'progress in an unknown phase',
    schema: IncidentProgress,
    input: { ...samples.sampleIncidentProgress(), phase: 'burning' },
    path: 'phase',
  },
  {
    name: 'a dead letter without a reason',
    schema: DeadLetter,
    input: { ...samples.sampleDeadLetter(), reason: undefined },
    path: 'reason',
  },
  {
    name: 'a failure domain of an unknown kind',
    schema: FailureDomain,
    input: { ...samples.sampleFailureDomain(), kind: 'row' },
    path: 'kind',
  },
  {
    name: 'a BMC credentialsRef that is a literal password',
    schema: Host,
    input: { ...samples.sampleHost(), bmc: { ...samples.sampleHost().bmc, credentialsRef: 'hunter2' } },
    path: 'bmc.credentialsRef',
    message: /never the secret itself/,
  },
  {
    name: 'a vm assignment without its hypervisor',
    schema: Assignment,
    input: { server: 'web1', mode: 'vm' },
    path: 'hypervisor',
  },
  {
    name: 'a server with no VLAN',
    schema: Server,
    input: { ...samples.sampleServer(), vlans: [] },
    path: 'vlans',
    message: /at least one VLAN/,
  },
  {
    name: 'an inventory of another version',
    schema: Inventory,
    input: { ...samples.sampleInventory(), version: 2 },
    path: 'version',
  },
];

for (const { name, schema, input, path, message } of rejected) {
  test(`schemas - rejects ${name} at ${path}`, () => {
    const result = schema.safeParse(input);
    assert.equal(result.success, false, 'expected the input to be rejected');
    const issues = result.error?.issues ?? [];
    assert.deepEqual(
      issues.map((issue) => formatPath(issue.path)),
      [path],
      `issues: ${result.error === undefined ? '' : describeIssues(result.error)}`,
    );
    const described = describeIssues(result.error as z.ZodError);
    assert.ok(described.startsWith(`${path}: `), described);
    if (message !== undefined) assert.match(described, message);
  });
}

test('schemas - MACs and WWPNs are normalised to lower case, IQNs kept as written', () => {
  const boot = BootCommand.parse({ ...samples.sampleCommand('boot'), mac: '52:54:00:AA:01:03' });
  assert.equal(boot.mac, '52:54:00:aa:01:03');
  const grant = StorageCommand.parse({ ...samples.sampleCommand('storage'), initiator: '50:01:43:80:00:01:AB:03' });
  assert.equal(grant.action === 'grant' && grant.initiator, '50:01:43:80:00:01:ab:03');
  const iqn = 'iqn.2025-01.com.Example:R1-h4';
  const byIqn = StorageCommand.parse({ ...samples.sampleCommand('storage'), initiator: iqn });
  assert.equal(byIqn.action === 'grant' && byIqn.initiator, iqn);
});

test('schemas - samples are fresh objects', () => {
  const a = samples.sampleInventory();
  a.hosts.pop();
  assert.equal(samples.sampleInventory().hosts.length, a.hosts.length + 1);
});
