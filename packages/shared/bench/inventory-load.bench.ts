/**
 * How long `loadInventoryFile` takes on a 50,000-host inventory, and the peak
 * RSS of the process that loads it, for the same inventory as YAML and JSON,
 * each valid and with one bad MAC in its last host, which must be reported at
 * its line.
 *
 *   npm run bench --workspace @firebreak/shared -- [--hosts 50000] [--runs 5]
 *   npx tsx packages/shared/bench/inventory-load.bench.ts [--hosts 50000] [--runs 5]
 *
 * Each load runs in a fresh child process, so one run's heap does not swell
 * the next one's RSS. The time is the whole call: reading the file, parsing,
 * the schema and the cross-checks, and for a rejected file placing each
 * problem on its line. The RSS includes Node and tsx themselves.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { InventoryError } from '../src/inventory/inventory-error.ts';
import { loadInventoryFile } from '../src/inventory/loader.ts';
import { lineOf } from '../test/inventory-fixture.ts';
import { generatedInventory, inventoryJson, inventoryYaml } from '../test/inventory-generated.ts';

/** Issue #15: what a 50,000-host inventory may cost to load, and to reject. */
const targets = {
  hosts: 50_000,
  valid: { ms: 5_000, rssMiB: 500 },
  rejected: { ms: 10_000, rssMiB: 1_024 },
};
const badMac = '52:54:00:00:00:zz';

interface RunResult {
  ms: number;
  peakRssMiB: number;
  /** Hosts loaded, or the line of the first problem when the file was rejected. */
  hosts?: number;
  problemLine?: number;
}

const self = fileURLToPath(import.meta.url);

/** Child mode: load one file, print one JSON line. */
async function loadOnce(path: string): Promise<void> {
  const started = performance.now();
  let outcome: Pick<RunResult, 'hosts' | 'problemLine'>;
  try {
    outcome = { hosts: (await loadInventoryFile(path)).hosts.length };
  } catch (err) {
    if (!(err instanceof InventoryError)) throw err;
    outcome = { problemLine: err.problems[0]?.line ?? -1 };
  }
  const ms = performance.now() - started;
  const result: RunResult = { ms, peakRssMiB: process.resourceUsage().maxRSS / 1024, ...outcome };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(path: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, self, 'load', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out) as RunResult);
      else reject(new Error(`loading ${path} exited with ${code}`));
    });
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { hosts: { type: 'string', default: '50000' }, runs: { type: 'string', default: '5' } } });
  const hostCount = Number(values.hosts);
  const runs = Number(values.runs);
  const dir = await mkdtemp(join(tmpdir(), 'fb-inventory-bench-'));
  try {
    const inventory = generatedInventory(hostCount);
    const valid = { yaml: inventoryYaml(inventory), json: inventoryJson(inventory) };
    const lastNic = inventory.hosts.at(-1)?.nics[0];
    if (lastNic === undefined) throw new Error('no hosts to break');
    lastNic.mac = badMac;
    const files = [
      { name: 'yaml', path: join(dir, 'inventory.yaml'), text: valid.yaml },
      { name: 'yaml, bad MAC', path: join(dir, 'bad-mac.yaml'), text: inventoryYaml(inventory), needle: `mac: ${badMac}` },
      { name: 'json', path: join(dir, 'inventory.json'), text: valid.json },
      { name: 'json, bad MAC', path: join(dir, 'bad-mac.json'), text: inventoryJson(inventory), needle: `"mac": "${badMac}"` },
    ];
    console.log(`inventory: ${hostCount} hosts, ${inventory.servers?.length ?? 0} servers, ${inventory.assignments?.length ?? 0} assignments; ${runs} runs per file, each in its own process`);
    for (const file of files) {
      await writeFile(file.path, file.text);
      const sizeMiB = (await stat(file.path)).size / 2 ** 20;
      const results: RunResult[] = [];
      for (let run = 0; run < runs; run++) results.push(await runChild(file.path));
      const expectedLine = file.needle === undefined ? undefined : lineOf(file.text, file.needle);
      const wrong = results.find((r) => r.problemLine !== expectedLine || (expectedLine === undefined && r.hosts !== hostCount));
      if (wrong !== undefined) throw new Error(`${file.name}: expected ${expectedLine === undefined ? `${hostCount} hosts` : `a problem at line ${expectedLine}`}, got ${JSON.stringify(wrong)}`);
      const target = expectedLine === undefined ? targets.valid : targets.rejected;
      const ms = median(results.map((r) => r.ms));
      const rss = median(results.map((r) => r.peakRssMiB));
      const within = ms <= target.ms && rss <= target.rssMiB;
      const verdict = hostCount === targets.hosts ? `  ${within ? 'within' : 'OVER'} the ${target.ms} ms / ${target.rssMiB} MiB target` : '';
      const outcome = expectedLine === undefined ? 'loaded' : `rejected at line ${expectedLine}`;
      console.log(
        `${file.name.padEnd(13)} ${sizeMiB.toFixed(1).padStart(6)} MiB  ${outcome}: median ${Math.round(ms)} ms (${results.map((r) => Math.round(r.ms)).join(', ')})` +
          `  peak RSS median ${Math.round(rss)} MiB (max ${Math.round(Math.max(...results.map((r) => r.peakRssMiB)))})${verdict}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'load') await loadOnce(process.argv[3] ?? '');
else await main();
