/**
 * The judge of "leaves no trace": every device state the system's devices
 * hold, the lab's (lab.deviceSnapshot(): power, boot overrides, switch ports
 * and VLAN tables, LUNs, clones and masks, VMs) and the boot service's entries
 * (GET /v1/hosts), taken before something and compared with a snapshot taken
 * after it. Equal means the same bytes; a failure lists every difference.
 */
import assert from 'node:assert/strict';
import { canonicalJson, diffDeviceSnapshots, type DeviceSnapshot, type Lab } from '@firebreak/lab';

/** One boot entry as the service serves it, keyed by its MAC in the snapshot. */
export interface BootEntrySnapshot {
  /** The inventory host whose NIC has the MAC (null for none): wiring, not served, so a diff line can name the host. */
  host: string | null;
  /** Every other field exactly as GET /v1/hosts gave it (server, image, imageUrl, attach …). */
  entry: Record<string, unknown>;
}

export interface SystemDeviceSnapshot {
  lab: DeviceSnapshot;
  /** By canonical MAC. */
  boot: Record<string, BootEntrySnapshot>;
}

/** What a snapshot reads: RunningSystem has both. */
export interface SnapshotSources {
  lab: Pick<Lab, 'deviceSnapshot' | 'inventory'>;
  bootUrl: string;
}

export async function takeDeviceSnapshot(system: SnapshotSources): Promise<SystemDeviceSnapshot> {
  const boot = await bootEntries(system);
  // After the fetch: the lab's part is read in one go, between two events of the loop.
  return { lab: system.lab.deviceSnapshot(), boot };
}

async function bootEntries({ lab, bootUrl }: SnapshotSources): Promise<SystemDeviceSnapshot['boot']> {
  const res = await fetch(`${bootUrl}/v1/hosts`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`boot service answered GET /v1/hosts with ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { hosts?: unknown };
  if (!Array.isArray(body.hosts)) throw new Error(`boot service's GET /v1/hosts has no hosts list: ${JSON.stringify(body).slice(0, 200)}`);
  const hostOfMac = new Map(lab.inventory.hosts.flatMap((h) => h.nics.map((n) => [n.mac.toLowerCase(), h.id] as const)));
  const entries: [string, BootEntrySnapshot][] = [];
  for (const item of body.hosts as unknown[]) {
    const { mac, ...entry } = item as Record<string, unknown>;
    if (typeof mac !== 'string') throw new Error(`boot service listed an entry without a MAC: ${JSON.stringify(item)}`);
    entries.push([mac, { host: hostOfMac.get(mac.toLowerCase()) ?? null, entry }]);
  }
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function serializeSystemDeviceSnapshot(snapshot: SystemDeviceSnapshot): string {
  return canonicalJson(snapshot);
}

/** One line per difference, the lab's first, then the boot entries'; empty exactly when the snapshots serialise alike. */
export function diffSystemDeviceSnapshots(before: SystemDeviceSnapshot, after: SystemDeviceSnapshot): string[] {
  const lines = [...diffDeviceSnapshots(before.lab, after.lab), ...diffBootEntries(before.boot, after.boot)];
  if (lines.length === 0 && serializeSystemDeviceSnapshot(before) !== serializeSystemDeviceSnapshot(after)) {
    // Not expected; but the judge must never call unequal bytes equal.
    lines.push('the snapshots serialise differently, yet no difference was found in them: compare their JSON');
  }
  return lines;
}

function diffBootEntries(before: SystemDeviceSnapshot['boot'], after: SystemDeviceSnapshot['boot']): string[] {
  const lines: string[] = [];
  const macs = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const mac of macs) {
    const was = before[mac];
    const now = after[mac];
    const name = `boot entry ${mac}${(now ?? was)?.host ? ` (${(now ?? was)?.host})` : ''}`;
    if (was === undefined && now !== undefined) lines.push(`${name}: + ${describeEntry(now.entry)}`);
    else if (now === undefined && was !== undefined) lines.push(`${name}: - ${describeEntry(was.entry)}`);
    else if (was !== undefined && now !== undefined) {
      for (const field of [...new Set([...Object.keys(was.entry), ...Object.keys(now.entry)])].sort()) {
        const [a, b] = [was.entry[field], now.entry[field]];
        if (canonicalJson(a) !== canonicalJson(b)) lines.push(`${name} ${field}: ${show(a)} → ${show(b)}`);
      }
    }
  }
  return lines;
}

function describeEntry(entry: Record<string, unknown>): string {
  return Object.keys(entry)
    .sort()
    .map((field) => `${field} ${show(entry[field])}`)
    .join(', ');
}

/** Words and URLs as they are, anything else as canonical JSON (so `"7"` still reads apart from `7`), absent as none. */
function show(value: unknown): string {
  if (value === undefined) return 'none';
  return typeof value === 'string' && /^[A-Za-z][^\s"]*$/.test(value) ? value : canonicalJson(value);
}

const MAX_LINES = 100;

/** Fails with every difference (up to MAX_LINES) when the devices are not exactly as before. */
export function expectSameDevices(before: SystemDeviceSnapshot, after: SystemDeviceSnapshot, what: string): void {
  const lines = diffSystemDeviceSnapshots(before, after);
  if (lines.length === 0) return;
  const shown = lines.slice(0, MAX_LINES).map((l) => `  ${l}`);
  if (lines.length > MAX_LINES) shown.push(`  … and ${lines.length - MAX_LINES} more`);
  assert.fail(`${what}: ${lines.length} device difference${lines.length === 1 ? '' : 's'} from before:\n${shown.join('\n')}`);
}

/**
 * Devices land changes late (a power-off after the BMC's delay): takes
 * snapshots until one equals `before` or `timeoutMs` passes, then judges the
 * last one with expectSameDevices.
 */
export async function expectDevicesReturnTo(
  system: SnapshotSources,
  before: SystemDeviceSnapshot,
  what: string,
  { timeoutMs = 10_000, pollMs = 100 }: { timeoutMs?: number; pollMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let now = await takeDeviceSnapshot(system);
  while (diffSystemDeviceSnapshots(before, now).length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    now = await takeDeviceSnapshot(system);
  }
  expectSameDevices(before, now, what);
}
