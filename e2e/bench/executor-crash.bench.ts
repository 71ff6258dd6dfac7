/**
 * What an executor killed mid-recovery costs a rack recovery (issue #16's
 * target: at most 5 s more on the tiny lab). Each pair of runs starts a fresh
 * system twice (tiny lab, two executors, devices that take their time) and
 * burns rack r2: once left alone, once with executor-1 SIGKILLed as soon as
 * a server is past its storage step. Timed from the burn to the last of the
 * rack's servers heartbeating from its new host. Prints each pair and the
 * median of the pairs' differences.
 *
 *   npm run bench:executor-crash -w @firebreak/e2e -- [--runs 3]
 */
import { parseArgs } from 'node:util';
import { burnRack, expectRackRecovered } from '../src/rack-burn.ts';
import { waitUntilUnderWay } from '../src/recovery-checks.ts';
import { startSystem } from '../src/system.ts';

const TARGET_MS = 5_000;
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`executor-crash bench: --runs must be a positive whole number, got "${values.runs}"`);
  process.exit(2);
}

async function recoveryMs(killExecutor: boolean): Promise<number> {
  const system = await startSystem({ size: 'tiny', executors: 2, lab: { powerDelayMs: 800, bootDelayMs: 1_500 } });
  try {
    const burned = burnRack(system, 'r2');
    if (killExecutor) {
      await waitUntilUnderWay(system.observer, burned.dead, () => system.logs());
      await system.services.get('executor-1')?.kill();
    }
    await expectRackRecovered(system, burned, 180_000);
    const last = Math.max(...burned.lost.map(({ server }) => system.observer.serverHeartbeats.get(server.id)?.at ?? 0));
    return last - burned.burnedAt;
  } finally {
    await system.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const differences: number[] = [];
for (let run = 1; run <= runs; run++) {
  const alone = await recoveryMs(false);
  const killed = await recoveryMs(true);
  differences.push(killed - alone);
  console.log(`pair ${run}: burn → last heartbeat ${alone} ms left alone, ${killed} ms with executor-1 killed mid-recovery (+${killed - alone} ms)`);
}
const cost = median(differences);
console.log(`an executor killed mid-recovery costs ${Math.round(cost)} ms (median of ${runs} paired differences); target ≤ ${TARGET_MS} ms: ${cost <= TARGET_MS ? 'met' : 'NOT met'}`);
