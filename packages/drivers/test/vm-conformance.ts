/**
 * What every VmDriver must do, run against each implementation (libvirt
 * through virsh, the lab's hypervisor API): ensure semantics (a repeat sends
 * nothing the hypervisor counts as a change), read-back, a changed spec
 * replacing the definition only while stopped, unknown domains, invalid
 * specs, and how failures are classified.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorCodes } from '@firebreak/shared';
import { DriverError } from '../src/driver-error.ts';
import type { VmDriver, VmSpec } from '../src/driver.ts';

export interface VmConformanceTarget {
  /** A driver for a hypervisor that is up and has no domains named `conf-*`. */
  driver: VmDriver;
  /** Changes (define, start, stop, undefine) the hypervisor has received so far, by its own count. */
  changes(): Promise<number> | number;
  /** A driver of the same kind for an address where nothing answers. */
  unreachable(): Promise<VmDriver>;
  close(): Promise<void>;
}

export interface VmConformanceOptions {
  /** Set when the target cannot run here, saying what to install. */
  skip?: string | undefined;
}

const signal = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

export function conformanceSpec(name: string, overrides: Partial<VmSpec> = {}): VmSpec {
  return { name, cpus: 2, memoryGiB: 4, image: 'rhel9', mac: '52:54:00:c0:00:01', vlans: [20, 30], luns: ['lun-db1'], ...overrides };
}

export function isDriverError(check: (err: DriverError) => void): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof DriverError, `expected a DriverError, got ${String(err)}`);
    check(err);
    return true;
  };
}

export function vmDriverConformance(name: string, setUp: () => Promise<VmConformanceTarget>, options: VmConformanceOptions = {}): void {
  describe(`${name} conformance`, { skip: options.skip ?? false }, () => {
    let target: VmConformanceTarget;
    let vm: VmDriver;
    const changes = async (): Promise<number> => target.changes();

    before(async () => {
      target = await setUp();
      vm = target.driver;
      await vm.validate();
    });
    after(async () => {
      await target?.driver.close();
      await target?.close();
    });

    test(`${name} - define creates a stopped domain; defining it again sends nothing`, async () => {
      const spec = conformanceSpec('conf-define');
      assert.equal(await vm.state(spec.name, signal()), 'absent');
      const before = await changes();

      const first = await vm.define(spec, signal());
      assert.equal(first.done, true, first.message);
      assert.match(first.message, /conf-define defined .*\(defined; read back/);
      assert.equal(await vm.state(spec.name, signal()), 'stopped');
      assert.equal(await changes(), before + 1);

      const again = await vm.define({ ...spec, mac: spec.mac.toUpperCase(), vlans: [20, 30] }, signal());
      assert.equal(again.done, true, again.message);
      assert.match(again.message, /already defined as asked/);
      assert.equal(await changes(), before + 1, 'a repeat define sent nothing');
    });

    test(`${name} - start runs the domain; starting it again sends nothing`, async () => {
      const spec = conformanceSpec('conf-start', { mac: '52:54:00:c0:00:02' });
      assert.equal((await vm.define(spec, signal())).done, true);
      const before = await changes();

      const started = await vm.start(spec.name, signal());
      assert.equal(started.done, true, started.message);
      assert.match(started.message, /running .*started; read back/);
      assert.equal(await vm.state(spec.name, signal()), 'running');

      const again = await vm.start(spec.name, signal());
      assert.equal(again.done, true);
      assert.match(again.message, /already running/);
      assert.equal(await changes(), before + 1);
    });

    test(`${name} - stop forces the domain off; stopping it again sends nothing`, async () => {
      const spec = conformanceSpec('conf-stop', { mac: '52:54:00:c0:00:03' });
      assert.equal((await vm.define(spec, signal())).done, true);
      assert.equal((await vm.start(spec.name, signal())).done, true);
      const before = await changes();

      const stopped = await vm.stop(spec.name, signal());
      assert.equal(stopped.done, true, stopped.message);
      assert.equal(await vm.state(spec.name, signal()), 'stopped');
      const again = await vm.stop(spec.name, signal());
      assert.equal(again.done, true);
      assert.match(again.message, /already stopped/);
      assert.equal(await changes(), before + 1);
    });

    test(`${name} - a changed spec is refused while the domain runs and replaces the definition once it is stopped`, async () => {
      const spec = conformanceSpec('conf-change', { mac: '52:54:00:c0:00:04' });
      assert.equal((await vm.define(spec, signal())).done, true);
      assert.equal((await vm.start(spec.name, signal())).done, true);
      const bigger = { ...spec, memoryGiB: 8, vlans: [20, 40] };
      const before = await changes();

      await assert.rejects(
        vm.define(bigger, signal()),
        isDriverError((err) => {
          assert.equal(err.retryable, false);
          assert.match(err.message, /conf-change .*running with a different definition \(memory 4 GiB → 8 GiB; VLANs 20, 30 → 20, 40\); stop it before redefining/);
        }),
      );
      assert.equal(await vm.state(spec.name, signal()), 'running', 'the running domain was left alone');
      assert.equal(await changes(), before);

      assert.equal((await vm.stop(spec.name, signal())).done, true);
      const redefined = await vm.define(bigger, signal());
      assert.equal(redefined.done, true, redefined.message);
      assert.match(redefined.message, /redefined: memory 4 GiB → 8 GiB; VLANs 20, 30 → 20, 40; read back/);
      assert.equal(await vm.state(spec.name, signal()), 'stopped');
      assert.equal(await changes(), before + 2, 'one stop, one define');
      assert.match((await vm.define(bigger, signal())).message, /already defined as asked/);

      // The old definition is gone, not kept beside the new one: asking for it again is a change.
      assert.match((await vm.define(spec, signal())).message, /redefined: memory 8 GiB → 4 GiB/);
    });

    test(`${name} - undefine stops a running domain and removes it; undefining it again sends nothing`, async () => {
      const spec = conformanceSpec('conf-undefine', { mac: '52:54:00:c0:00:05' });
      assert.equal((await vm.define(spec, signal())).done, true);
      assert.equal((await vm.start(spec.name, signal())).done, true);
      const before = await changes();

      const gone = await vm.undefine(spec.name, signal());
      assert.equal(gone.done, true, gone.message);
      assert.match(gone.message, /forced off and undefined/);
      assert.equal(await vm.state(spec.name, signal()), 'absent');
      assert.equal(await changes(), before + 2, 'one stop, one undefine');

      const again = await vm.undefine(spec.name, signal());
      assert.equal(again.done, true);
      assert.match(again.message, /already absent/);
      assert.equal(await changes(), before + 2);
    });

    test(`${name} - an unknown domain is absent: stop and undefine have nothing to do, start is a permanent error`, async () => {
      const before = await changes();
      assert.equal(await vm.state('conf-nope', signal()), 'absent');
      assert.match((await vm.stop('conf-nope', signal())).message, /not defined; nothing to stop/);
      assert.match((await vm.undefine('conf-nope', signal())).message, /already absent/);
      await assert.rejects(
        vm.start('conf-nope', signal()),
        isDriverError((err) => {
          assert.equal(err.retryable, false);
          assert.match(err.message, /vm conf-nope on .*not defined; define it before starting it/);
        }),
      );
      assert.equal(await changes(), before);
    });

    test(`${name} - an invalid spec or domain name is a permanent error naming each problem, and nothing is sent`, async () => {
      const before = await changes();
      const bad = conformanceSpec('conf-bad', { cpus: 0, mac: '52:54:00:zz:00:01', vlans: [20, 5000], luns: ['lun db1'] });
      await assert.rejects(
        vm.define(bad, signal()),
        isDriverError((err) => {
          assert.equal(err.code, errorCodes.permanent);
          assert.match(err.message, /cpus 0 must be a positive whole number/);
          assert.match(err.message, /mac "52:54:00:zz:00:01" is not a MAC address/);
          assert.match(err.message, /VLAN 5000 is outside 1-4094/);
          assert.match(err.message, /LUN "lun db1" is not a LUN id/);
        }),
      );
      assert.equal(await vm.state('conf-bad', signal()), 'absent');
      for (const name of ['--all', 'a b', '']) {
        await assert.rejects(vm.undefine(name, signal()), isDriverError((err) => assert.match(err.message, /not a domain name/)));
      }
      assert.equal(await changes(), before);
    });

    test(`${name} - a deadline that has already passed is a timeout, and nothing is sent`, async () => {
      const before = await changes();
      await assert.rejects(
        vm.define(conformanceSpec('conf-late', { mac: '52:54:00:c0:00:06' }), AbortSignal.abort()),
        isDriverError((err) => {
          assert.equal(err.code, errorCodes.timeout);
          assert.equal(err.retryable, true);
        }),
      );
      assert.equal(await vm.state('conf-late', signal()), 'absent');
      assert.equal(await changes(), before);
    });

    test(`${name} - an unreachable hypervisor is a transient error`, async () => {
      const unreachable = await target.unreachable();
      try {
        await assert.rejects(
          unreachable.state('conf-define', signal()),
          isDriverError((err) => {
            assert.equal(err.code, errorCodes.transient);
            assert.equal(err.retryable, true);
            assert.match(err.message, /conf-define/);
          }),
        );
      } finally {
        await unreachable.close();
      }
    });
  });
}
