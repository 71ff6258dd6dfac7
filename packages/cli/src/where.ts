/**
 * `firebreak where` and `firebreak history`: the fleet ledger, read from
 * Redis. Which physical host runs what now (VMs under their hypervisor),
 * since when and why; and everything one server or host has been.
 */
import { parseArgs } from 'node:util';
import type { HostEntry, HostStatus, LedgerCause, LedgerHistoryRecord, LedgerState, ServerEntry, ServerPlacement } from '@firebreak/shared';
import { resolveUrls, withStore } from './connections.ts';
import { UsageError } from './usage-error.ts';

export const whereUsage = `  where [SERVER|HOST] [--json] [--redis-url URL]
      where every server runs now, host by host (VMs under their hypervisor),
      since when and why, from the fleet ledger; or one server's or host's entry`;

export const historyUsage = `  history SERVER|HOST [--json] [--redis-url URL]
      everything the fleet ledger recorded of one server or host, oldest first`;

const options = { json: { type: 'boolean', default: false }, 'redis-url': { type: 'string' } } as const;

const when = (at: number): string => new Date(at).toISOString().replace('.000Z', 'Z');
const why = (cause: LedgerCause, token: number): string => `${cause.kind} ${cause.id}${token > 0 ? ` (token ${token})` : ''}`;

export function describePlacement(p: ServerPlacement): string {
  switch (p.state) {
    case 'bare-metal':
      return `bare metal on ${p.host}`;
    case 'vm':
      return `VM on hypervisor ${p.hypervisor}`;
    case 'down':
      return `down (was on ${p.host}), being recovered`;
    case 'unrecovered':
      return `unrecovered (was on ${p.host}): ${p.reason}`;
    case 'unplaced':
      return 'placed nowhere';
  }
}

export function describeStatus(s: HostStatus): string {
  switch (s.role) {
    case 'home':
      return `runs ${s.server}`;
    case 'hypervisor':
      return `hypervisor${s.converted ? ' (converted by a recovery)' : ''} carrying ${s.servers.length === 0 ? 'no VMs' : s.servers.join(', ')}`;
    case 'borrowed':
      return `borrowed by drill ${s.drill}`;
    case 'quarantined':
      return `quarantined: ${s.reason}`;
    default:
      return s.role;
  }
}

function emptyLedger(): UsageError {
  return new UsageError('the fleet ledger is empty: no planner has been elected against this Redis yet (start the services, e.g. "firebreak up")');
}

function notFound(name: string, ledger: LedgerState): UsageError {
  return new UsageError(`no server or host "${name}" in the fleet ledger (${ledger.servers.size} servers, ${ledger.hosts.size} hosts); "firebreak where" lists them`);
}

function serverLine(id: string, e: ServerEntry): string {
  return `${id}: ${describePlacement(e.placement)} since ${when(e.since)}, ${why(e.why, e.token)}`;
}

function hostLine(id: string, e: HostEntry): string {
  return `${id}: ${describeStatus(e.status)} since ${when(e.since)}, ${why(e.why, e.token)}`;
}

/** Every host with what it runs, VMs indented under their hypervisor; then the servers that run nowhere. */
function renderFleet(ledger: LedgerState): string {
  const lines: string[] = [];
  const vmsOn = new Map<string, string[]>();
  for (const [id, e] of ledger.servers) if (e.placement.state === 'vm') vmsOn.set(e.placement.hypervisor, [...(vmsOn.get(e.placement.hypervisor) ?? []), id]);
  for (const id of [...ledger.hosts.keys()].sort()) {
    const e = ledger.hosts.get(id) as HostEntry;
    lines.push(hostLine(id, e));
    for (const vm of (vmsOn.get(id) ?? []).sort()) lines.push(`  └ ${serverLine(vm, ledger.servers.get(vm) as ServerEntry)}`);
  }
  const nowhere = [...ledger.servers].filter(([, e]) => e.placement.state !== 'bare-metal' && e.placement.state !== 'vm').sort(([a], [b]) => a.localeCompare(b));
  if (nowhere.length > 0) {
    lines.push('', 'servers not running:');
    for (const [id, e] of nowhere) lines.push(`  ${serverLine(id, e)}`);
  }
  return lines.join('\n');
}

const toJson = (map: Map<string, unknown>): Record<string, unknown> => Object.fromEntries([...map].sort(([a], [b]) => a.localeCompare(b)));

export async function where(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
  if (positionals.length > 1) throw new UsageError(`where takes at most one SERVER or HOST, got ${positionals.join(' ')}`);
  const { redisUrl } = await resolveUrls({ redisUrl: values['redis-url'] });
  const ledger = await withStore(redisUrl, (store) => store.ledger.read());
  if (ledger.servers.size + ledger.hosts.size === 0) throw emptyLedger();
  const [name] = positionals;
  if (name === undefined) {
    console.log(values.json ? JSON.stringify({ version: 1, servers: toJson(ledger.servers), hosts: toJson(ledger.hosts) }, null, 2) : renderFleet(ledger));
    return 0;
  }
  const server = ledger.servers.get(name);
  const host = ledger.hosts.get(name);
  if (server === undefined && host === undefined) throw notFound(name, ledger);
  if (values.json) {
    console.log(JSON.stringify({ version: 1, ...(server && { server: { id: name, ...server } }), ...(host && { host: { id: name, ...host } }) }, null, 2));
    return 0;
  }
  if (server) console.log(serverLine(name, server));
  if (host) {
    console.log(hostLine(name, host));
    for (const [vm, e] of ledger.servers) if (e.placement.state === 'vm' && e.placement.hypervisor === name) console.log(`  └ ${serverLine(vm, e)}`);
  }
  return 0;
}

function historyLine(r: LedgerHistoryRecord): string {
  const what = r.placement ? describePlacement(r.placement) : r.status ? describeStatus(r.status) : '?';
  return `${when(r.at)}  v${r.version}  ${what}  (${why(r.why, r.token)})`;
}

export async function history(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) throw new UsageError('history takes one SERVER or HOST, e.g. "firebreak history web-01"');
  const { redisUrl } = await resolveUrls({ redisUrl: values['redis-url'] });
  const found = await withStore(redisUrl, async (store) => {
    const [server, host] = await Promise.all([store.ledger.history('server', name), store.ledger.history('host', name)]);
    return { server, host, ledger: server.length + host.length === 0 ? await store.ledger.read() : undefined };
  });
  if (found.ledger) throw found.ledger.servers.size + found.ledger.hosts.size === 0 ? emptyLedger() : notFound(name, found.ledger);
  if (values.json) {
    console.log(JSON.stringify({ version: 1, id: name, ...(found.server.length > 0 && { server: found.server }), ...(found.host.length > 0 && { host: found.host }) }, null, 2));
    return 0;
  }
  if (found.server.length > 0) console.log([`server ${name}:`, ...found.server.map((r) => `  ${historyLine(r)}`)].join('\n'));
  if (found.host.length > 0) console.log([`host ${name}:`, ...found.host.map((r) => `  ${historyLine(r)}`)].join('\n'));
  return 0;
}
