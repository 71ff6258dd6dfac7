/**
 * The compose file, the Kubernetes manifests and the Dockerfile cannot run
 * here (no Docker engine, no cluster), so this checks what would break them:
 * every process is started as `firebreak up` starts it, reads only variables
 * its config schema knows and gets every one it requires, authenticates as a
 * user nats.conf defines with that user's password, and the NATS server gets
 * every password variable its config references.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { bootConfigSchema } from '@firebreak/boot-service';
import { detectorConfigSchema } from '@firebreak/detector';
import { executorConfigSchema, executorDurable, executorNodeFlags, RETIRED_EXECUTOR_DURABLE } from '@firebreak/executor';
import { plannerConfigSchema } from '@firebreak/planner';
import { commandKinds, loadInventoryFile, streams, subjects } from '@firebreak/shared';
import { ensureStreamsConfigSchema } from '../bin/ensure-streams.config.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deploy = join(root, 'deploy');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

interface Process {
  schema: z.ZodObject;
  /** The OpenTelemetry SDK reads OTEL_* itself (packages/shared/src/telemetry/sdk.ts). */
  telemetry: boolean;
  /** Node flags before the loader, as `firebreak up` passes them. */
  nodeFlags?: readonly string[];
}

/** Keyed by the entry file each image command runs. */
const processes: Record<string, Process> = {
  'services/detector/src/main.ts': { schema: detectorConfigSchema, telemetry: true },
  'services/planner/src/main.ts': { schema: plannerConfigSchema, telemetry: true },
  'services/executor/src/main.ts': { schema: executorConfigSchema, telemetry: true, nodeFlags: executorNodeFlags },
  'services/boot/src/main.ts': { schema: bootConfigSchema, telemetry: false },
  'deploy/bin/ensure-streams.ts': { schema: ensureStreamsConfigSchema, telemetry: false },
};

/** user → the environment variable nats.conf reads its password from. */
function natsUsers(): Map<string, string> {
  const users = new Map<string, string>();
  for (const match of read('deploy/nats/nats.conf').matchAll(/^\s*user:\s*([\w-]+)\s*\n\s*password:\s*\$(\w+)/gm)) {
    users.set(match[1] as string, match[2] as string);
  }
  return users;
}

function entryOf(command: unknown, where: string): string {
  assert.ok(Array.isArray(command), `${where}: command must be a list`);
  const words = command as string[];
  const entry = words[words.length - 1];
  assert.ok(entry !== undefined && entry in processes, `${where}: unknown entry ${entry}`);
  const flags = (processes[entry] as Process).nodeFlags ?? [];
  assert.deepEqual(words, ['node', ...flags, '--import', 'tsx', entry], `${where}: start it as \`node ${[...flags, ''].join(' ')}--import tsx ${entry}\`, got ${JSON.stringify(command)}`);
  assert.ok(existsSync(join(root, entry)), `${where}: ${entry} does not exist`);
  return entry;
}

function isRequired(schema: z.ZodObject, name: string): boolean {
  return !(schema.shape[name] as z.ZodType).safeParse(undefined).success;
}

/** Every variable is known to the schema (or OTEL_*), every required one is set, and NATS credentials name a real user. */
function checkEnvironment(where: string, entry: string, names: ReadonlySet<string>, natsPassword: (user: string) => void, user: string | undefined): void {
  const { schema, telemetry } = processes[entry] as Process;
  for (const name of names) {
    const known = name in schema.shape || (telemetry && name.startsWith('OTEL_'));
    assert.ok(known, `${where}: ${entry} does not read ${name}`);
  }
  for (const name of Object.keys(schema.shape)) {
    if (isRequired(schema, name)) assert.ok(names.has(name), `${where}: ${entry} needs ${name}`);
  }
  if ('NATS_URL' in schema.shape) {
    assert.ok(user !== undefined && natsUsers().has(user), `${where}: NATS_USER must be a user of nats.conf, got ${user}`);
    natsPassword(user);
  }
}

test('deploy manifests - compose starts each process the way firebreak up does, with what its config reads', () => {
  const compose = parse(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, Record<string, unknown>> };
  const users = natsUsers();
  const required = new Set([...read('deploy/compose.yaml').matchAll(/\$\{(\w+):\?/g)].map((m) => m[1] as string));
  const seen = new Set<string>();
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.image !== 'firebreak:${FIREBREAK_TAG:-local}') continue;
    const entry = entryOf(service.command, `compose ${name}`);
    seen.add(entry);
    const env = (service.environment ?? {}) as Record<string, string>;
    checkEnvironment(`compose ${name}`, entry, new Set(Object.keys(env)), (user) => {
      assert.match(env.NATS_PASSWORD ?? '', new RegExp(`^\\$\\{${users.get(user)}:\\?`), `compose ${name}: NATS_PASSWORD must be \${${users.get(user)}}`);
    }, env.NATS_USER);
  }
  assert.deepEqual([...seen].sort(), Object.keys(processes).sort(), 'compose runs every process once');

  const natsEnv = (compose.services.nats?.environment ?? {}) as Record<string, string>;
  for (const variable of users.values()) assert.ok(variable in natsEnv, `compose nats: ${variable} is not passed to the server`);
  const example = read('deploy/env.example');
  for (const variable of required) assert.match(example, new RegExp(`^${variable}=`, 'm'), `env.example does not list ${variable}`);
});

interface Container {
  name: string;
  image?: string;
  command?: unknown;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }[];
}

interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template?: { spec: { containers: Container[] } }; replicas?: number };
}

function k8sManifests(): Manifest[] {
  const dir = join(deploy, 'k8s');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((doc) => {
        assert.deepEqual(doc.errors, [], `k8s/${f} does not parse`);
        return doc.toJS() as Manifest;
      }),
    );
}

test('deploy manifests - Kubernetes runs each process with what its config reads, and scales as designed', () => {
  const manifests = k8sManifests();
  const users = natsUsers();
  const configMaps = new Map(manifests.filter((m) => m.kind === 'ConfigMap').map((m) => [m.metadata.name, m.data ?? {}]));
  const seen = new Set<string>();
  for (const manifest of manifests) {
    for (const container of manifest.spec?.template?.spec.containers ?? []) {
      const where = `k8s ${manifest.kind} ${manifest.metadata.name}`;
      if (container.image === 'nats:2.10-alpine') {
        const secretKeys = new Map((container.env ?? []).map((e) => [e.name, e.valueFrom?.secretKeyRef]));
        for (const [user, variable] of users) {
          assert.deepEqual(secretKeys.get(variable), { name: 'firebreak-nats', key: user }, `${where}: ${variable} must come from firebreak-nats key ${user}`);
        }
        continue;
      }
      if (container.image !== 'firebreak') continue;
      const entry = entryOf(container.command, where);
      seen.add(entry);
      // A variable only there to be expanded into another ($(REDIS_PASSWORD) in REDIS_URL) is not read by the process.
      const helpers = new Set((container.env ?? []).flatMap((e) => [...(e.value ?? '').matchAll(/\$\((\w+)\)/g)].map((m) => m[1] as string)));
      const names = new Set((container.env ?? []).map((e) => e.name).filter((n) => !helpers.has(n)));
      for (const from of container.envFrom ?? []) {
        if (from.configMapRef) {
          const data = configMaps.get(from.configMapRef.name);
          assert.ok(data, `${where}: no ConfigMap ${from.configMapRef.name}`);
          for (const key of Object.keys(data)) names.add(key);
        }
        // Secrets by envFrom hold only the inventory's env: credential references; they must be optional.
        if (from.secretRef) assert.equal(from.secretRef.optional, true, `${where}: ${from.secretRef.name} is for device credentials only`);
      }
      const user = container.env?.find((e) => e.name === 'NATS_USER')?.value;
      checkEnvironment(where, entry, names, (u) => {
        const ref = container.env?.find((e) => e.name === 'NATS_PASSWORD')?.valueFrom?.secretKeyRef;
        assert.deepEqual(ref, { name: 'firebreak-nats', key: u }, `${where}: NATS_PASSWORD must come from firebreak-nats key ${u}`);
      }, user);
    }
  }
  assert.deepEqual([...seen].sort(), Object.keys(processes).sort(), 'Kubernetes runs every process');
  const replicas = new Map(manifests.filter((m) => m.kind === 'Deployment').map((m) => [m.metadata.name, m.spec?.replicas]));
  assert.equal(replicas.get('planner'), 2, 'planners: one leader, one standby');
  assert.equal(replicas.get('executor'), 3, 'executors share the work queue');

  const kustomization = parse(read('deploy/kustomization.yaml')) as { resources: string[]; configMapGenerator: { files: string[] }[] };
  for (const resource of kustomization.resources) assert.ok(existsSync(join(deploy, resource)), `kustomization: ${resource} is missing`);
  const files = kustomization.configMapGenerator.flatMap((g) => g.files.map((f) => f.split('=').pop() as string));
  for (const file of files) assert.ok(existsSync(join(deploy, file)), `kustomization: ${file} is missing`);
});

test('deploy manifests - nats.conf grants each service\'s durables and denies them to the operator', () => {
  const conf = read('deploy/nats/nats.conf');
  const section = (user: string): string => {
    const start = conf.indexOf(`user: ${user}\n`);
    assert.ok(start >= 0, `nats.conf has no user ${user}`);
    const end = conf.indexOf('user: ', start + 1);
    return conf.slice(start, end < 0 ? undefined : end);
  };
  const plannerDurables = [...new Set([...read('services/planner/src/index.ts').matchAll(/'(planner-[a-z-]+)'/g)].map((m) => m[1] as string))];
  assert.ok(plannerDurables.length >= 4, `found the planner's durables: ${plannerDurables.join(', ')}`);
  const durables: [string, string, string][] = [
    ...plannerDurables.map((d): [string, string, string] => ['planner', 'FB_EVENTS', d]),
    ...commandKinds.map((kind): [string, string, string] => ['executor', 'FB_CMDS', executorDurable(kind)]),
  ];
  for (const [user, stream, durable] of durables) {
    for (const api of ['CONSUMER.INFO', 'CONSUMER.MSG.NEXT']) assert.ok(section(user).includes(`"$JS.API.${api}.${stream}.${durable}"`), `${user} lacks $JS.API.${api}.${stream}.${durable}`);
    assert.match(section(user), new RegExp(`"\\$JS\\.API\\.CONSUMER\\.CREATE\\.${stream}\\.${durable}\\.`), `${user} may not create ${durable}`);
    assert.ok(section(user).includes(`"$JS.ACK.${stream}.${durable}.>"`), `${user} may not ack on ${durable}`);
    if (stream === 'FB_EVENTS') {
      for (const api of ['CONSUMER.MSG.NEXT', 'CONSUMER.DELETE', 'CONSUMER.CREATE']) {
        assert.ok(section('operator').includes(`"$JS.API.${api}.${stream}.${durable}"`), `the operator is not denied $JS.API.${api}.${stream}.${durable}`);
      }
    }
  }
  // Each kind's durable with its own filter only: overlapping filters on the work queue are refused by the server.
  for (const kind of commandKinds) {
    const create = `"$JS.API.CONSUMER.CREATE.${streams.commands}.${executorDurable(kind)}.${subjects.command(kind)}"`;
    assert.ok(section('executor').includes(create), `executor lacks ${create}`);
  }
  // And the planner publishes on those subjects only: a command on any other would sit in FB_CMDS with no durable to take it.
  const plannerCommandSubjects = [...section('planner').matchAll(/"(fb\.cmd\.[^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(plannerCommandSubjects, commandKinds.map((kind) => subjects.command(kind)), 'the planner publishes commands on exactly the kinds the executors consume');
  const retired = new RegExp(`\\.${streams.commands}\\.${RETIRED_EXECUTOR_DURABLE}[."]`);
  assert.doesNotMatch(section('executor'), retired, `executor may still use the retired durable ${RETIRED_EXECUTOR_DURABLE}`);
});

test('deploy manifests - the Dockerfile can npm ci from the lock file and keeps tsx', () => {
  const dockerfile = read('deploy/Dockerfile');
  const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
  for (const workspace of workspaces) {
    assert.match(dockerfile, new RegExp(`^COPY ${workspace}/package\\.json ${workspace}/$`, 'm'), `npm ci needs ${workspace}/package.json before it runs`);
  }
  assert.match(dockerfile, /^RUN npm ci --omit=dev/m);
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean }> };
  assert.ok(lock.packages['node_modules/tsx'] && lock.packages['node_modules/tsx'].dev !== true, 'tsx must be a production dependency, or --omit=dev drops it');
});

test('deploy manifests - the example inventory is valid', async () => {
  const inventory = await loadInventoryFile(join(deploy, 'inventory.example.yaml'));
  assert.ok(inventory.hosts.length > 0);
});
