/**
 * How two device snapshots differ, one readable line per difference with the
 * device and the setting it names, e.g.
 *
 *   switch r1-tor port 7 (r1-h04) PVID: 1 → 106
 *   switch r1-tor VLAN 2101 egress: + port 7
 *   array site1-array1 mask 21:00:00:24:ff:00:00:03: + lun-db1-d-x
 *   host r2-h04 power: off → on
 *
 * Empty exactly when the snapshots serialise to the same bytes. The walk is
 * generic (every array in a snapshot is a sorted set, every record keyed by
 * id), so a field added to the snapshot later is still compared; only its
 * wording falls back to its path.
 */
import type { DeviceSnapshot } from './device-snapshot.ts';
import { byCodeUnit } from './device-snapshot.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

type Change =
  | { kind: 'changed'; path: string[]; before: Json; after: Json }
  | { kind: 'added' | 'removed'; path: string[]; value: Json }
  | { kind: 'member'; path: string[]; sign: '+' | '-'; member: Json };

export function diffDeviceSnapshots(before: DeviceSnapshot, after: DeviceSnapshot): string[] {
  const changes: Change[] = [];
  walk(before as unknown as Json, after as unknown as Json, [], changes);
  return changes.map((change) => describe(change, before, after));
}

/** Records keyed by id, where a key present on one side only is an entry added or removed (rather than a field). */
const COLLECTIONS: readonly string[][] = [
  ['hosts'],
  ['switches'],
  ['switches', '*', 'ports'],
  ['switches', '*', 'vlans'],
  ['arrays'],
  ['arrays', '*', 'luns'],
  ['arrays', '*', 'masks'],
  ['strayMasks'],
  ['hypervisors'],
  ['hypervisors', '*'],
];

const isCollection = (path: readonly string[]): boolean =>
  COLLECTIONS.some((pattern) => pattern.length === path.length && pattern.every((p, i) => p === '*' || p === path[i]));

const isRecord = (v: Json | undefined): v is { [key: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

function walk(before: Json | undefined, after: Json | undefined, path: string[], out: Change[]): void {
  // A set missing on one side is an empty set (an initiator's mask): list its members.
  if ((Array.isArray(before) || Array.isArray(after)) && (before === undefined || Array.isArray(before)) && (after === undefined || Array.isArray(after))) {
    const was = new Set((before ?? []).map((m) => JSON.stringify(m)));
    const now = new Set((after ?? []).map((m) => JSON.stringify(m)));
    const gone = [...was].filter((m) => !now.has(m));
    const come = [...now].filter((m) => !was.has(m));
    for (const m of gone) out.push({ kind: 'member', path, sign: '-', member: JSON.parse(m) as Json });
    for (const m of come) out.push({ kind: 'member', path, sign: '+', member: JSON.parse(m) as Json });
    // Same members, other bytes (order, a repeat, [] where nothing was): still a difference, said as such.
    if (gone.length === 0 && come.length === 0 && JSON.stringify(before) !== JSON.stringify(after)) {
      out.push({ kind: 'changed', path, before: before ?? null, after: after ?? null });
    }
    return;
  }
  if (before === undefined && after !== undefined) {
    if (isCollection(path) && isRecord(after)) return walk({}, after, path, out);
    out.push({ kind: 'added', path, value: after });
    return;
  }
  if (after === undefined && before !== undefined) {
    if (isCollection(path) && isRecord(before)) return walk(before, {}, path, out);
    out.push({ kind: 'removed', path, value: before });
    return;
  }
  if (isRecord(before) && isRecord(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort(compareKeys);
    for (const key of keys) walk(before[key], after[key], [...path, key], out);
    return;
  }
  if (JSON.stringify(before) !== JSON.stringify(after)) out.push({ kind: 'changed', path, before: before ?? null, after: after ?? null });
}

/** Numbers (ports, VLANs) in numeric order, the rest in code-unit order. */
function compareKeys(a: string, b: string): number {
  const na = /^\d+$/.test(a) ? Number(a) : NaN;
  const nb = /^\d+$/.test(b) ? Number(b) : NaN;
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return byCodeUnit(a, b);
}

const LABELS: Record<string, string> = {
  faults: 'fault',
  pendingReset: 'pending reset',
  bootOverride: 'boot override',
  bootError: 'boot error',
  isolated: 'isolated',
  bmcReachable: 'BMC reachable',
  bmcExtraLatencyMs: 'BMC extra latency ms',
  bmcFailNext: 'BMC failing next requests',
  extraLatencyMs: 'extra latency ms',
  jitterMs: 'jitter ms',
  pvid: 'PVID',
  sizeGiB: 'size GiB',
  cloneOf: 'clone of',
  xml: 'XML',
};

const label = (field: string): string => LABELS[field] ?? field;
const fields = (path: readonly string[]): string => path.map(label).join(' ');

function value(v: Json | undefined): string {
  if (v === null || v === undefined) return 'none';
  // Ids and words bare; anything that could read as a number, "none" or two words, quoted.
  if (typeof v === 'string') return /^[A-Za-z][\w.:/@-]*$/.test(v) && v !== 'none' ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(value).join(', ')}]`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** "<device> <setting>: <what changed>" */
function describe(change: Change, before: DeviceSnapshot, after: DeviceSnapshot): string {
  const [section, id = '', ...rest] = change.path;
  let subject: string;
  let setting: string[];
  switch (section) {
    case 'hosts':
      [subject, setting] = [`host ${id}`, rest];
      break;
    case 'switches': {
      const [kind, key = '', ...more] = rest;
      if (kind === 'ports') {
        // The cabled host makes a port line readable without the wiring at hand.
        const host = after.switches[id]?.ports[key]?.host ?? before.switches[id]?.ports[key]?.host ?? null;
        [subject, setting] = [`switch ${id} port ${key}${host === null ? '' : ` (${host})`}`, more];
      } else if (kind === 'vlans') [subject, setting] = [`switch ${id} VLAN ${key}`, more];
      else [subject, setting] = [`switch ${id}`, rest];
      break;
    }
    case 'arrays': {
      const [kind, key = '', ...more] = rest;
      if (kind === 'luns') [subject, setting] = [`array ${id} LUN ${key}`, more];
      else if (kind === 'masks') [subject, setting] = [`array ${id} mask ${key}`, more];
      else [subject, setting] = [`array ${id}`, rest];
      break;
    }
    case 'strayMasks':
      [subject, setting] = [`mask ${id} of LUNs no array serves`, rest];
      break;
    case 'hypervisors': {
      const [domain = '', ...more] = rest;
      [subject, setting] = [`hypervisor ${id} domain ${domain}`, more];
      break;
    }
    default:
      [subject, setting] = [change.path.join(' '), []];
  }
  const head = setting.length > 0 ? `${subject} ${fields(setting)}` : subject;
  switch (change.kind) {
    case 'changed':
      return `${head}: ${setting.at(-1) === 'xml' ? xmlChange(change.before, change.after) : `${value(change.before)} → ${value(change.after)}`}`;
    case 'added':
      return `${head}: + ${entity(change.path, change.value)}`;
    case 'removed':
      return `${head}: - ${entity(change.path, change.value)}`;
    case 'member':
      return `${head}: ${change.sign} ${member(change.path, change.member)}`;
  }
}

/** A whole entry that appeared or went, in a few words. */
function entity(path: readonly string[], v: Json): string {
  if (!isRecord(v)) return value(v);
  if (path[0] === 'switches' && path[2] === 'vlans') {
    return `${value(v['name'])} (egress ${portsOf(v['egress'])}; untagged ${portsOf(v['untagged'])})`;
  }
  if (path[0] === 'arrays' && path[2] === 'luns') {
    return v['cloneOf'] === null ? `${value(v['sizeGiB'])} GiB` : `clone of ${value(v['cloneOf'])}, ${value(v['sizeGiB'])} GiB`;
  }
  if (path[0] === 'hypervisors') return `defined, ${value(v['state'])} (guest ${value(v['phase'])})`;
  const { xml: _xml, ...shown } = v;
  return JSON.stringify(shown);
}

function member(path: readonly string[], m: Json): string {
  const field = path.at(-1);
  if (path[0] === 'switches' && (field === 'egress' || field === 'untagged')) return `port ${value(m)}`;
  return value(m);
}

function portsOf(v: Json | undefined): string {
  return Array.isArray(v) && v.length > 0 ? v.map(value).join(', ') : 'none';
}

/** A definition changed: its first differing line, not the whole XML. */
function xmlChange(before: Json, after: Json): string {
  const a = typeof before === 'string' ? before.split('\n') : [];
  const b = typeof after === 'string' ? after.split('\n') : [];
  const at = a.findIndex((line, i) => line !== b[i]);
  const line = at === -1 ? a.length : at;
  return `differs from line ${line + 1}: ${JSON.stringify(a[line]?.trim() ?? '')} → ${JSON.stringify(b[line]?.trim() ?? '')}`;
}
