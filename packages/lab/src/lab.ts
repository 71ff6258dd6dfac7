/**
 * A whole simulated data center in one process: topology → inventory file →
 * world model → Redfish BMCs, SNMP switches, SAN arrays, heartbeating hosts,
 * hypervisors with heartbeating VMs, plus fault injection and a control API.
 * Everything listens on 127.0.0.1.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, freePort, loadInventoryFile, type Bus, type Inventory } from '@firebreak/shared';
import { startControlApi, type ControlApi, type LabSettings } from './control-api.ts';
import { captureDeviceSnapshot, type DeviceSnapshot } from './device-snapshot.ts';
import { Faults } from './faults.ts';
import { startHostSimulator, type HostSimulator } from './hosts/host-simulator.ts';
import { startHypervisorSimulator, type HypervisorSimulator } from './hypervisor/hypervisor-simulator.ts';
import { LabRecorder } from './recorder.ts';
import { startBmcSimulator, type BmcSimulator } from './redfish/bmc-simulator.ts';
import { startSanSimulator, type SanSimulator } from './san/san-simulator.ts';
import { startSwitchSimulator, type SwitchSimulator } from './snmp/switch-simulator.ts';
import { generateTopology, writeInventoryFile, type TopologyOptions } from './topology/index.ts';
import { World } from './world.ts';

export interface LabOptions {
  natsUrl: string;
  /**
   * The lab only publishes heartbeats, as host agents do: on a server with
   * deploy/nats/nats.conf's users, the `host-agent` user. None on a server
   * without authentication.
   */
  natsUser?: string;
  natsPassword?: string;
  size?: TopologyOptions['size'];
  seed?: number;
  /** Where the inventory, credentials and CA bundle are written; default a temp dir removed on stop. */
  dir?: string;
  /** Control API port; default a free one. */
  controlPort?: number;
  /** Redfish power actions land after this long; default 1000 ms, like a real BMC. */
  powerDelayMs?: number;
  bootDelayMs?: number;
  heartbeatPeriodMs?: number;
  bootServiceUrl?: string;
  trapReceivers?: string[];
}

export interface Lab {
  readonly dir: string;
  readonly inventory: Inventory;
  readonly inventoryPath: string;
  readonly credentialsPath: string;
  readonly caBundlePath: string;
  readonly world: World;
  readonly recorder: LabRecorder;
  readonly faults: Faults;
  readonly controlUrl: string;
  readonly bmc: BmcSimulator;
  readonly switches: SwitchSimulator;
  readonly san: SanSimulator;
  readonly hosts: HostSimulator;
  /** Hypervisor-capable hosts' `hypervisor.uri` is `${hypervisors.url}/hypervisors/<host id>`. */
  readonly hypervisors: HypervisorSimulator;
  configure(settings: LabSettings): void;
  describe(): LabDescription;
  /** Every device state the lab holds, now (see device-snapshot.ts); equal state serialises to equal bytes. */
  deviceSnapshot(): DeviceSnapshot;
  stop(): Promise<void>;
}

export interface LabDescription {
  inventoryPath: string;
  credentialsPath: string;
  caBundlePath: string;
  controlUrl: string;
  natsUrl: string;
  racks: number;
  hosts: number;
  servers: number;
  bmcEndpoints: string[];
  switches: string[];
  sanArrays: string[];
  /** The lab's hypervisor API; a host's hypervisor is under /hypervisors/<host id>. */
  hypervisorUrl: string;
}

const secret = (): string => randomBytes(12).toString('base64url');

/**
 * The generator places endpoints on fixed example ports; the lab moves each
 * distinct address to a free loopback port so several labs (and tests) coexist.
 */
async function relocate(addresses: string[]): Promise<Map<string, string>> {
  const moved = new Map<string, string>();
  // The kernel picks free ports at random: among hundreds, some would repeat before any is bound.
  const taken = new Set<number>();
  const uniquePort = async (): Promise<number> => {
    let port = await freePort();
    while (taken.has(port)) port = await freePort();
    taken.add(port);
    return port;
  };
  for (const address of new Set(addresses)) {
    const url = /^https?:\/\//.test(address);
    moved.set(address, url ? `http://127.0.0.1:${await uniquePort()}` : `127.0.0.1:${await uniquePort()}`);
  }
  return moved;
}

/** Below Linux's ephemeral range (32768 and up), where no process's own UDP client socket can land. */
const UDP_PORTS = { from: 20_000, to: 32_767 } as const;

/**
 * Moves the switches' SNMP agents (UDP) to free loopback ports. Not ephemeral
 * ones: the kernel hands those to every SNMP client socket in this and other
 * processes, which took a port chosen here before the agent could bind it.
 */
async function relocateUdp(addresses: string[]): Promise<Map<string, string>> {
  const moved = new Map<string, string>();
  const taken = new Set<number>();
  for (const address of new Set(addresses)) {
    for (;;) {
      const port = UDP_PORTS.from + Math.floor(Math.random() * (UDP_PORTS.to - UDP_PORTS.from + 1));
      if (taken.has(port) || !(await udpPortFree(port))) continue;
      taken.add(port);
      moved.set(address, `127.0.0.1:${port}`);
      break;
    }
  }
  return moved;
}

function udpPortFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

export async function startLab(options: LabOptions): Promise<Lab> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'fb-lab-')));
  const credentialsPath = join(dir, 'credentials.json');
  const caBundlePath = join(dir, 'bmc-ca.pem');
  const stops: (() => Promise<void> | void)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    // One API serves every host's hypervisor, so its address is known before the inventory is written.
    const hypervisorBase = `http://127.0.0.1:${await freePort()}`;
    const draft = generateTopology({
      size: options.size ?? 'tiny',
      seed: options.seed ?? 1,
      addresses: { hypervisorBase },
      credentials: {
        bmc: (rack) => `file:${credentialsPath}#bmc-${rack}`,
        switch: (id) => `file:${credentialsPath}#switch-${id}`,
        san: (id) => `file:${credentialsPath}#san-${id}`,
      },
    });
    const moved = await relocate([...(draft.hosts ?? []).map((h) => h.bmc.address), ...(draft.storageArrays ?? []).map((a) => a.address)]);
    for (const [from, to] of await relocateUdp((draft.switches ?? []).map((s) => s.address))) moved.set(from, to);
    const at = (address: string): string => moved.get(address) ?? address;
    for (const h of draft.hosts ?? []) {
      h.bmc.address = at(h.bmc.address);
      h.bmc.tls = { verify: true, caBundle: caBundlePath };
    }
    for (const s of draft.switches ?? []) s.address = at(s.address);
    for (const a of draft.storageArrays ?? []) a.address = at(a.address);

    const credentials: Record<string, Record<string, string>> = {};
    for (const r of draft.racks) credentials[`bmc-${r.id}`] = { username: 'admin', password: secret() };
    for (const s of draft.switches ?? []) credentials[`switch-${s.id}`] = { community: secret() };
    for (const a of draft.storageArrays ?? []) credentials[`san-${a.id}`] = { username: 'admin', password: secret() };
    await writeFile(credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });

    const inventoryPath = join(dir, draft.hosts.length > 1_000 ? 'inventory.json' : 'inventory.yaml');
    await writeInventoryFile(draft, inventoryPath);
    // Load it back through the production loader: the lab runs exactly what services will read.
    const inventory = await loadInventoryFile(inventoryPath);

    const recorder = new LabRecorder();
    const world = new World(inventory, recorder);
    const faults = new Faults(world);
    stops.push(() => faults.stop());

    // Like a real fleet, some BMCs (every third rack's) have no SessionService and speak basic auth only.
    const basicOnly = inventory.racks
      .filter((_, i) => i % 3 === 2)
      .flatMap((r) => inventory.hosts.filter((h) => h.rack === r.id).map((h) => h.bmc.address));
    const bmc = await startBmcSimulator(world, { powerDelayMs: options.powerDelayMs ?? 1_000, withoutSessionService: [...new Set(basicOnly)] });
    stops.push(() => bmc.stop());
    await writeFile(caBundlePath, bmc.caCertPem);
    const switches = await startSwitchSimulator(world, { trapReceivers: options.trapReceivers ?? [] });
    stops.push(() => switches.stop());
    const san = await startSanSimulator(world);
    stops.push(() => san.stop());

    // Core NATS only: a host agent's user may not even ask whether JetStream is there.
    const bus: Bus = await connectBus({ url: options.natsUrl, name: 'firebreak-lab', user: options.natsUser, password: options.natsPassword, checkJetStream: false });
    stops.push(() => bus.close());
    const hosts = startHostSimulator(world, {
      bus,
      ...(options.bootServiceUrl !== undefined && { bootServiceUrl: options.bootServiceUrl }),
      ...(options.heartbeatPeriodMs !== undefined && { periodMs: options.heartbeatPeriodMs }),
      ...(options.bootDelayMs !== undefined && { bootDelayMs: options.bootDelayMs }),
    });
    stops.push(() => hosts.stop());
    const hypervisors = await startHypervisorSimulator(world, {
      bus,
      port: Number(new URL(hypervisorBase).port),
      ...(options.heartbeatPeriodMs !== undefined && { periodMs: options.heartbeatPeriodMs }),
      ...(options.bootDelayMs !== undefined && { bootDelayMs: options.bootDelayMs }),
    });
    stops.push(() => hypervisors.stop());

    const configure = (settings: LabSettings): void => {
      if (settings.bootServiceUrl !== undefined) hosts.setBootServiceUrl(settings.bootServiceUrl);
      if (settings.trapReceivers !== undefined) switches.setTrapReceivers(settings.trapReceivers);
    };
    const describe = (): LabDescription => ({
      inventoryPath,
      credentialsPath,
      caBundlePath,
      // Called only after the control API below has started.
      controlUrl: control.url,
      natsUrl: options.natsUrl,
      racks: inventory.racks.length,
      hosts: inventory.hosts.length,
      servers: inventory.servers.length,
      bmcEndpoints: bmc.endpoints.map((e) => e.url),
      switches: switches.agents.map((a) => `${a.switchId} udp://${a.address}`),
      sanArrays: san.endpoints.map((e) => `${e.arrayId} ${e.url}`),
      hypervisorUrl: hypervisors.url,
    });
    const control: ControlApi = await startControlApi({ world, recorder, faults, describe, configure }, options.controlPort ?? 0);
    stops.push(() => control.stop());

    return {
      dir,
      inventory,
      inventoryPath,
      credentialsPath,
      caBundlePath,
      world,
      recorder,
      faults,
      controlUrl: control.url,
      bmc,
      switches,
      san,
      hosts,
      hypervisors,
      configure,
      describe,
      deviceSnapshot: () => captureDeviceSnapshot({ world, bmc, switches, san, hypervisors: hypervisors.hypervisors }),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
