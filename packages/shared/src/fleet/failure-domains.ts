/**
 * A site's failure domains and their hosts, as the planner, readiness and the
 * console read them (the detector's correlation should move onto this too):
 * every host is in its rack, and in its own PDU and top-of-rack switch or
 * else its rack's.
 */
import type { FailureDomain, FailureDomainKind } from '../schemas/common.schema.ts';
import type { Host, Inventory } from '../schemas/inventory.schema.ts';

export const domainKey = (d: Pick<FailureDomain, 'kind' | 'id'>): string => `${d.kind}:${d.id}`;

const kindOrder: Record<FailureDomainKind, number> = { rack: 0, pdu: 1, tor: 2, site: 3 };

export interface SiteDomains {
  /** Every rack, PDU and ToR of the site that holds a host: racks first, then PDUs, then ToRs, each by id. */
  readonly all: readonly FailureDomain[];
  /** The hosts of a domain of this site (the site itself included); undefined for a domain the site does not have. */
  hostsOf(domain: Pick<FailureDomain, 'kind' | 'id'>): readonly Host[] | undefined;
}

export function siteDomains(inventory: Inventory, site: string): SiteDomains {
  const racks = new Map(inventory.racks.map((r) => [r.id, r]));
  const members = new Map<string, { domain: FailureDomain; hosts: Host[] }>();
  const add = (kind: FailureDomainKind, id: string, host: Host): void => {
    const key = domainKey({ kind, id });
    let entry = members.get(key);
    if (entry === undefined) members.set(key, (entry = { domain: { kind, id, site }, hosts: [] }));
    entry.hosts.push(host);
  };
  const siteHosts: Host[] = [];
  for (const host of inventory.hosts) {
    if (host.site !== site) continue;
    siteHosts.push(host);
    const rack = racks.get(host.rack);
    add('rack', host.rack, host);
    const pdu = host.pdu ?? rack?.pdu;
    const tor = host.tor ?? rack?.tor;
    if (pdu !== undefined) add('pdu', pdu, host);
    if (tor !== undefined) add('tor', tor, host);
  }
  const all = [...members.values()]
    .map((m) => m.domain)
    .sort((a, b) => kindOrder[a.kind] - kindOrder[b.kind] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    all,
    hostsOf: (domain) => (domain.kind === 'site' ? (domain.id === site && siteHosts.length > 0 ? siteHosts : undefined) : members.get(domainKey(domain))?.hosts),
  };
}
