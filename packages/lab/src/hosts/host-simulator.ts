/**
 * The lab's hosts: each powered-on, running host heartbeats as the server it
 * runs; a host powered on with next-boot PXE fetches its iPXE script and
 * comes up as the server the script names only if it can see that server's
 * LUNs and sits on its VLANs (or, when the script attaches others, as a
 * drill's twins and clones, those), as a real machine would fail to mount its
 * root or reach its network otherwise. A script naming a hypervisor image makes the
 * host a hypervisor (heartbeating with no server; its VMs heartbeat through
 * the hypervisor simulation). One timer wheel drives every heartbeat.
 */
import { parseBootScript, topics, type BootAttach, type Bus, type Heartbeat, type Topic } from '@firebreak/shared';
import type { RecordOptions } from '../recorder.ts';
import type { HostPhase, HostRuntime, PowerState, World } from '../world.ts';
import { TimerWheel, type Lateness, type WheelEntry } from './timer-wheel.ts';

export interface HostSimulatorOptions {
  bus: Bus;
  /** The boot service hosts fetch `/boot/<mac>.ipxe` from; without one a PXE boot fails. */
  bootServiceUrl?: string;
  /** Heartbeat period; default 1000 ms. */
  periodMs?: number;
  /** Wheel slot width; default 10 ms (the period must be a whole number of slots). */
  slotMs?: number;
  /** Time from power-on to running (POST, firmware, OS); default 200 ms. */
  bootDelayMs?: number;
  /** Give up on the boot service after this long; default 5000 ms. */
  bootFetchTimeoutMs?: number;
}

export interface HostSimulatorStats {
  /** Hosts currently on the wheel (phase running). */
  heartbeating: number;
  /** Heartbeats published since start (or the last reset). */
  sent: number;
  /** Publishes that threw (connection closed, invalid message). */
  publishErrors: number;
  booting: number;
  /** Send lateness against the wheel's schedule. */
  lateness: Lateness;
}

export interface HostSimulator {
  stop(): void;
  setBootServiceUrl(url: string): void;
  stats(): HostSimulatorStats;
  /** Zeroes `sent`, `publishErrors` and the lateness histogram, e.g. after a warm-up. */
  resetStats(): void;
}

/** Per-host state prepared once, so a heartbeat allocates nothing of its own. */
interface Agent {
  readonly rt: HostRuntime;
  readonly topic: Topic<typeof Heartbeat>;
  readonly message: Heartbeat;
  readonly record: RecordOptions;
  entry: WheelEntry<Agent> | undefined;
  /** Bumped on every power change, so a boot that outlived its power-on is dropped. */
  generation: number;
  bootTimer: NodeJS.Timeout | undefined;
}

const DEFAULT_PERIOD_MS = 1_000;
const DEFAULT_BOOT_DELAY_MS = 200;
const DEFAULT_BOOT_FETCH_TIMEOUT_MS = 5_000;

export function startHostSimulator(world: World, options: HostSimulatorOptions): HostSimulator {
  const { bus } = options;
  const bootDelayMs = options.bootDelayMs ?? DEFAULT_BOOT_DELAY_MS;
  const fetchTimeoutMs = options.bootFetchTimeoutMs ?? DEFAULT_BOOT_FETCH_TIMEOUT_MS;
  let bootServiceUrl = options.bootServiceUrl;
  const recorder = world.recorder;
  const stopping = new AbortController();
  const agents = new Map<string, Agent>();
  let sent = 0;
  let publishErrors = 0;

  const beat = (agent: Agent): void => {
    const rt = agent.rt;
    if (rt.power !== 'on' || rt.phase !== 'running' || rt.isolated) return;
    const message = agent.message;
    message.seq++;
    message.sentAt = Date.now();
    message.server = rt.server;
    message.drill = rt.drill;
    try {
      bus.publishCore(agent.topic, message);
      sent++;
      recorder.record('host', 'heartbeat', agent.record);
    } catch {
      publishErrors++;
    }
  };
  const wheel = new TimerWheel<Agent>(beat, {
    periodMs: options.periodMs ?? DEFAULT_PERIOD_MS,
    ...(options.slotMs !== undefined && { slotMs: options.slotMs }),
  });

  for (const rt of world.allHosts()) {
    const { id, site, rack } = rt.host;
    const agent: Agent = {
      rt,
      topic: topics.heartbeat(site, rack, id),
      message: { host: id, site, rack, server: rt.server, drill: rt.drill, seq: 0, sentAt: 0 },
      record: { host: id, countOnly: true },
      entry: undefined,
      generation: 0,
      bootTimer: undefined,
    };
    agents.set(id, agent);
    if (rt.phase === 'running') agent.entry = wheel.add(agent);
  }

  const onPhase = (hostId: string, phase: HostPhase): void => {
    const agent = agents.get(hostId);
    if (!agent) return;
    if (phase === 'running' && agent.entry === undefined) {
      agent.entry = wheel.add(agent);
      // An agent says it is up as soon as it starts, then keeps its place in the wheel.
      beat(agent);
    }
    else if (phase !== 'running' && agent.entry !== undefined) {
      wheel.remove(agent.entry);
      agent.entry = undefined;
    }
  };

  const onPower = (hostId: string, state: PowerState): void => {
    const agent = agents.get(hostId);
    if (!agent) return;
    agent.generation++;
    clearTimeout(agent.bootTimer);
    agent.bootTimer = undefined;
    if (state === 'on') powerOn(agent);
  };

  const powerOn = (agent: Agent): void => {
    const rt = agent.rt;
    const pxe = rt.bootTarget === 'Pxe';
    // A one-time override is consumed by the boot it applies to, as on a real BMC.
    if (pxe && rt.bootEnabled === 'Once') {
      rt.bootTarget = 'None';
      rt.bootEnabled = 'Disabled';
    }
    world.setPhase(rt.host.id, 'booting');
    const generation = agent.generation;
    agent.bootTimer = setTimeout(() => {
      agent.bootTimer = undefined;
      if (pxe) void pxeBoot(agent, generation);
      else bootFromDisk(agent);
    }, bootDelayMs);
  };

  const bootFromDisk = (agent: Agent): void => {
    const rt = agent.rt;
    rt.bootError = null;
    recorder.record('host', 'booted', { host: rt.host.id, detail: { server: rt.server, from: 'disk' } });
    world.setPhase(rt.host.id, 'running');
  };

  const pxeBoot = async (agent: Agent, generation: number): Promise<void> => {
    const rt = agent.rt;
    const outcome = await fetchIdentity(rt);
    // Powered off (or cycled) while the script was on its way: this boot no longer exists.
    if (agent.generation !== generation || stopping.signal.aborted) return;
    // A hypervisor image runs no server of its own: its VMs need the VLANs and LUNs, not the host.
    const hypervisor = !('error' in outcome) && world.isHypervisorImage(outcome.image);
    const problems = 'error' in outcome ? [outcome.error] : hypervisor ? [] : missingFor(world, rt.host.id, outcome.server, outcome.attach);
    if ('error' in outcome || problems.length > 0) {
      rt.bootError = problems.join('; ');
      recorder.record('host', 'boot-failed', { host: rt.host.id, detail: { error: rt.bootError } });
      world.setPhase(rt.host.id, 'boot-failed');
      return;
    }
    rt.server = hypervisor ? null : outcome.server;
    rt.drill = !hypervisor && outcome.attach !== undefined;
    rt.image = outcome.image;
    rt.workload = null;
    rt.bootError = null;
    recorder.record('host', 'booted', { host: rt.host.id, detail: { server: outcome.server, image: outcome.image } });
    world.setPhase(rt.host.id, 'running');
  };

  const fetchIdentity = async (rt: HostRuntime): Promise<{ server: string; image: string; attach?: BootAttach } | { error: string }> => {
    const mac = (rt.host.nics[0]?.mac ?? '').toLowerCase();
    if (bootServiceUrl === undefined) return { error: `no boot script for ${mac}: no boot service configured` };
    const url = `${bootServiceUrl.replace(/\/+$/, '')}/boot/${mac}.ipxe`;
    let text: string;
    try {
      const res = await fetch(url, { signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(fetchTimeoutMs)]) });
      text = await res.text();
      if (!res.ok) return { error: `no boot script for ${mac}: HTTP ${res.status}` };
    } catch (err) {
      return { error: `no boot script for ${mac}: ${err instanceof Error ? err.message : String(err)}` };
    }
    try {
      const { server, image, attach } = parseBootScript(text);
      return { server, image, ...(attach && { attach }) };
    } catch (err) {
      return { error: `bad boot script for ${mac}: ${err instanceof Error ? err.message : String(err)}` };
    }
  };

  world.on('phase', onPhase);
  world.on('power', onPower);

  return {
    stop(): void {
      stopping.abort();
      world.off('phase', onPhase);
      world.off('power', onPower);
      for (const agent of agents.values()) {
        clearTimeout(agent.bootTimer);
        agent.bootTimer = undefined;
        agent.entry = undefined;
      }
      wheel.stop();
    },
    setBootServiceUrl(url: string): void {
      bootServiceUrl = url;
    },
    stats(): HostSimulatorStats {
      let booting = 0;
      for (const agent of agents.values()) if (agent.rt.phase === 'booting') booting++;
      return { heartbeating: wheel.size, sent, publishErrors, booting, lateness: wheel.lateness() };
    },
    resetStats(): void {
      sent = 0;
      publishErrors = 0;
      wheel.resetLateness();
    },
  };
}

/**
 * What keeps `hostId` from running `serverId`: unseen LUNs and VLANs its ports
 * do not carry. Those are the script's attached ones when it has them (a
 * drill's twins and clones), else the server's own.
 */
function missingFor(world: World, hostId: string, serverId: string, attach: BootAttach | undefined): string[] {
  const server = world.server(serverId);
  if (!server) return [`boot script names unknown server ${serverId}`];
  const { luns, vlans } = attach ?? server;
  return [
    ...luns.filter((lun) => !world.canSee(hostId, lun)).map((lun) => `cannot see LUN ${lun}`),
    ...vlans.filter((vlan) => !world.hostOnVlan(hostId, vlan)).map((vlan) => `not on VLAN ${vlan}`),
  ];
}
