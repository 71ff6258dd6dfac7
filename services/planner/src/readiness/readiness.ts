/**
 * What-if readiness: for each failure domain of a site, the plan an incident
 * would get if the domain failed now, with the hosts the planner could take
 * now. Pure: a function of the inventory and the planner's view of the fleet,
 * and it runs the real placement engine once per distinct domain.
 */
import { FirebreakError, type DomainReadiness, type FailureDomain, type Host, type Inventory, type Lun, type ReadinessReport, type Server } from '@firebreak/shared';
import type { FleetView } from '../incident-manager.ts';
import { planPlacement, type PlacementPolicy, type Plan } from '../placement/index.ts';
import { siteDomains, type SiteDomains } from '@firebreak/shared';

export interface ReadinessInput {
  inventory: Inventory;
  site: string;
  view: FleetView;
  policy?: Partial<PlacementPolicy>;
  /** Default: every rack, PDU and ToR of the site (the site as a whole only when asked for). */
  domains?: readonly FailureDomain[];
  at: number;
}

/** One report's work: the domains to check and how to check one. */
export interface ReadinessRun {
  readonly domains: readonly FailureDomain[];
  evaluate(domain: FailureDomain): DomainReadiness;
}

/** Everything in the report at once; the service steps through a run instead, so it can yield between domains. */
export function readinessReport(input: ReadinessInput): ReadinessReport {
  const run = readinessRun(input);
  return { site: input.site, at: input.at, domains: run.domains.map((d) => run.evaluate(d)) };
}

const NOT_RECOVERED = ' not recovered: ';

function unplacedReason(u: Plan['unplaced'][number]): string {
  const at = u.explanation.indexOf(NOT_RECOVERED);
  return `${u.reason}: ${at < 0 ? u.explanation : u.explanation.slice(at + NOT_RECOVERED.length)}`;
}

/** Throws a non-retryable error naming the domain when the site has no such domain. */
export function readinessRun(input: ReadinessInput, domainsOfSite: SiteDomains = siteDomains(input.inventory, input.site)): ReadinessRun {
  const { inventory, site, view } = input;
  const domains = input.domains ?? domainsOfSite.all;
  for (const d of domains) {
    if (d.site !== site) throw FirebreakError.permanent(`failure domain ${d.kind} ${d.id} is in site ${d.site}; this report is for site ${site}`);
    if (domainsOfSite.hostsOf(d) === undefined) throw FirebreakError.permanent(`site ${site} has no ${d.kind} ${d.id} (no host of the inventory is in it)`);
  }

  const serversById = new Map(inventory.servers.map((s) => [s.id, s]));
  const serversOnHost = new Map<string, string[]>();
  for (const [server, at] of view.serverHosts) {
    const list = serversOnHost.get(at.host);
    if (list === undefined) serversOnHost.set(at.host, [server]);
    else list.push(server);
  }
  const down = new Set(view.down);
  const hypervisorsWithVms = new Set(view.existingVms.map((vm) => vm.hypervisor));
  const candidates = candidateClasses(inventory, view.candidates, hypervisorsWithVms);
  const lunsById = new Map(inventory.luns.map((l) => [l.id, l]));
  const lunsOf = (servers: readonly Server[]): Lun[] => servers.flatMap((s) => s.luns.map((id) => lunsById.get(id)).filter((l) => l !== undefined));
  // Existing VMs and their hypervisors are in every plan's inventory, candidates or not.
  const vmServerIds = new Set(view.existingVms.map((vm) => vm.server));
  const vmHypervisors = inventory.hosts.filter((h) => hypervisorsWithVms.has(h.id));
  const vmServers = inventory.servers.filter((s) => vmServerIds.has(s.id));
  const byId = <T extends { id: string }>(...lists: (readonly T[])[]): T[] => [...new Map(lists.flat().map((x) => [x.id, x])).values()];
  const memo = new Map<string, Omit<DomainReadiness, 'domain'>>();

  const evaluate = (domain: FailureDomain): DomainReadiness => {
    const hosts = domainsOfSite.hostsOf(domain) as readonly Host[];
    const servers: string[] = [];
    let busy = 0;
    for (const host of hosts) {
      // Servers of a host already down are in an open incident's hands, not a what-if.
      const on = down.has(host.id) ? undefined : serversOnHost.get(host.id);
      if (on === undefined || on.length === 0) continue;
      busy++;
      servers.push(...on);
    }
    servers.sort();
    if (servers.length === 0) return { domain, hosts: 0, servers: 0, ready: true, bareMetal: 0, vms: 0, conversions: 0, preemptions: 0, unplaced: [] };
    // As an incident would: every host of the domain failed, and the racks they stand in out of bounds.
    const racks = [...new Set(hosts.map((h) => h.rack))].sort();
    const key = `${racks.join(',')}|${servers.join(',')}`;
    let outcome = memo.get(key);
    if (outcome === undefined) {
      const domainServers = servers.map((id) => serversById.get(id) as Server);
      const offered = candidates.enough(domainServers.map((s) => s.arch), new Set(racks));
      const plan = planPlacement({
        // Only what this plan can look at: the engine scans the inventory's hosts, servers and LUNs on every call.
        inventory: { ...inventory, hosts: byId(offered, hosts, vmHypervisors), servers: byId(domainServers, vmServers), luns: lunsOf(domainServers) },
        servers,
        candidates: offered.map((h) => h.id),
        failed: { hosts: hosts.map((h) => h.id), racks },
        ...(input.policy !== undefined && { policy: input.policy }),
        existingVms: view.existingVms,
      });
      outcome = {
        hosts: busy,
        servers: servers.length,
        ready: plan.unplaced.length === 0,
        bareMetal: plan.assignments.filter((a) => a.mode === 'bare-metal').length,
        vms: plan.assignments.filter((a) => a.mode === 'vm').length,
        conversions: plan.conversions.length,
        preemptions: plan.preemptions.length,
        unplaced: plan.unplaced.map((u) => ({ server: u.server, priority: serversById.get(u.server)?.priority ?? 3, reason: unplacedReason(u) })),
      };
      memo.set(key, outcome);
    }
    return { domain, ...outcome };
  };
  return { domains, evaluate };
}

interface CandidateClasses {
  /**
   * Candidates outside the failed racks, enough of each kind for servers of
   * these architectures: at most one per server of the class's architecture.
   */
  enough(serverArchs: readonly string[], failedRacks: ReadonlySet<string>): Host[];
}

/**
 * A plan takes at most one host per server, and the engine treats hosts alike
 * in everything it looks at (role, architecture, fabrics, size, workload
 * priority, convertibility) as interchangeable, taking the lowest ids first.
 * So the lowest-id N of each such class serve a domain of N servers as well
 * as the whole class: on a 10,000-host site this halves the engine's work per
 * domain. Hypervisors already running VMs differ in what is left on them and
 * are each their own class.
 */
function candidateClasses(inventory: Inventory, candidateIds: readonly string[], hypervisorsWithVms: ReadonlySet<string>): CandidateClasses {
  const wanted = new Set(candidateIds);
  const switchFabric = new Map(inventory.switches.map((s) => [s.id, s.fabric]));
  const classes = new Map<string, { arch: string; hosts: Host[] }>();
  for (const host of inventory.hosts) {
    if (!wanted.has(host.id)) continue;
    const fabrics = [...new Set(host.nics.map((n) => switchFabric.get(n.switch) ?? `?switch:${n.switch}`))].sort().join(',');
    const key = [
      host.role,
      host.arch,
      fabrics,
      host.hba?.fabric ?? '',
      host.cpus,
      host.memoryGiB,
      host.workload?.priority ?? '',
      host.hypervisorCapable,
      hypervisorsWithVms.has(host.id) ? host.id : '',
    ].join('|');
    let entry = classes.get(key);
    if (entry === undefined) classes.set(key, (entry = { arch: host.arch, hosts: [] }));
    entry.hosts.push(host);
  }
  for (const entry of classes.values()) entry.hosts.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    enough(serverArchs, failedRacks) {
      const perArch = new Map<string, number>();
      for (const arch of serverArchs) perArch.set(arch, (perArch.get(arch) ?? 0) + 1);
      const out: Host[] = [];
      for (const { arch, hosts } of classes.values()) {
        const cap = perArch.get(arch) ?? 0;
        let taken = 0;
        for (let i = 0; i < hosts.length && taken < cap; i++) {
          const host = hosts[i] as Host;
          if (failedRacks.has(host.rack)) continue;
          out.push(host);
          taken++;
        }
      }
      return out;
    },
  };
}
