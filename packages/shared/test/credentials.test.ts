import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { parseBootScript, renderBootScript, resolveCredentials, Secret } from '../src/index.ts';

test('credentials - env reference holding user:password', async () => {
  const c = await resolveCredentials('env:BMC_R1', { BMC_R1: 'admin:s3cret:with:colons' });
  assert.equal(c.username, 'admin');
  assert.equal(c.password?.reveal(), 's3cret:with:colons');
});

test('credentials - file reference selects a member', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fb-cred-'));
  const file = join(dir, 'creds.json');
  await writeFile(file, JSON.stringify({ r1: { username: 'root', password: 'pw1' }, tor1: { community: 'private' } }));
  const bmc = await resolveCredentials(`file:${file}#r1`);
  assert.equal(bmc.password?.reveal(), 'pw1');
  const sw = await resolveCredentials(`file:${file}#tor1`);
  assert.equal(sw.community?.reveal(), 'private');
  await assert.rejects(resolveCredentials(`file:${file}#r9`), /no entry "r9"/);
  await assert.rejects(resolveCredentials(`file:${dir}/missing.json#r1`), /file not found/);
});

test('credentials - errors name the reference and never the secret', async () => {
  await assert.rejects(resolveCredentials('env:NOPE', {}), /env:NOPE: environment variable NOPE is not set/);
  await assert.rejects(resolveCredentials('env:BAD', { BAD: 'hunter2' }), (err: Error) => !err.message.includes('hunter2'));
  await assert.rejects(resolveCredentials('env:BAD', { BAD: '{"password": hunter2' }), (err: Error) => !err.message.includes('hunter2'));
});

test('secret - never printed by JSON, String or inspect', () => {
  const s = new Secret('hunter2');
  const shown = [JSON.stringify({ s }), String(s), `${s}`, inspect({ s }, { depth: 5 })].join(' ');
  assert.doesNotMatch(shown, /hunter2/);
  assert.equal(s.reveal(), 'hunter2');
});

test('boot script - round trip and refusal of foreign scripts', () => {
  const text = renderBootScript({ mac: '52:54:00:00:00:01', server: 'db1', image: 'rhel9', imageUrl: 'http://127.0.0.1:1/images/rhel9.ipxe' });
  assert.deepEqual(parseBootScript(text), { server: 'db1', image: 'rhel9', imageUrl: 'http://127.0.0.1:1/images/rhel9.ipxe' });
  assert.throws(() => parseBootScript('#!/bin/sh\necho hi'), /not an iPXE script/);
  assert.throws(() => parseBootScript('#!ipxe\nchain http://x/y'), /sets no fb-server/);
});
