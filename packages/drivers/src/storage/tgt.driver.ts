/**
 * LUN masking, fencing and drill clones on a Linux SCSI target framework
 * (`tgt`) iSCSI server, inventory `driver: 'tgt'`, through `tgtadm`.
 *
 * Address: `tgt://local` (tgtd's default control port 0) or
 * `tgt://local?control-port=N` (a tgtd started with `--control-port N`).
 * tgtadm reaches tgtd only through a unix socket on its own machine, so the
 * executor that owns such an array runs on the tgtd machine, as root (the
 * socket is root's). `credentialsRef` is not used: tgtadm has no login.
 *
 * Mapping: an inventory LUN is a tgt target whose IQN ends in `:<lun id>`
 * (`iqn.2026-11.io.firebreak:lun-db1`), serving one backing store. Masking
 * is the target's ACL by initiator name (`--op bind --initiator-name`); an
 * initiator with no ACL entry is not offered the target at discovery and is
 * refused at login. Revoking also closes the initiator's open sessions:
 * tgtd checks its ACL only at login, and a fenced host that stays logged in
 * still writes. A target that admits by address (`--initiator-address`, e.g.
 * `ALL`) cannot be proven fenced by name, so revoking on it ends in a
 * permanent error that names the rule to remove.
 *
 * tgtadm changes live only in the running tgtd: keep Firebreak's targets'
 * ACLs out of targets.conf, or a tgtd restart brings a fenced host's binding
 * back. Every change is preceded by a read (asking again sends nothing) and
 * followed by reading the ACL and sessions back.
 */
import { rm, stat } from 'node:fs/promises';
import { Id, Iqn, Wwpn, type StorageArray } from '@firebreak/shared';
import { DriverError } from '../driver-error.ts';
import { settle } from '../read-back.ts';
import type { StepResult, StorageCapability, StorageDriver } from '../driver.ts';
import { cloneFilePath, cloneOriginOf, copyBackingFile } from './tgt-clone-file.ts';
import { isInitiatorName, parseTgtShow, type TgtTarget } from './tgt-show.ts';
import { tgtadmRunner, type TgtadmOutcome, type TgtadmRunner } from './tgtadm.ts';

/** Inventory `driver` values this driver speaks for. */
export const TGT_DRIVERS: readonly string[] = ['tgt'];

export interface TgtStorageDriverOptions {
  array: StorageArray;
  /** Runs tgtadm; default the `tgtadm` on PATH. */
  runner?: TgtadmRunner;
  /** Between reads while a change lands (sessions take a moment to close). Default 200 ms. */
  pollIntervalMs?: number;
  /** Longest wait for a change to show, when the signal allows that long. Default 30 s. */
  settleWaitMs?: number;
  /** Per tgtadm call, within the caller's signal. Default 10 s. */
  requestTimeoutMs?: number;
}

const DEFAULT_POLL_MS = 200;
const DEFAULT_SETTLE_MS = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** tgtd stores the control port as a C short. */
const MAX_CONTROL_PORT = 32_767;
/** The clone's only logical unit; LUN 0 is tgtd's own controller. */
const CLONE_LUN = 1;

type CloneState = { kind: 'clone'; of: string } | { kind: 'empty' } | { kind: 'original' };

export class TgtStorageDriver implements StorageDriver {
  readonly name = 'tgt';
  readonly capabilities: readonly StorageCapability[] = ['grant', 'revoke', 'list', 'revoke-all', 'clone', 'visibility'];
  readonly #array: StorageArray;
  readonly #run: TgtadmRunner;
  readonly #pollMs: number;
  readonly #settleMs: number;
  readonly #requestTimeoutMs: number;

  constructor(options: TgtStorageDriverOptions) {
    this.#array = options.array;
    this.#run = options.runner ?? tgtadmRunner();
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    this.#settleMs = options.settleWaitMs ?? DEFAULT_SETTLE_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  static fromInventory(array: StorageArray, options: Omit<TgtStorageDriverOptions, 'array'> = {}): Promise<TgtStorageDriver> {
    if (!TGT_DRIVERS.includes(array.driver)) {
      return Promise.reject(DriverError.permanent(`tgt ${array.id}: driver "${array.driver}" is not one this driver speaks (${TGT_DRIVERS.join(', ')})`));
    }
    const driver = new TgtStorageDriver({ ...options, array });
    return driver.validate().then(() => driver);
  }

  async validate(): Promise<void> {
    this.#controlPort();
  }

  close(): Promise<void> {
    // Every tgtadm call is its own short-lived process: nothing stays open.
    return Promise.resolve();
  }

  async grant(lun: string, initiator: string, signal: AbortSignal): Promise<StepResult> {
    const iqn = this.#iqn(initiator);
    const target = this.#target(await this.targets(signal), lun);
    // tgtd compares initiator names byte for byte: only the exact spelling admits this host.
    const bound = target.acl.includes(iqn);
    if (!bound) await this.#admin(['--mode', 'target', '--op', 'bind', '--tid', `${target.tid}`, '--initiator-name', iqn], signal, /already exists/);
    const how = bound ? 'already granted' : 'granted';
    return this.#settle(signal, `${lun} visible to ${iqn}`, how, async () => {
      const now = this.#target(await this.targets(signal), lun);
      return now.acl.includes(iqn) ? undefined : `${iqn} not in the ACL of ${now.name} yet`;
    });
  }

  async revoke(lun: string, initiator: string, signal: AbortSignal): Promise<StepResult> {
    const iqn = this.#iqn(initiator);
    const target = this.#find(await this.targets(signal), lun);
    if (target === undefined) return { done: true, message: `no LUN "${lun}" on tgt ${this.#array.id}; nothing to revoke` };
    const sent = await this.#fence(target, iqn, signal);
    const how = sent.length > 0 ? sent.join(', ') : 'already revoked';
    return this.#settle(signal, `${lun} hidden from ${iqn}`, how, async () => {
      const now = this.#find(await this.targets(signal), lun);
      if (now === undefined) return undefined;
      this.#refuseAddressRules([now], iqn);
      const left = exposure(now, iqn);
      return left.length === 0 ? undefined : `${lun} still reachable by ${iqn}: ${left.join(', ')}`;
    });
  }

  async revokeAll(initiator: string, signal: AbortSignal): Promise<StepResult> {
    const iqn = this.#iqn(initiator);
    const done: string[] = [];
    // Every target of this tgtd, named like a Firebreak LUN or not: a fence leaves the host nothing here.
    for (const target of await this.targets(signal)) {
      const sent = await this.#fence(target, iqn, signal);
      if (sent.length > 0) done.push(`${lunIdOf(target.name) ?? target.name} (${sent.join(', ')})`);
    }
    const how = done.length > 0 ? `revoked ${done.join('; ')}` : 'already fenced';
    return this.#settle(signal, `${iqn} fenced from every LUN on ${this.#array.id}`, how, async () => {
      const targets = await this.targets(signal);
      this.#refuseAddressRules(targets, iqn);
      const still = targets.filter((t) => exposure(t, iqn).length > 0).map((t) => `${t.name} (${exposure(t, iqn).join(', ')})`);
      return still.length === 0 ? undefined : `${iqn} still reaches ${still.join('; ')}`;
    });
  }

  async list(initiator: string | undefined, signal: AbortSignal): Promise<string[]> {
    const iqn = initiator === undefined ? undefined : this.#iqn(initiator);
    const ids = new Set<string>();
    for (const target of await this.targets(signal)) {
      const id = lunIdOf(target.name);
      if (id === undefined) continue;
      if (iqn === undefined || target.acl.some((entry) => entry === 'ALL' || sameName(entry, iqn))) ids.add(id);
    }
    return [...ids].sort();
  }

  /** Every target of this tgtd, as `tgtadm --op show` lists it. */
  async targets(signal: AbortSignal): Promise<TgtTarget[]> {
    const out = await this.#admin(['--mode', 'target', '--op', 'show'], signal);
    try {
      return parseTgtShow(out.stdout);
    } catch (err) {
      throw DriverError.permanent(`tgt ${this.#array.id}: unexpected "tgtadm --op show" output (${(err as Error).message}); is this tgt 1.0?`, err);
    }
  }

  async clone(lun: string, cloneId: string, signal: AbortSignal): Promise<StepResult> {
    if (!Id.safeParse(cloneId).success) throw DriverError.permanent(`tgt ${this.#array.id}: clone id "${cloneId}" must be an inventory id (letters, digits, "-", "_")`);
    const targets = await this.targets(signal);
    const source = this.#target(targets, lun);
    const existing = this.#find(targets, cloneId);
    if (existing !== undefined) {
      const state = cloneState(existing, cloneId);
      if (state.kind === 'clone' && state.of === lun) {
        return this.#settleClone(signal, lun, cloneId, 'already there');
      }
      if (state.kind !== 'empty') {
        const what = state.kind === 'clone' ? `a clone of ${state.of}` : 'an original LUN';
        throw DriverError.permanent(`tgt ${this.#array.id}: "${cloneId}" already exists as ${what} (${existing.name}), not a clone of ${lun}`);
      }
      // A target without a backing store is what an interrupted clone leaves; finish it only while nobody can reach it.
      if (existing.acl.length > 0 || existing.sessions.length > 0) {
        throw DriverError.permanent(`tgt ${this.#array.id}: "${cloneId}" already exists (${existing.name}) without a backing store but with initiators; not taking it over as a clone`);
      }
    }
    const from = await this.#backingFile(source);
    const to = cloneFilePath(from, cloneId, lun);
    const user = targets.find((t) => t.units.some((u) => u.backingStorePath === to));
    if (user !== undefined) throw DriverError.permanent(`tgt ${this.#array.id}: ${to} is already served by ${user.name}; not overwriting it`);
    try {
      await copyBackingFile(from, to, signal);
    } catch (err) {
      if (signal.aborted) throw DriverError.timeout(`tgt ${this.#array.id}: copying ${from} to ${to} outlived the caller's deadline`, err);
      throw DriverError.transient(`tgt ${this.#array.id}: cannot copy ${from} to ${to}: ${(err as Error).message}`, err);
    }
    const tid = existing?.tid ?? (await this.#newTarget(`${prefixOf(source.name)}:${cloneId}`, signal));
    try {
      const args = ['--mode', 'logicalunit', '--op', 'new', '--tid', `${tid}`, '--lun', `${CLONE_LUN}`, '--backing-store', to];
      await this.#admin(args, signal, /already exists/);
    } catch (err) {
      // Undo what this call created, so that a retry starts from nothing rather than from a target serving nothing.
      if (existing === undefined) await this.#admin(['--mode', 'target', '--op', 'delete', '--force', '--tid', `${tid}`], signal, /can't find/).catch(() => undefined);
      await this.#remove(to);
      throw err;
    }
    return this.#settleClone(signal, lun, cloneId, existing === undefined ? 'created' : 'finished an interrupted clone');
  }

  async deleteClone(cloneId: string, signal: AbortSignal): Promise<StepResult> {
    const target = this.#find(await this.targets(signal), cloneId);
    if (target === undefined) return { done: true, message: `no LUN "${cloneId}" on tgt ${this.#array.id}; nothing to delete` };
    // Checked on the backing file's name, not on the id: a mistyped id must never take a production LUN with it.
    if (cloneState(target, cloneId).kind === 'original') {
      throw DriverError.permanent(`tgt ${this.#array.id}: "${cloneId}" (${target.name}) is not a clone; refusing to delete it`);
    }
    // Unlinked while tgtd still holds it open: the space goes with the target, and if the delete below fails
    // the target still carries the clone's path, so a retry still recognises it as a clone.
    for (const unit of target.units) if (unit.backingStorePath !== undefined) await this.#remove(unit.backingStorePath);
    await this.#admin(['--mode', 'target', '--op', 'delete', '--force', '--tid', `${target.tid}`], signal, /can't find/);
    return this.#settle(signal, `clone ${cloneId} gone`, 'deleted', async () =>
      this.#find(await this.targets(signal), cloneId) === undefined ? undefined : `${cloneId} still listed`,
    );
  }

  /** True when the ACL admits the initiator (by name, in any case, or by address) or it is still logged in. */
  async canSee(initiator: string, lun: string, signal: AbortSignal): Promise<boolean> {
    const iqn = this.#iqn(initiator);
    const target = this.#find(await this.targets(signal), lun);
    if (target === undefined) return false;
    // An address rule may well match this host's address, which the inventory does not know: assume it does.
    return exposure(target, iqn).length > 0 || target.acl.some((entry) => !isInitiatorName(entry));
  }

  /** Unbinds every spelling of `iqn` from the target's ACL, then closes its sessions; what was sent. */
  async #fence(target: TgtTarget, iqn: string, signal: AbortSignal): Promise<string[]> {
    const sent: string[] = [];
    const tid = `${target.tid}`;
    // Unbound first, so the host cannot log straight back in once its sessions close.
    for (const entry of target.acl.filter((e) => sameName(e, iqn))) {
      await this.#admin(['--mode', 'target', '--op', 'unbind', '--tid', tid, '--initiator-name', entry], signal, /does not exist|can't find/);
      sent.push(`unbound ${entry}`);
    }
    for (const session of target.sessions.filter((s) => sameName(s.initiator, iqn))) {
      for (const cid of session.connections) {
        await this.#admin(['--mode', 'conn', '--op', 'delete', '--tid', tid, '--sid', `${session.sid}`, '--cid', `${cid}`], signal, /can't find/);
      }
      sent.push(`closed session ${session.sid}`);
    }
    return sent;
  }

  #refuseAddressRules(targets: readonly TgtTarget[], iqn: string): void {
    const open = targets.filter((t) => t.acl.some((entry) => !isInitiatorName(entry)));
    if (open.length === 0) return;
    const rules = open.map((t) => `${t.name} (tid ${t.tid}) admits ${t.acl.filter((e) => !isInitiatorName(e)).join(', ')}`);
    throw DriverError.permanent(
      `tgt ${this.#array.id}: cannot prove ${iqn} fenced: ${rules.join('; ')} by address; ` +
        `remove those rules (tgtadm --op unbind --initiator-address …) and mask by initiator name`,
    );
  }

  async #settleClone(signal: AbortSignal, lun: string, cloneId: string, how: string): Promise<StepResult> {
    return this.#settle(signal, `${cloneId} is a clone of ${lun}`, how, async () => {
      const now = this.#find(await this.targets(signal), cloneId);
      if (now === undefined) return `${cloneId} not listed yet`;
      const state = cloneState(now, cloneId);
      if (state.kind === 'empty') return `${cloneId} has no backing store yet`;
      if (state.kind === 'original' || state.of !== lun) {
        throw DriverError.permanent(`tgt ${this.#array.id}: "${cloneId}" appeared as ${state.kind === 'clone' ? `a clone of ${state.of}` : 'an original LUN'}, not a clone of ${lun}`);
      }
      return undefined;
    });
  }

  /** Creates an empty target named `name` under the next free tid; its tid. */
  async #newTarget(name: string, signal: AbortSignal): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const targets = await this.targets(signal);
      const same = targets.find((t) => t.name === name);
      // Another executor won the race for this name: the caller's read-back judges what it made.
      if (same !== undefined) return same.tid;
      const tid = Math.max(0, ...targets.map((t) => t.tid)) + 1;
      const out = await this.#admin(['--mode', 'target', '--op', 'new', '--tid', `${tid}`, '--targetname', name], signal, /already exists/);
      if (out.exitCode === 0) return tid;
    }
    throw DriverError.transient(`tgt ${this.#array.id}: could not find a free tid for ${name}; targets are being created concurrently`);
  }

  /** The one backing file of a target, which must be a regular file to be copied. */
  async #backingFile(target: TgtTarget): Promise<string> {
    const paths = target.units.flatMap((u) => (u.backingStorePath === undefined ? [] : [u.backingStorePath]));
    const [path] = paths;
    if (path === undefined || paths.length > 1) {
      throw DriverError.permanent(`tgt ${this.#array.id}: ${target.name} has ${paths.length} backing stores; drill clones copy a target with exactly one`);
    }
    const info = await stat(path).catch((err: unknown) => {
      throw DriverError.permanent(`tgt ${this.#array.id}: backing store ${path} of ${target.name} cannot be read here: ${(err as Error).message}`, err);
    });
    if (!info.isFile()) throw DriverError.permanent(`tgt ${this.#array.id}: backing store ${path} of ${target.name} is not a regular file; clones copy files (use the volume manager's snapshots for devices)`);
    return path;
  }

  async #remove(path: string): Promise<void> {
    try {
      await rm(path, { force: true });
    } catch (err) {
      throw DriverError.transient(`tgt ${this.#array.id}: cannot remove clone file ${path}: ${(err as Error).message}`, err);
    }
  }

  /** The target serving `lun`; unknown is a permanent error. */
  #target(targets: readonly TgtTarget[], lun: string): TgtTarget {
    const target = this.#find(targets, lun);
    if (target === undefined) {
      throw DriverError.permanent(`tgt ${this.#array.id}: no LUN "${lun}" (no target named …:${lun} on ${this.#array.address}); check the inventory or create the target`);
    }
    return target;
  }

  #find(targets: readonly TgtTarget[], lun: string): TgtTarget | undefined {
    const matches = targets.filter((t) => lunIdOf(t.name) === lun);
    if (matches.length > 1) {
      throw DriverError.permanent(`tgt ${this.#array.id}: LUN "${lun}" is ambiguous: ${matches.map((t) => t.name).join(' and ')} both end in ":${lun}"`);
    }
    return matches[0];
  }

  #iqn(raw: string): string {
    if (Wwpn.safeParse(raw).success) {
      throw DriverError.permanent(`tgt ${this.#array.id}: initiator "${raw}" is a Fibre Channel WWPN; tgt serves iSCSI: initiator must be an IQN (iqn.YYYY-MM.reverse.domain[:name])`);
    }
    const result = Iqn.safeParse(raw);
    if (result.success) return result.data;
    throw DriverError.permanent(`tgt ${this.#array.id}: initiator "${raw}": ${result.error.issues[0]?.message ?? 'not an iSCSI IQN'}`);
  }

  #controlPort(): number {
    const { id, address } = this.#array;
    const expected = 'expected tgt://local or tgt://local?control-port=N';
    let url: URL;
    try {
      url = new URL(address);
    } catch {
      throw DriverError.permanent(`tgt ${id}: address "${address}" is not a URL (${expected})`);
    }
    const params = [...url.searchParams.keys()];
    if (url.protocol !== 'tgt:' || url.hostname !== 'local' || url.port !== '' || url.username !== '' || (url.pathname !== '' && url.pathname !== '/') || params.some((p) => p !== 'control-port')) {
      // tgtadm speaks only to the tgtd on this machine: a remote host here would be silently ignored.
      throw DriverError.permanent(`tgt ${id}: address "${address}" is not a local tgtd (${expected}); the executor must run on the tgtd machine`);
    }
    const raw = url.searchParams.get('control-port') ?? '0';
    const port = Number(raw);
    if (!/^\d+$/.test(raw) || port > MAX_CONTROL_PORT) throw DriverError.permanent(`tgt ${id}: control-port "${raw}" must be a number 0-${MAX_CONTROL_PORT}`);
    return port;
  }

  /** One tgtadm call; a refusal matching `tolerate` comes back instead of throwing. */
  async #admin(args: readonly string[], signal: AbortSignal, tolerate?: RegExp): Promise<TgtadmOutcome> {
    const port = this.#controlPort();
    const what = `tgt ${this.#array.id}: tgtadm ${args.join(' ')}`;
    const timeout = AbortSignal.timeout(this.#requestTimeoutMs);
    let out: TgtadmOutcome;
    try {
      out = await this.#run(['--control-port', `${port}`, '--lld', 'iscsi', ...args], AbortSignal.any([signal, timeout]));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw DriverError.transient(`tgt ${this.#array.id}: tgtadm is not installed on this machine (apt-get install tgt); the executor for ${this.#array.address} must run where tgtd runs`, err);
      }
      if (signal.aborted) throw DriverError.timeout(`${what}: the caller's deadline passed`, err);
      if (timeout.aborted) throw DriverError.timeout(`${what}: no answer within ${this.#requestTimeoutMs} ms; is tgtd stuck?`, err);
      throw DriverError.transient(`${what}: ${(err as Error).message}`, err);
    }
    if (out.exitCode === 0) return out;
    const said = out.stderr.trim().replace(/^tgtadm: /, '') || `exit status ${out.exitCode}`;
    if (tolerate?.test(said)) return out;
    // tgtadm exits with the errno of its socket: ENOTCONN (107) / ECONNREFUSED (111) when no tgtd listens there.
    if (out.exitCode === 107 || out.exitCode === 111 || /not connected|can't connect|failed to send request|connection refused/i.test(said)) {
      throw DriverError.transient(
        `tgt ${this.#array.id}: no tgtd answers on control port ${port} (${this.#array.address}): ${said}; ` +
          `is tgtd running there with --control-port ${port}, and does the executor run as root on that machine?`,
      );
    }
    throw DriverError.permanent(`${what}: ${said}`);
  }

  #settle(signal: AbortSignal, goal: string, how: string, pending: () => Promise<string | undefined>): Promise<StepResult> {
    return settle(goal, how, pending, { pollMs: this.#pollMs, waitMs: this.#settleMs, signal });
  }
}

/** The inventory LUN id a target stands for: what follows the last ":" of its IQN, when that is an id. */
export function lunIdOf(targetName: string): string | undefined {
  const colon = targetName.lastIndexOf(':');
  if (colon < 0) return undefined;
  const id = targetName.slice(colon + 1);
  return Id.safeParse(id).success ? id : undefined;
}

function prefixOf(targetName: string): string {
  return targetName.slice(0, targetName.lastIndexOf(':'));
}

/** iSCSI names are case-insensitive (RFC 3720), so a fence removes every spelling even though tgtd matches exactly. */
function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** How `iqn` can still reach the target by name: ACL entries and open sessions. */
function exposure(target: TgtTarget, iqn: string): string[] {
  return [
    ...target.acl.filter((e) => sameName(e, iqn)).map((e) => `ACL entry ${e}`),
    ...target.sessions.filter((s) => sameName(s.initiator, iqn)).map((s) => `session ${s.sid}`),
  ];
}

function cloneState(target: TgtTarget, cloneId: string): CloneState {
  const paths = target.units.flatMap((u) => (u.backingStorePath === undefined ? [] : [u.backingStorePath]));
  if (paths.length === 0) return { kind: 'empty' };
  const origins = new Set(paths.map((p) => cloneOriginOf(p, cloneId)));
  const [of] = origins;
  return origins.size === 1 && of !== undefined ? { kind: 'clone', of } : { kind: 'original' };
}
