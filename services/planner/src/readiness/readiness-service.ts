/**
 * The leader's readiness duty: publish the site's what-if report on
 * fb.readiness.<site> every interval and after every closed incident, and
 * answer checks on fb.readiness-check.
 *
 * Checks go to every site's leader (one queue group per site, so standby or
 * departing planners of one site never answer twice). A leader stays silent
 * on a check for another site rather than refusing it: the requester takes
 * the first reply, and a refusal from the wrong site would beat the right
 * site's answer. A site nobody plans for therefore shows as a timeout.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { ReadinessReport, topics, type Bus, type FailureDomain, type Inventory, type Logger, type Responder } from '@firebreak/shared';
import type { FleetView } from '../incident-manager.ts';
import type { PlacementPolicy } from '../placement/index.ts';
import { siteDomains } from '@firebreak/shared';
import { readinessRun, type ReadinessInput } from './readiness.ts';

export interface ReadinessServiceOptions {
  bus: Pick<Bus, 'serve' | 'publishCore'>;
  logger: Logger;
  inventory: Inventory;
  site: string;
  /** The planner's view now; read once per report. */
  view: () => FleetView;
  policy?: Partial<PlacementPolicy>;
  /** Between periodic reports; 0 for none (reports after closed incidents and checks still happen). */
  intervalMs: number;
  clock?: () => number;
}

export interface ReadinessService {
  /** Publishes a fresh report soon (capacity changed); calls while one is being made coalesce into one more. */
  publishSoon(): void;
  stop(): Promise<void>;
}

/** Keeps the event loop responsive on a big site: incidents go on while a report is made. */
const SLICE_MS = 20;

export async function startReadiness(options: ReadinessServiceOptions): Promise<ReadinessService> {
  const { bus, logger, inventory, site } = options;
  const clock = options.clock ?? Date.now;
  const domains = siteDomains(inventory, site);
  let stopped = false;

  const compute = async (only?: readonly FailureDomain[]): Promise<ReadinessReport> => {
    const at = clock();
    const input: ReadinessInput = { inventory, site, view: options.view(), at };
    if (options.policy !== undefined) input.policy = options.policy;
    if (only !== undefined) input.domains = only;
    const run = readinessRun(input, domains);
    const out: ReadinessReport['domains'] = [];
    let slice = performance.now();
    for (const domain of run.domains) {
      out.push(run.evaluate(domain));
      if (performance.now() - slice > SLICE_MS) {
        await yieldToEventLoop();
        slice = performance.now();
      }
    }
    return { site, at, domains: out };
  };

  type Trigger = 'interval' | 'incident-closed';
  let publishing: Promise<void> | undefined;
  let pending: Trigger | undefined;
  const publish = async (trigger: Trigger): Promise<void> => {
    const started = performance.now();
    try {
      const report = await compute();
      if (stopped) return;
      bus.publishCore(topics.readiness(site), report);
      const notReady = report.domains.filter((d) => !d.ready);
      logger.info(
        {
          site,
          trigger,
          domains: report.domains.length,
          notReady: notReady.length,
          unplaced: notReady.reduce((sum, d) => sum + d.unplaced.length, 0),
          firstNotReady: notReady.slice(0, 5).map((d) => `${d.domain.kind} ${d.domain.id}`),
          ms: Math.round(performance.now() - started),
        },
        notReady.length === 0 ? 'readiness: every failure domain recoverable' : `readiness: ${notReady.length} failure domain(s) not recoverable`,
      );
    } catch (err) {
      logger.error({ site, trigger, err }, 'readiness report failed');
    }
  };
  const schedule = (trigger: Trigger): void => {
    if (stopped) return;
    if (publishing !== undefined) {
      pending = trigger;
      return;
    }
    publishing = publish(trigger).finally(() => {
      publishing = undefined;
      const next = pending;
      pending = undefined;
      if (next !== undefined) schedule(next);
    });
  };

  const responder: Responder = await bus.serve(
    topics.readinessCheck,
    ReadinessReport,
    async (check) => {
      if (check.site !== site) return undefined;
      return compute(check.domains);
    },
    { queue: `planner-readiness-${site}` },
  );
  const timer = options.intervalMs > 0 ? setInterval(() => schedule('interval'), options.intervalMs) : undefined;
  if (timer !== undefined) schedule('interval');

  return {
    publishSoon: () => schedule('incident-closed'),
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await responder.stop();
      await publishing;
    },
  };
}
