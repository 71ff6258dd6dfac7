/** Which failure domains (rack, PDU, top-of-rack switch) each host sits in. */
import type { FailureDomain, Inventory } from '@firebreak/shared';

export const domainKey = (d: FailureDomain): string => `${d.kind}:${d.id}`;

export interface DomainMap {
  domainsOf(hostId: string): readonly FailureDomain[];
  hostsOf(domain: FailureDomain): readonly string[];
}

export function buildDomainMap(inventory: Inventory): DomainMap {
  const racks = new Map(inventory.racks.map((r) => [r.id, r]));
  const byHost = new Map<string, FailureDomain[]>();
  const members = new Map<string, string[]>();
  for (const host of inventory.hosts) {
    const rack = racks.get(host.rack);
    const domains: FailureDomain[] = [{ kind: 'rack', id: host.rack, site: host.site }];
    const pdu = host.pdu ?? rack?.pdu;
    const tor = host.tor ?? rack?.tor;
    if (pdu) domains.push({ kind: 'pdu', id: pdu, site: host.site });
    if (tor) domains.push({ kind: 'tor', id: tor, site: host.site });
    byHost.set(host.id, domains);
    for (const d of domains) {
      const key = domainKey(d);
      members.set(key, [...(members.get(key) ?? []), host.id]);
    }
  }
  return {
    domainsOf: (hostId) => byHost.get(hostId) ?? [],
    hostsOf: (domain) => members.get(domainKey(domain)) ?? [],
  };
}
