/**
 * The lab's hypervisors: every host that runs a hypervisor image (a standing
 * hypervisor, or one PXE-booted into it) keeps libvirt-like domains, defined
 * from the same domain XML the drivers send libvirt, started and forced off.
 *
 * A started domain runs at once and boots after the lab's boot delay. It then
 * heartbeats as its server, on its hypervisor host's subject, only if that
 * host still runs the hypervisor, its switch ports carry every VLAN of the VM
 * and its HBA sees every LUN of the VM, as a real guest would fail to reach
 * its network or mount its disks otherwise; when it does not, the event log
 * says why and the domain keeps running silently. Domains die with their
 * host's power; their definitions survive a power cycle (libvirt keeps them
 * on the host's disk) but not the host booting another image.
 */
import { topics, type Bus, type Heartbeat, type Topic } from '@firebreak/shared';
import { TimerWheel, type WheelEntry } from '../hosts/timer-wheel.ts';
import type { HostPhase, World } from '../world.ts';
import { parseLabDomain, type LabDomainSpec } from './domain-xml.ts';
import { LabApiError } from '../api-http.ts';
import { startHypervisorApi } from './hypervisor-api.ts';

export type DomainRunState = 'running' | 'stopped';
/** What the guest inside a running domain is doing. */
export type GuestPhase = 'off' | 'booting' | 'running' | 'boot-failed';

/** One domain as the API and tests see it. */
export interface LabDomain {
  readonly hypervisor: string;
  readonly name: string;
  readonly xml: string;
  readonly spec: LabDomainSpec;
  readonly state: DomainRunState;
  readonly phase: GuestPhase;
  /** Why the guest did not come up (boot-failed), else empty. */
  readonly problems: readonly string[];
}

interface Domain {
  readonly hypervisor: string;
  readonly name: string;
  xml: string;
  spec: LabDomainSpec;
  /** `off` exactly when the domain is stopped: its run state is derived from it. */
  phase: GuestPhase;
  problems: string[];
  /** Bumped on every stop, so a boot that outlived its start is dropped. */
  generation: number;
  bootTimer: NodeJS.Timeout | undefined;
  entry: WheelEntry<Domain> | undefined;
  readonly topic: Topic<typeof Heartbeat>;
  readonly message: Heartbeat;
}

export interface HypervisorSimulatorOptions {
  bus: Bus;
  /** API port on 127.0.0.1; default a free one. */
  port?: number;
  /** Heartbeat period of VMs; default 1000 ms, like hosts. */
  periodMs?: number;
  /** Wheel slot width; default 10 ms. */
  slotMs?: number;
  /** Time from start to a booted guest; default 200 ms, like hosts. */
  bootDelayMs?: number;
}

export interface HypervisorSimulator {
  /** `http://127.0.0.1:<port>`; a host's hypervisor is `${url}/hypervisors/<host id>`. */
  readonly url: string;
  readonly hypervisors: LabHypervisors;
  stop(): Promise<void>;
}

export async function startHypervisorSimulator(world: World, options: HypervisorSimulatorOptions): Promise<HypervisorSimulator> {
  const hypervisors = new LabHypervisors(world, options);
  try {
    const api = await startHypervisorApi(hypervisors, world, options.port ?? 0);
    return {
      url: api.url,
      hypervisors,
      stop: async () => {
        await api.stop();
        hypervisors.close();
      },
    };
  } catch (err) {
    hypervisors.close();
    throw err;
  }
}

const DEFAULT_PERIOD_MS = 1_000;
const DEFAULT_BOOT_DELAY_MS = 200;
const KIB_PER_GIB = 1024 * 1024;

export class LabHypervisors {
  readonly #world: World;
  readonly #bus: Bus;
  readonly #bootDelayMs: number;
  readonly #wheel: TimerWheel<Domain>;
  /** Domains by hypervisor host, then by name. */
  readonly #hosts = new Map<string, Map<string, Domain>>();
  #heartbeats = 0;
  #publishErrors = 0;
  /** Power loss shows here too: the world moves a host that loses power to phase `off`. */
  readonly #onPhase = (hostId: string, phase: HostPhase): void => {
    const rt = this.#world.host(hostId);
    if (phase !== 'running') {
      this.#killAll(hostId, phase === 'off' ? 'its hypervisor host powered off' : `its hypervisor host is ${phase}`);
      return;
    }
    if (this.#world.isHypervisorImage(rt.image)) return;
    const lost = this.#hosts.get(hostId);
    if (lost === undefined || lost.size === 0) return;
    this.#killAll(hostId, `its host booted ${rt.image ?? 'another image'}`);
    this.#world.recorder.record('vm', 'definitions-lost', { host: hostId, detail: { domains: [...lost.keys()].sort(), image: rt.image } });
    this.#hosts.delete(hostId);
  };

  constructor(world: World, options: HypervisorSimulatorOptions) {
    this.#world = world;
    this.#bus = options.bus;
    this.#bootDelayMs = options.bootDelayMs ?? DEFAULT_BOOT_DELAY_MS;
    this.#wheel = new TimerWheel<Domain>((d) => this.#beat(d), {
      periodMs: options.periodMs ?? DEFAULT_PERIOD_MS,
      ...(options.slotMs !== undefined && { slotMs: options.slotMs }),
    });
    world.on('phase', this.#onPhase);
  }

  /** Whether the host answers as a hypervisor now. */
  running(hostId: string): boolean {
    return this.#world.hasHost(hostId) && this.#world.runsHypervisor(hostId);
  }

  domains(hostId: string): LabDomain[] {
    this.#reachable(hostId);
    return [...(this.#hosts.get(hostId)?.values() ?? [])].sort((a, b) => a.name.localeCompare(b.name)).map(view);
  }

  domain(hostId: string, name: string): LabDomain {
    this.#reachable(hostId);
    return view(this.#domain(hostId, name));
  }

  /**
   * Every domain defined on any host, by host then name, whether or not its
   * host answers as a hypervisor now: definitions outlive a powered-off host.
   */
  allDomains(): LabDomain[] {
    const byName = (a: Domain, b: Domain): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    return [...this.#hosts.keys()].sort().flatMap((host) => [...(this.#hosts.get(host)?.values() ?? [])].sort(byName).map(view));
  }

  /** Creates or replaces the definition; a running domain keeps its definition. */
  define(hostId: string, name: string, xml: string): 'created' | 'replaced' | 'unchanged' {
    this.#reachable(hostId);
    const parsed = parseLabDomain(xml);
    if ('problems' in parsed) throw new LabApiError(400, 'invalid-domain-xml', `domain XML rejected: ${parsed.problems.join('; ')}`);
    if (parsed.name !== name) throw new LabApiError(400, 'name-mismatch', `the XML defines "${parsed.name}", not "${name}"`);
    let domains = this.#hosts.get(hostId);
    if (domains === undefined) this.#hosts.set(hostId, (domains = new Map()));
    const existing = domains.get(name);
    if (existing !== undefined && existing.xml === xml) return 'unchanged';
    if (existing !== undefined && active(existing)) {
      throw new LabApiError(409, 'domain-running', `domain "${name}" is running on ${hostId}; stop it before redefining it`);
    }
    if (existing !== undefined) {
      existing.xml = xml;
      existing.spec = parsed;
    } else {
      domains.set(name, this.#newDomain(hostId, name, xml, parsed));
    }
    this.#world.recorder.record('vm', 'define', { host: hostId, detail: { domain: name, replaced: existing !== undefined } });
    return existing === undefined ? 'created' : 'replaced';
  }

  start(hostId: string, name: string): void {
    this.#reachable(hostId);
    const d = this.#domain(hostId, name);
    if (active(d)) throw new LabApiError(409, 'domain-active', `domain "${name}" is already active on ${hostId}`);
    const host = this.#world.host(hostId).host;
    const usedKiB = [...(this.#hosts.get(hostId)?.values() ?? [])].filter(active).reduce((sum, o) => sum + o.spec.memoryKiB, 0);
    const hostKiB = host.memoryGiB * KIB_PER_GIB;
    if (usedKiB + d.spec.memoryKiB > hostKiB) {
      throw new LabApiError(
        409,
        'insufficient-memory',
        `cannot start "${name}": it needs ${gib(d.spec.memoryKiB)} GiB, ${hostId} has ${gib(hostKiB - usedKiB)} GiB of ${host.memoryGiB} GiB free`,
      );
    }
    d.phase = 'booting';
    d.problems = [];
    this.#world.recorder.record('vm', 'start', { host: hostId, detail: { domain: name } });
    const generation = d.generation;
    d.bootTimer = setTimeout(() => {
      d.bootTimer = undefined;
      if (d.generation === generation) this.#boot(d);
    }, this.#bootDelayMs);
  }

  /** Forced off (libvirt's destroy). */
  destroy(hostId: string, name: string): void {
    this.#reachable(hostId);
    const d = this.#domain(hostId, name);
    if (!active(d)) throw new LabApiError(409, 'domain-not-running', `domain "${name}" is not running on ${hostId}`);
    this.#halt(d);
    this.#world.recorder.record('vm', 'stop', { host: hostId, detail: { domain: name } });
  }

  undefine(hostId: string, name: string): void {
    this.#reachable(hostId);
    const d = this.#domain(hostId, name);
    if (active(d)) throw new LabApiError(409, 'domain-running', `domain "${name}" is running on ${hostId}; stop it before undefining it`);
    this.#hosts.get(hostId)?.delete(name);
    this.#world.recorder.record('vm', 'undefine', { host: hostId, detail: { domain: name } });
  }

  /** Stops every guest and timer; the lab is shutting down. */
  close(): void {
    this.#world.off('phase', this.#onPhase);
    for (const domains of this.#hosts.values()) for (const d of domains.values()) this.#halt(d);
    this.#wheel.stop();
  }

  /** VM heartbeats published since start, and publishes that threw. */
  stats(): { heartbeating: number; sent: number; publishErrors: number } {
    return { heartbeating: this.#wheel.size, sent: this.#heartbeats, publishErrors: this.#publishErrors };
  }

  #reachable(hostId: string): void {
    if (!this.#world.hasHost(hostId)) throw new LabApiError(404, 'hypervisor-not-found', `no host "${hostId}" in the lab`);
    if (this.#world.runsHypervisor(hostId)) return;
    const rt = this.#world.host(hostId);
    const doing = rt.power === 'off' ? 'powered off' : rt.phase !== 'running' ? rt.phase : `running ${rt.image ?? 'no hypervisor image'}`;
    throw new LabApiError(503, 'hypervisor-down', `host ${hostId} runs no hypervisor (${doing})`);
  }

  #domain(hostId: string, name: string): Domain {
    const d = this.#hosts.get(hostId)?.get(name);
    if (d === undefined) throw new LabApiError(404, 'domain-not-found', `no domain "${name}" on ${hostId}`);
    return d;
  }

  #newDomain(hostId: string, name: string, xml: string, spec: LabDomainSpec): Domain {
    const { site, rack } = this.#world.host(hostId).host;
    return {
      hypervisor: hostId,
      name,
      xml,
      spec,
      phase: 'off',
      problems: [],
      generation: 0,
      bootTimer: undefined,
      entry: undefined,
      topic: topics.heartbeat(site, rack, hostId),
      message: { host: hostId, site, rack, server: name, drill: spec.drill, seq: 0, sentAt: 0 },
    };
  }

  /** The guest comes up only where its hypervisor gives it every VLAN and LUN it needs. */
  #boot(d: Domain): void {
    const world = this.#world;
    const host = d.hypervisor;
    const problems = [
      ...(world.runsHypervisor(host) ? [] : [`hypervisor host ${host} no longer runs the hypervisor`]),
      ...d.spec.vlans.filter((v) => !world.hostOnVlan(host, v)).map((v) => `hypervisor ${host}'s switch ports do not carry VLAN ${v}`),
      ...d.spec.luns.filter((lun) => !world.canSee(host, lun)).map((lun) => `hypervisor ${host}'s HBA cannot see LUN ${lun}`),
    ];
    if (problems.length > 0) {
      d.phase = 'boot-failed';
      d.problems = problems;
      world.recorder.record('vm', 'boot-failed', { host, detail: { domain: d.name, problems } });
      return;
    }
    d.phase = 'running';
    world.recorder.record('vm', 'booted', { host, detail: { domain: d.name, image: d.spec.image } });
    d.entry ??= this.#wheel.add(d);
    // The guest's agent says it is up as soon as it starts, like a host's.
    this.#beat(d);
  }

  #beat(d: Domain): void {
    if (d.phase !== 'running') return;
    const rt = this.#world.host(d.hypervisor);
    // The guest's traffic leaves through its host: an isolated host isolates its VMs too.
    if (rt.isolated || !this.#world.runsHypervisor(d.hypervisor)) return;
    d.message.seq++;
    d.message.sentAt = Date.now();
    d.message.drill = d.spec.drill;
    try {
      this.#bus.publishCore(d.topic, d.message);
      this.#heartbeats++;
      this.#world.recorder.record('vm', 'heartbeat', { host: d.hypervisor, countOnly: true });
    } catch {
      this.#publishErrors++;
    }
  }

  #killAll(hostId: string, why: string): void {
    for (const d of this.#hosts.get(hostId)?.values() ?? []) {
      if (!active(d)) continue;
      this.#halt(d);
      this.#world.recorder.record('vm', 'died', { host: hostId, detail: { domain: d.name, reason: why } });
    }
  }

  #halt(d: Domain): void {
    d.generation++;
    clearTimeout(d.bootTimer);
    d.bootTimer = undefined;
    if (d.entry !== undefined) this.#wheel.remove(d.entry);
    d.entry = undefined;
    d.phase = 'off';
  }
}

function view(d: Domain): LabDomain {
  return { hypervisor: d.hypervisor, name: d.name, xml: d.xml, spec: d.spec, state: active(d) ? 'running' : 'stopped', phase: d.phase, problems: [...d.problems] };
}

/** Started and not stopped since (libvirt's "active"), whatever the guest inside is doing. */
function active(d: Domain): boolean {
  return d.phase !== 'off';
}

function gib(kib: number): number {
  return +(kib / KIB_PER_GIB).toFixed(2);
}
