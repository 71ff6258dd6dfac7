import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { baseConfigSchema, configErrorExitCode, loadConfig, redactConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';

const validEnv = { NATS_URL: 'nats://127.0.0.1:4222', REDIS_URL: 'redis://127.0.0.1:6379' };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('config - a missing and a bad variable are both named with what is expected', () => {
  const err = configError(() => loadConfig(baseConfigSchema, { REDIS_URL: 'http://127.0.0.1:6379', LOG_LEVEL: 'verbose' }));
  assert.equal(err.code, 'INVALID_CONFIG');
  assert.equal(err.retryable, false);
  assert.match(err.message, /NATS_URL: required \(e\.g\. nats:\/\/127\.0\.0\.1:4222\)/);
  assert.match(err.message, /REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL .*got "http:\/\/127\.0\.0\.1:6379"/);
  assert.match(err.message, /LOG_LEVEL: .*"info".*got "verbose"/);
});

test('config - defaults apply to unset and empty variables', () => {
  const config = loadConfig(baseConfigSchema, { ...validEnv, LOG_LEVEL: '' });
  assert.deepEqual(config, {
    ...validEnv,
    LOG_LEVEL: 'info',
    SERVICE_INSTANCE_ID: `${hostname()}-${process.pid}`,
    FB_SITE: 'site1',
  });
  assert.ok(Object.isFrozen(config));
});

test('config - a site that cannot be a subject token is refused', () => {
  const err = configError(() => loadConfig(baseConfigSchema, { ...validEnv, FB_SITE: 'eu.west' }));
  assert.match(err.message, /FB_SITE: must not contain '\.'/);
});

test('config - services extend the base schema and unknown variables are ignored', () => {
  const schema = baseConfigSchema.extend({ HEARTBEAT_TIMEOUT_MS: z.coerce.number().int().positive().default(3000) });
  const config = loadConfig(schema, { ...validEnv, HEARTBEAT_TIMEOUT_MS: '1500', PATH: '/usr/bin' });
  assert.equal(config.HEARTBEAT_TIMEOUT_MS, 1500);
  assert.equal('PATH' in config, false);
});

test('config - errors never show secrets or URL credentials', () => {
  const schema = baseConfigSchema.extend({ NATS_TOKEN: z.string().min(20), SWITCH_COMMUNITY: z.string().max(3) });
  const err = configError(() =>
    loadConfig(schema, {
      NATS_URL: 'http://admin:hunter2@127.0.0.1:4222',
      REDIS_URL: 'redis://:my pass@127.0.0.1:6379', // too malformed for the URL pattern
      NATS_TOKEN: 's3cr3t-token',
      SWITCH_COMMUNITY: 'user:pw@host',
    }),
  );
  for (const secret of ['hunter2', 'admin', 'my pass', 's3cr3t-token', 'pw@host']) {
    assert.equal(err.message.includes(secret), false, `"${secret}" leaked: ${err.message}`);
  }
  assert.match(err.message, /NATS_URL: .*got "http:\/\/\[REDACTED\]@127\.0\.0\.1:4222"/);
  assert.match(err.message, /NATS_TOKEN: Too small/);
});

test('config - redactConfig makes a parsed config safe to log', () => {
  assert.deepEqual(
    redactConfig({ REDIS_URL: 'redis://u:p@127.0.0.1:6379', REDIS_PASSWORD: 'p', FB_SITE: 'site1', PORT: 80 }),
    { REDIS_URL: 'redis://[REDACTED]@127.0.0.1:6379', REDIS_PASSWORD: '[REDACTED]', FB_SITE: 'site1', PORT: 80 },
  );
});

test('config - runMain exits 2 on bad env with the reason on stderr and no password', async () => {
  const fixture = fileURLToPath(new URL('./fixtures/config-main.ts', import.meta.url));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(baseConfigSchema.shape)) delete env[name];
  Object.assign(env, { REDIS_URL: 'http://firebreak:hunter2@127.0.0.1:6379', BMC_PASSWORD: 'tooshort' });

  const child = spawn('npx', ['tsx', fixture], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

  assert.equal(code, configErrorExitCode, stderr);
  assert.equal(stdout.includes('started'), false);
  assert.match(stderr, /NATS_URL: required/);
  assert.match(stderr, /REDIS_URL: .*http:\/\/\[REDACTED\]@127\.0\.0\.1:6379/);
  assert.match(stderr, /BMC_PASSWORD: Too small/);
  assert.equal(stderr.includes('hunter2'), false);
  assert.equal(stderr.includes('tooshort'), false);
});
