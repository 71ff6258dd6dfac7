import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DriverError } from '@firebreak/drivers';
import { parseBootScript, type BootCommand } from '@firebreak/shared';
import { sampleCommand, sampleInventory } from '@firebreak/shared/testing';
import { startBootService, type BootRequestRecord, type BootService } from '@firebreak/boot-service';
import { BootCommands } from '../src/drivers/boot-commands.ts';

const inventory = sampleInventory();
const signal = (ms = 5_000): AbortSignal => AbortSignal.timeout(ms);
type ConfigureCommand = Extract<BootCommand, { action: 'configure' }>;
/** db1 onto spare r1-h3, image rhel9-x86. */
const configure = (overrides: Partial<ConfigureCommand> = {}): ConfigureCommand => ({ ...(sampleCommand('boot') as ConfigureCommand), ...overrides });
const clear = (): BootCommand => {
  const { image: _image, server: _server, ...rest } = configure();
  return { ...rest, action: 'clear' };
};

function isDriverError(check: (err: DriverError) => void): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof DriverError, `expected a DriverError, got ${String(err)}`);
    check(err);
    return true;
  };
}

describe('boot-commands', () => {
  let dir: string;
  let service: BootService;
  let boot: BootCommands;
  const requests: BootRequestRecord[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fb-exec-boot-'));
    service = await startBootService({ dir, onRequest: (r) => requests.push(r) });
    boot = new BootCommands(inventory, { bootServiceUrl: service.url });
  });
  after(async () => {
    await boot?.close();
    await service?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("boot-commands - configure serves the server's inventory image to the host's MAC and reports what is served", async () => {
    const command = configure();
    const execution = await boot.execute(command, signal());
    assert.deepEqual(execution.observed, { server: 'db1', image: 'rhel9-x86' });
    const served = await fetch(`${service.url}/boot/${command.mac}.ipxe`);
    assert.deepEqual(parseBootScript(await served.text()), { server: 'db1', image: 'rhel9-x86', imageUrl: 'http://127.0.0.1:8080/images/rhel9-x86.ipxe' });
  });

  test("boot-commands - a drill configure's attached VLANs and LUNs reach the served script and the observed result; production drops them", async () => {
    const attach = { vlans: [3200], luns: ['lun-db1-d-0123456789ab'] };
    const drill = configure({ drill: true, attach });
    const execution = await boot.execute(drill, signal());
    assert.deepEqual(execution.observed, { server: 'db1', image: 'rhel9-x86', attach });
    assert.deepEqual(parseBootScript(await (await fetch(`${service.url}/boot/${drill.mac}.ipxe`)).text()).attach, attach);

    // Same server and image: only the attachments differ, and the read-back must notice that.
    const production = await boot.execute(configure(), signal());
    assert.deepEqual(production.observed, { server: 'db1', image: 'rhel9-x86' });
    assert.equal(parseBootScript(await (await fetch(`${service.url}/boot/${drill.mac}.ipxe`)).text()).attach, undefined);
  });

  test('boot-commands - clear leaves the MAC without an entry', async () => {
    const execution = await boot.execute(clear(), signal());
    assert.deepEqual(execution.observed, { cleared: true });
    assert.equal((await fetch(`${service.url}/boot/${clear().mac}.ipxe`)).status, 404);
  });

  test('boot-commands - an image the inventory lacks is a permanent error naming it, and nothing is sent', async () => {
    const before = requests.length;
    await assert.rejects(
      boot.execute(configure({ image: 'sles15' }), signal()),
      isDriverError((err) => {
        assert.equal(err.retryable, false);
        assert.match(err.message, /image "sles15" is not in the inventory's images/);
      }),
    );
    assert.equal(requests.length, before);
  });

  test('boot-commands - without a boot service URL every boot command fails permanently saying what to set', async () => {
    const unconfigured = new BootCommands(inventory);
    for (const command of [configure(), clear()]) {
      await assert.rejects(
        unconfigured.execute(command, signal()),
        isDriverError((err) => {
          assert.equal(err.retryable, false);
          assert.equal(err.message, 'no boot service configured: set FB_BOOT_SERVICE_URL');
        }),
      );
    }
  });
});
