/**
 * Failure domains on the command line, spelled as `burn` spells them:
 * `rack r2`, `pdu r1-pdu`, `tor r1-tor`, `site site1`, or `host h1 [h2 …]`.
 * Checked against the inventory when one is at hand, so a typo is refused
 * here rather than becoming an empty drill.
 */
import { FailureDomainKind, Id, loadInventoryFile, type DrillScope, type FailureDomain, type Inventory } from '@firebreak/shared';
import { readLabState, stateDir } from './lab-state.ts';
import { UsageError } from './usage-error.ts';

export const domainKinds = ['rack', 'pdu', 'tor', 'site', 'host'] as const;
export const domainSyntax = 'rack|pdu|tor|site <id> | host <id>...';

function checkId(value: string, what: string): string {
  if (!Id.safeParse(value).success) throw new UsageError(`${what} "${value}" is not a valid id (letters, digits, "-" or "_")`);
  return value;
}

/** Parses `<kind> <id>` (or `host <id>...`) into a drill scope at `site`. */
export function parseScope(positionals: readonly string[], site: string, command: string): DrillScope {
  const [kind, ...ids] = positionals;
  if (kind === undefined || ids.length === 0) throw new UsageError(`usage: firebreak ${command} ${domainSyntax}`);
  if (kind === 'host') return { site, hosts: ids.map((h) => checkId(h, 'host')) };
  const parsedKind = FailureDomainKind.safeParse(kind);
  if (!parsedKind.success) throw new UsageError(`unknown domain kind "${kind}": use ${domainKinds.join(', ')} (e.g. firebreak ${command} rack r2)`);
  if (ids.length > 1) throw new UsageError(`one ${kind} at a time, got ${ids.join(' ')}`);
  const id = checkId(ids[0] as string, kind);
  return { domain: parsedKind.data === 'site' ? { kind: 'site', id, site: id } : { kind: parsedKind.data, id, site } };
}

export function parseDomain(positionals: readonly string[], site: string, command: string): FailureDomain {
  const scope = parseScope(positionals, site, command);
  if (!('domain' in scope)) throw new UsageError(`firebreak ${command} takes a failure domain (rack, pdu, tor or site), not hosts`);
  return scope.domain;
}

export function describeScope(scope: DrillScope): string {
  return 'domain' in scope ? `${scope.domain.kind} ${scope.domain.id} at ${scope.domain.site}` : `host(s) ${scope.hosts.join(', ')} at ${scope.site}`;
}

/** The inventory the system runs with, if the CLI can tell: FB_INVENTORY, else the running lab's. */
export async function knownInventory(): Promise<{ inventory: Inventory; source: string } | undefined> {
  const file = process.env.FB_INVENTORY || (await readLabState(stateDir()))?.inventoryPath;
  if (!file) return undefined;
  try {
    return { inventory: await loadInventoryFile(file), source: file };
  } catch {
    // An unreadable or invalid file is the services' problem to report; the planner checks the scope too.
    return undefined;
  }
}

/** Refuses a scope that names nothing in the inventory. */
export function checkScope(scope: DrillScope, inventory: Inventory, source: string): void {
  const hosts = inventory.hosts;
  const fix = `; see the inventory ${source}`;
  if (!('domain' in scope)) {
    const missing = scope.hosts.filter((id) => !hosts.some((h) => h.id === id && h.site === scope.site));
    if (missing.length > 0) throw new UsageError(`no host ${missing.map((m) => `"${m}"`).join(', ')} at site "${scope.site}"${fix}`);
    return;
  }
  const { kind, id, site } = scope.domain;
  // A host's PDU and ToR default to its rack's, as the detector and planner read them.
  const racks = new Map(inventory.racks.map((r) => [r.id, r]));
  const member = (h: Inventory['hosts'][number]): string | undefined =>
    kind === 'rack' ? h.rack : kind === 'pdu' ? (h.pdu ?? racks.get(h.rack)?.pdu) : (h.tor ?? racks.get(h.rack)?.tor);
  const inDomain = hosts.filter((h) => h.site === site && (kind === 'site' ? id === site : member(h) === id));
  if (inDomain.length === 0) throw new UsageError(`no ${kind} "${id}" with hosts at site "${site}"${fix}`);
}
