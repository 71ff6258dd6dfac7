/**
 * `firebreak plan --what-if [<kind> <id>]`: asks the planner what it would do
 * if a failure domain (or each domain of the site) failed now, with today's
 * spares and repurposable hosts. Exit 0 when every domain asked about is
 * ready (every server would be placed), 1 when one is not, 2 on errors.
 */
import { parseArgs } from 'node:util';
import { RequestError, ReadinessReport, topics, type DomainReadiness, type ReadinessCheck } from '@firebreak/shared';
import { resolveUrls, withBus } from './connections.ts';
import { checkScope, knownInventory, parseDomain } from './domain-args.ts';
import { parseDuration, siteFrom } from './drill.ts';
import { UsageError } from './usage-error.ts';

export const planUsage = `  plan --what-if [rack|pdu|tor|site <id>] [--site S] [--timeout 15s] [--json] [--nats-url URL]
      what the planner would do if the domain (default: each one of the site)
      failed now; exit 0 if ready, 1 if a server would stay down`;

const DEFAULT_TIMEOUT_S = 15;

export async function plan(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'what-if': { type: 'boolean', default: false },
      site: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      'nats-url': { type: 'string' },
    },
  });
  if (!values['what-if']) throw new UsageError(`firebreak plan needs --what-if: firebreak plan --what-if rack r2`);
  const timeoutMs = (values.timeout === undefined ? DEFAULT_TIMEOUT_S : parseDuration(values.timeout, '--timeout')) * 1000;
  const known = await knownInventory();
  const site = siteFrom(values.site, known ? [...new Set(known.inventory.hosts.map((h) => h.site))] : []);
  const check: ReadinessCheck = { site };
  if (positionals.length > 0) {
    const domain = parseDomain(positionals, site, 'plan --what-if');
    if (known) checkScope({ domain }, known.inventory, known.source);
    check.domains = [domain];
  }
  const { natsUrl } = await resolveUrls({ natsUrl: values['nats-url'] });
  const report = await withBus(natsUrl, async (bus) => {
    try {
      return await bus.request(topics.readinessCheck, check, ReadinessReport, { timeoutMs, responder: 'planner' });
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      // A refusal names the bad input; silence means no planner leads this site.
      const hint = err.retryable ? `; is a planner running for site "${site}"? (firebreak up starts one)` : '';
      throw new UsageError(`what-if for ${site} failed: ${err.message}${hint}`);
    }
  });
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else console.log(renderReadiness(report));
  return report.domains.every((d) => d.ready) ? 0 : 1;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function renderDomain(d: DomainReadiness): string[] {
  const verdict = d.ready ? 'READY' : 'NOT READY';
  const lines = [
    `${d.domain.kind} ${d.domain.id}: ${verdict}  ${count(d.servers, 'server')} on ${count(d.hosts, 'host')}: ` +
      `${d.bareMetal} bare metal, ${count(d.vms, 'VM')}, ${count(d.conversions, 'conversion')} to hypervisor, ${count(d.preemptions, 'preemption')}`,
  ];
  if (d.unplaced.length > 0) {
    lines.push(`  ${count(d.unplaced.length, 'server')} would stay down:`);
    for (const u of d.unplaced) lines.push(`    ${u.server} (tier ${u.priority}): ${u.reason}`);
  }
  return lines;
}

export function renderReadiness(report: ReadinessReport): string {
  const ready = report.domains.filter((d) => d.ready).length;
  return [
    `what-if at ${report.site}: ${ready} of ${count(report.domains.length, 'failure domain')} ready`,
    ...report.domains.flatMap(renderDomain),
  ].join('\n');
}
