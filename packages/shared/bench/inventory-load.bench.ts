/**
 * How long `loadInventoryFile` takes on a 50,000-host inventory, and the peak
 * RSS of the process that loads it, for the same inventory as YAML and JSON.
 *
 *   npm run bench --workspace @firebreak/shared -- [--hosts 50000] [--runs 5]
 *   npx tsx packages/shared/bench/inventory-load.bench.ts [--hosts 50000] [--runs 5]
 *
 * Each load runs in a fresh child process, so one run's heap does not swell
 * the next one's RSS. The time is the whole call: reading the file, parsing,
 * the schema and the cross-checks. The RSS includes Node and tsx themselves.
 *
 * The inventory is built here, not by the lab's generator: shared sits below
 * the lab. It has the same shape: 40 hosts to a rack, two NICs and an HBA
 * each, one BMC per rack with a system per host, production hosts running a
 * server each, spares, repurposable hosts and hypervisors running VMs.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { loadInventoryFile } from '../src/inventory/loader.ts';
import type { InventoryInput } from '../src/schemas/inventory.schema.ts';

type Section<K extends keyof InventoryInput> = NonNullable<InventoryInput[K]>;

const HOSTS_PER_RACK = 40;
const RACKS_PER_SITE = 250;
const VLANS_PER_SITE = 8;
const VMS_PER_HYPERVISOR = 4;
/** Issue #15: what a 50,000-host inventory may cost to load. */
const target = { hosts: 50_000, ms: 5_000, rssMiB: 500 };

interface RunResult {
  ms: number;
  peakRssMiB: number;
  hosts: number;
}

const self = fileURLToPath(import.meta.url);

/** Child mode: load one file, print one JSON line. */
async function loadOnce(path: string): Promise<void> {
  const started = performance.now();
  const inventory = await loadInventoryFile(path);
  const ms = performance.now() - started;
  const result: RunResult = { ms, peakRssMiB: process.resourceUsage().maxRSS / 1024, hosts: inventory.hosts.length };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function hexBytes(value: number, bytes: number): string {
  const parts: string[] = [];
  for (let i = bytes - 1; i >= 0; i--) parts.push(((value >>> (8 * i)) & 0xff).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** A valid inventory of `hostCount` hosts; every fifth rack is aarch64. */
function benchInventory(hostCount: number): InventoryInput {
  const racks: Section<'racks'> = [];
  const switches: Section<'switches'> = [];
  const vlans: Section<'vlans'> = [];
  const storageArrays: Section<'storageArrays'> = [];
  const luns: Section<'luns'> = [];
  const hosts: Section<'hosts'> = [];
  const servers: Section<'servers'> = [];
  const assignments: Section<'assignments'> = [];
  const archs = ['x86_64', 'aarch64'] as const;
  const images = archs.flatMap((arch) => [
    { id: `rhel9-${arch}`, arch, url: `http://127.0.0.1:8080/images/rhel9-${arch}.ipxe`, hypervisor: false },
    { id: `kvm-${arch}`, arch, url: `http://127.0.0.1:8080/images/kvm-${arch}.ipxe`, hypervisor: true },
  ]);

  type Arch = (typeof archs)[number];
  const addServer = (site: number, arch: Arch, size: { cpus: number; memoryGiB: number }, bareMetalOnly: boolean): string => {
    const id = `srv-${String(servers.length + 1).padStart(6, '0')}`;
    const home = 100 * site + (servers.length % VLANS_PER_SITE) + 1;
    const other = 100 * site + ((servers.length + 3) % VLANS_PER_SITE) + 1;
    luns.push({ id: `${id}-boot`, array: `site${site}-array1`, sizeGiB: 100 });
    servers.push({
      id,
      image: `rhel9-${arch}`,
      vlans: [home, other],
      luns: [`${id}-boot`],
      ...size,
      arch,
      priority: servers.length % 4,
      bareMetalOnly,
      rtoSeconds: 900,
    });
    return id;
  };

  const rackCount = Math.ceil(hostCount / HOSTS_PER_RACK);
  for (let r = 1; r <= rackCount; r++) {
    const site = Math.floor((r - 1) / RACKS_PER_SITE) + 1;
    const siteId = `site${site}`;
    if ((r - 1) % RACKS_PER_SITE === 0) {
      for (let k = 1; k <= VLANS_PER_SITE; k++) {
        vlans.push({ id: 100 * site + k, name: `${siteId}-net${k}`, fabric: `${siteId}-net`, drillVlan: 2000 + 100 * site + k });
      }
      storageArrays.push({
        id: `${siteId}-array1`,
        fabric: `${siteId}-san`,
        driver: 'lab-san',
        address: `http://127.0.0.1:${40_000 + site}`,
        credentialsRef: 'env:FB_BENCH_SAN_CREDENTIALS',
      });
    }
    const rack = `r${r}`;
    const tor = `${rack}-tor`;
    const pdu = `${rack}-pdu`;
    const arch: Arch = r % 5 === 0 ? 'aarch64' : 'x86_64';
    racks.push({ id: rack, site: siteId, pdu, tor });
    switches.push({ id: tor, fabric: `${siteId}-net`, driver: 'snmp', address: `127.0.0.1:${30_000 + r}`, credentialsRef: 'env:FB_BENCH_SNMP_CREDENTIALS' });

    for (let slot = 1; slot <= HOSTS_PER_RACK && hosts.length < hostCount; slot++) {
      const index = hosts.length;
      const id = `${rack}-h${String(slot).padStart(2, '0')}`;
      // Per ten slots: six production hosts, two spares, a repurposable host and a hypervisor.
      const kind = slot % 10;
      const role = kind < 6 ? 'production' : kind < 8 ? 'spare' : kind === 8 ? 'repurposable' : 'hypervisor';
      const hypervisorCapable = role === 'hypervisor' || role === 'spare';
      hosts.push({
        id,
        site: siteId,
        rack,
        pdu,
        tor,
        arch,
        cpus: 64,
        memoryGiB: 512,
        nics: [0, 1].map((n) => ({ mac: `52:54:00:${hexBytes(index * 2 + n, 3)}`, switch: tor, port: 2 * slot + n - 1 })),
        hba: { initiator: slot % 8 === 0 ? `iqn.2025-01.bench.firebreak:${id}` : `21:00:00:24:ff:${hexBytes(index, 3)}`, fabric: `${siteId}-san` },
        bmc: {
          driver: 'redfish',
          address: `127.0.0.1:${20_000 + r}`,
          systemId: id,
          auth: 'auto',
          credentialsRef: 'env:FB_BENCH_BMC_CREDENTIALS',
          tls: { verify: true },
        },
        role,
        ...(role === 'repurposable' && { workload: { name: 'batch', priority: 5 + (slot % 5) } }),
        hypervisorCapable,
        ...(hypervisorCapable && { hypervisor: { driver: 'lab', uri: `http://127.0.0.1:50000/hypervisors/${id}` } }),
      });
      if (role === 'production') {
        const server = addServer(site, arch, { cpus: 32, memoryGiB: 256 }, servers.length % 17 === 0);
        assignments.push({ server, mode: 'bare-metal', host: id });
      } else if (role === 'hypervisor') {
        for (let v = 0; v < VMS_PER_HYPERVISOR; v++) {
          const server = addServer(site, arch, { cpus: 8, memoryGiB: 64 }, false);
          assignments.push({ server, mode: 'vm', hypervisor: id });
        }
      }
    }
  }
  return { version: 1, racks, switches, vlans, storageArrays, luns, images, hosts, servers, assignments };
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
    const inventory = benchInventory(hostCount);
    const files = {
      // As the lab writes them: no anchors, no folded lines; JSON indented.
      yaml: { path: join(dir, 'inventory.yaml'), text: stringify(inventory, { aliasDuplicateObjects: false, lineWidth: 0 }) },
      json: { path: join(dir, 'inventory.json'), text: `${JSON.stringify(inventory, null, 2)}\n` },
    };
    console.log(`inventory: ${inventory.hosts.length} hosts, ${inventory.servers?.length ?? 0} servers, ${inventory.assignments?.length ?? 0} assignments; ${runs} runs per format, each in its own process`);
    for (const [format, file] of Object.entries(files)) {
      await writeFile(file.path, file.text);
      const sizeMiB = (await stat(file.path)).size / 2 ** 20;
      const results: RunResult[] = [];
      for (let run = 0; run < runs; run++) results.push(await runChild(file.path));
      const ms = median(results.map((r) => r.ms));
      const rss = median(results.map((r) => r.peakRssMiB));
      const within = ms <= target.ms && rss <= target.rssMiB;
      const verdict = hostCount === target.hosts ? `  ${within ? 'within' : 'OVER'} the ${target.ms} ms / ${target.rssMiB} MiB target` : '';
      console.log(
        `${format.padEnd(4)} ${sizeMiB.toFixed(1).padStart(6)} MiB  load median ${Math.round(ms)} ms (${results.map((r) => Math.round(r.ms)).join(', ')})` +
          `  peak RSS median ${Math.round(rss)} MiB (max ${Math.round(Math.max(...results.map((r) => r.peakRssMiB)))})${verdict}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'load') await loadOnce(process.argv[3] ?? '');
else await main();
