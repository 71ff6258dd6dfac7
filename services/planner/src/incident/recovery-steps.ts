/**
 * What each recovery step asks of the hardware, and how to undo it: pure
 * functions of the inventory and one target. The machines decide which step
 * runs; this module says which commands that step is. Command ids are stable
 * (incident, target, step, attempt), so a planner resumed after a crash asks
 * for the same commands again and finds them already done.
 */
import { createHash } from 'node:crypto';
import { BootEntryObserved, PortState, type BootEntry, type Command, type CommandResult, type Host, type Inventory, type Server } from '@firebreak/shared';

/**
 * What a drill found on a host before it borrowed it, read from the devices
 * (never assumed): what cleanup puts back, exactly.
 */
export interface PriorState {
  power: 'on' | 'off';
  /** By `<switch>:<port>`, each NIC's port. */
  ports: Record<string, PortState>;
  /** The boot entry of the host's first NIC, or null when the boot service served it none. */
  boot: BootEntry | null;
}

/** A bare-metal server, a host being made a hypervisor, or a VM on one. */
export type RecoveryTarget =
  | { mode: 'bare-metal'; server: string; host: string }
  | { mode: 'hypervisor'; host: string; /** VMs it will carry, for its trunk and LUN grants. */ servers: string[]; /** Already runs a hypervisor: wire it, never reboot it. */ standing: boolean }
  | { mode: 'vm'; server: string; hypervisor: string };

export type StepName = 'prepare' | 'storage' | 'network' | 'boot' | 'power-on' | 'vm-define' | 'vm-start' | 'heartbeat';

export function stepsOf(target: RecoveryTarget): StepName[] {
  switch (target.mode) {
    case 'bare-metal':
      return ['prepare', 'storage', 'network', 'boot', 'power-on', 'heartbeat'];
    case 'hypervisor':
      return target.standing ? ['storage', 'network'] : ['prepare', 'storage', 'network', 'boot', 'power-on', 'heartbeat'];
    case 'vm':
      return ['vm-define', 'vm-start', 'heartbeat'];
  }
}

export function targetKey(target: RecoveryTarget): string {
  return target.mode === 'hypervisor' ? `hv-${target.host}` : target.server;
}

/**
 * Whose commands these are: the target and its host. A server planned again
 * onto another host gets new command ids, never the dead host's results.
 */
function targetOwner(target: RecoveryTarget): string {
  return `${targetKey(target)}@${targetHost(target)}`;
}

/** The host a target's commands touch and its heartbeat comes from. */
export function targetHost(target: RecoveryTarget): string {
  return target.mode === 'vm' ? target.hypervisor : target.host;
}

/** Fields every command of one incident carries, filled in when the command is issued. */
export interface CommandFrame {
  incidentId: string;
  site: string;
  fencingToken: number;
  /** The planner instance that holds the lease the token came with. */
  issuer: string;
  drill: boolean;
  now: number;
  deadline: number;
  /** The step's attempt (1 first); part of the command id, so a retry is a new command. */
  attempt: number;
}

/** A step's commands without the frame; `key` makes the command id unique within the step. */
type Spec = { key: string } & Record<string, unknown> & { kind: Command['kind'] };

export class RecoveryPlanner {
  private readonly hosts: Map<string, Host>;
  private readonly servers: Map<string, Server>;
  private readonly lunArray: Map<string, string>;
  private readonly drillVlan: Map<number, number>;
  private readonly hypervisorImage: Map<string, string>;

  constructor(private readonly inventory: Inventory) {
    this.hosts = new Map(inventory.hosts.map((h) => [h.id, h]));
    this.servers = new Map(inventory.servers.map((s) => [s.id, s]));
    this.lunArray = new Map(inventory.luns.map((l) => [l.id, l.array]));
    this.drillVlan = new Map(inventory.vlans.flatMap((v) => (v.drillVlan === undefined ? [] : [[v.id, v.drillVlan] as const])));
    this.hypervisorImage = new Map(inventory.images.filter((i) => i.hypervisor).map((i) => [i.arch, i.id]));
  }

  host(id: string): Host {
    const host = this.hosts.get(id);
    if (!host) throw new Error(`host "${id}" is not in the inventory`);
    return host;
  }

  server(id: string): Server {
    const server = this.servers.get(id);
    if (!server) throw new Error(`server "${id}" is not in the inventory`);
    return server;
  }

  /** Commands of one step; an empty list means the step has nothing to do (e.g. a server without LUNs). */
  commands(target: RecoveryTarget, step: StepName, frame: CommandFrame): Command[] {
    return this.specs(target, step, frame).map((spec) => this.frame(targetOwner(target), step, spec, frame));
  }

  /** Commands that take a finished step back, for compensation and drill cleanup. */
  undo(target: RecoveryTarget, step: StepName, frame: CommandFrame): Command[] {
    return this.undoSpecs(target, step, frame).map((spec) => this.frame(targetOwner(target), `undo-${step}`, spec, frame));
  }

  /** Reads of everything a drill will change on a host: its power, every NIC's port, its boot entry. */
  borrowReads(hostId: string, frame: CommandFrame): Command[] {
    const host = this.host(hostId);
    const specs: Spec[] = [{ kind: 'power', key: 'power', host: hostId, action: 'status' }];
    host.nics.forEach((nic, i) => specs.push({ kind: 'net', key: `port${i}`, host: hostId, switch: nic.switch, port: nic.port, action: 'read' }));
    const boot = host.nics[0];
    if (boot) specs.push({ kind: 'boot', key: 'boot', host: hostId, mac: boot.mac, action: 'read' });
    return specs.map((spec) => this.frame(hostId, 'borrow', spec, frame));
  }

  /** The prior state from what `borrowReads` observed; throws naming the read that said nothing usable. */
  priorStateOf(hostId: string, reads: readonly Command[], results: readonly CommandResult[]): PriorState {
    const observed = new Map(results.map((r) => [r.commandId, r.observed]));
    const prior: PriorState = { power: 'off', ports: {}, boot: null };
    for (const c of reads) {
      const seen = observed.get(c.commandId);
      const bad = (what: string): Error => new Error(`${hostId}: the ${c.kind} read said nothing usable of ${what}: ${JSON.stringify(seen)}`);
      if (c.kind === 'power') {
        const state = seen?.['powerState'];
        if (state !== 'on' && state !== 'off') throw bad('its power');
        prior.power = state;
      } else if (c.kind === 'net') {
        const port = PortState.safeParse(seen);
        if (!port.success) throw bad(`port ${c.switch}:${c.port}`);
        prior.ports[`${c.switch}:${c.port}`] = port.data;
      } else if (c.kind === 'boot') {
        const entry = BootEntryObserved.safeParse(seen);
        if (!entry.success) throw bad('its boot entry');
        prior.boot = entry.data.entry;
      }
    }
    return prior;
  }

  /** Puts a borrowed host back as `prior` says: power first (nothing runs while its ports change), then ports and boot entry. */
  restores(hostId: string, prior: PriorState, frame: CommandFrame): { power: Command[]; wiring: Command[] } {
    const host = this.host(hostId);
    const power: Spec[] = [{ kind: 'power', key: 'power', host: hostId, action: prior.power }];
    const wiring: Spec[] = [];
    host.nics.forEach((nic, i) => {
      const state = prior.ports[`${nic.switch}:${nic.port}`];
      if (state) wiring.push({ kind: 'net', key: `port${i}`, host: hostId, switch: nic.switch, port: nic.port, action: 'restore', state });
    });
    const boot = host.nics[0];
    if (boot) wiring.push({ kind: 'boot', key: 'boot', host: hostId, mac: boot.mac, action: 'restore', entry: prior.boot });
    const framed = (specs: Spec[]): Command[] => specs.map((spec) => this.frame(hostId, 'restore', spec, frame));
    return { power: framed(power), wiring: framed(wiring) };
  }

  /** BMC fencing: the dead host is powered off. */
  fenceByBmc(hostId: string, frame: CommandFrame): Command[] {
    return [this.frame(hostId, 'fence-bmc', { kind: 'power', key: 'off', host: hostId, action: 'off' }, frame)];
  }

  /** Fabric fencing: the host's switch ports are shut and its initiator sees no LUN of its fabric. */
  fenceByFabric(hostId: string, frame: CommandFrame): Command[] {
    const host = this.host(hostId);
    const specs: Spec[] = host.nics.map((nic, i) => ({ kind: 'net', key: `shut${i}`, host: hostId, switch: nic.switch, port: nic.port, action: 'shut' }));
    if (host.hba) {
      const fabric = host.hba.fabric;
      for (const array of this.inventory.storageArrays.filter((a) => a.fabric === fabric)) {
        specs.push({ kind: 'storage', key: `revoke-${array.id}`, array: array.id, action: 'revoke-all', initiator: host.hba.initiator, host: hostId });
      }
    }
    return specs.map((spec) => this.frame(hostId, 'fence-fabric', spec, frame));
  }

  /** The LUN a (drill) server uses: drills run on clones so production data is never written. */
  lunFor(lun: string, drill: boolean, incidentId: string): string {
    return drill ? `${lun}-d-${shortHash(incidentId)}` : lun;
  }

  vlanFor(vlan: number, drill: boolean): number {
    return drill ? (this.drillVlan.get(vlan) ?? vlan) : vlan;
  }

  /** A stable MAC for a server's VM, in the locally administered 52:54:00 range qemu uses. */
  static vmMac(server: string): string {
    const hex = createHash('sha256').update(server).digest('hex');
    return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
  }

  private vlansOf(target: RecoveryTarget, drill: boolean): number[] {
    const servers = target.mode === 'hypervisor' ? target.servers : [target.server];
    const vlans = servers.flatMap((s) => this.server(s).vlans).map((v) => this.vlanFor(v, drill));
    return [...new Set(vlans)].sort((a, b) => a - b);
  }

  private lunsOf(target: RecoveryTarget): string[] {
    const servers = target.mode === 'hypervisor' ? target.servers : [target.server];
    return [...new Set(servers.flatMap((s) => this.server(s).luns))].sort();
  }

  private specs(target: RecoveryTarget, step: StepName, frame: Pick<CommandFrame, 'drill' | 'incidentId'>): Spec[] {
    const { drill, incidentId } = frame;
    if (target.mode === 'vm') return this.vmSpecs(target, step, frame);
    const host = this.host(target.host);
    switch (step) {
      case 'prepare':
        // Spares are off already (no action is sent); a repurposable host loses its workload here.
        return [{ kind: 'power', key: 'off', host: host.id, action: 'off' }];
      case 'storage': {
        if (!host.hba) return [];
        const specs: Spec[] = [];
        for (const lun of this.lunsOf(target)) {
          const array = this.lunArray.get(lun);
          if (array === undefined) throw new Error(`LUN "${lun}" is not in the inventory`);
          const use = this.lunFor(lun, drill, incidentId);
          if (drill) specs.push({ kind: 'storage', key: `clone-${lun}`, array, action: 'clone', lun, cloneId: use });
          specs.push({ kind: 'storage', key: `grant-${lun}`, array, action: 'grant', lun: use, initiator: host.hba.initiator, host: host.id });
        }
        return specs;
      }
      case 'network': {
        const vlans = this.vlansOf(target, drill);
        return host.nics.map((nic, i) =>
          vlans.length === 1 && target.mode === 'bare-metal'
            ? { kind: 'net', key: `nic${i}`, host: host.id, switch: nic.switch, port: nic.port, action: 'access', vlan: vlans[0] }
            : { kind: 'net', key: `nic${i}`, host: host.id, switch: nic.switch, port: nic.port, action: 'trunk', vlans, nativeVlan: vlans[0] },
        );
      }
      case 'boot': {
        const nic = host.nics[0];
        if (!nic) throw new Error(`host "${host.id}" has no NIC to boot from`);
        const image = target.mode === 'bare-metal' ? this.server(target.server).image : this.hypervisorImage.get(host.arch);
        if (image === undefined) throw new Error(`no hypervisor image for ${host.arch} in the inventory`);
        const server = target.mode === 'bare-metal' ? target.server : host.id;
        const configure: Spec = { kind: 'boot', key: 'script', host: host.id, mac: nic.mac, action: 'configure', image, server };
        // A drill instance runs on the VLAN twins and LUN clones the network and storage steps gave it, not its
        // server's production ones. The key stays 'script', so the command id is the same with or without attach.
        if (drill && target.mode === 'bare-metal') {
          configure['attach'] = { vlans: this.vlansOf(target, drill), luns: this.lunsOf(target).map((lun) => this.lunFor(lun, drill, incidentId)) };
        }
        return [
          configure,
          { kind: 'power', key: 'pxe', host: host.id, action: 'pxe-once' },
        ];
      }
      case 'power-on':
        return [{ kind: 'power', key: 'on', host: host.id, action: 'on' }];
      default:
        return [];
    }
  }

  private vmSpecs(target: Extract<RecoveryTarget, { mode: 'vm' }>, step: StepName, frame: Pick<CommandFrame, 'drill' | 'incidentId'>): Spec[] {
    const { drill, incidentId } = frame;
    const server = this.server(target.server);
    const base = { kind: 'vm' as const, hypervisor: target.hypervisor, vm: server.id };
    switch (step) {
      case 'vm-define':
        return [
          {
            ...base,
            key: 'define',
            action: 'define',
            spec: {
              cpus: server.cpus,
              memoryGiB: server.memoryGiB,
              image: server.image,
              vlans: server.vlans.map((v) => this.vlanFor(v, drill)),
              luns: server.luns.map((l) => this.lunFor(l, drill, incidentId)),
              mac: RecoveryPlanner.vmMac(server.id),
              ...(drill && { drill: true }),
            },
          },
        ];
      case 'vm-start':
        return [{ ...base, key: 'start', action: 'start' }];
      default:
        return [];
    }
  }

  private undoSpecs(target: RecoveryTarget, step: StepName, frame: Pick<CommandFrame, 'drill' | 'incidentId'>): Spec[] {
    if (target.mode === 'vm') {
      const base = { kind: 'vm' as const, hypervisor: target.hypervisor, vm: target.server };
      if (step === 'vm-define') return [{ ...base, key: 'undefine', action: 'undefine' }];
      if (step === 'vm-start') return [{ ...base, key: 'stop', action: 'stop' }];
      return [];
    }
    if (target.mode === 'hypervisor' && target.standing) {
      // A standing hypervisor keeps its other VMs' wiring; only our grants go.
      if (step !== 'storage') return [];
    }
    const host = this.host(target.host);
    switch (step) {
      case 'storage':
        return this.specs(target, 'storage', frame).flatMap((spec): Spec[] => {
          if (spec['action'] === 'grant') return [{ ...spec, key: `revoke-${String(spec['lun'])}`, action: 'revoke' }];
          if (spec['action'] === 'clone') return [{ kind: 'storage', key: `drop-${String(spec['lun'])}`, array: spec['array'], action: 'delete-clone', cloneId: spec['cloneId'] }];
          return [];
        });
      case 'network':
        // The host's old VLANs are not known; a shut port is the safe state to leave it in.
        return host.nics.map((nic, i) => ({ kind: 'net', key: `shut${i}`, host: host.id, switch: nic.switch, port: nic.port, action: 'shut' }));
      case 'boot': {
        const nic = host.nics[0];
        return nic ? [{ kind: 'boot', key: 'clear', host: host.id, mac: nic.mac, action: 'clear' }] : [];
      }
      case 'power-on':
        return [{ kind: 'power', key: 'off', host: host.id, action: 'off' }];
      default:
        return [];
    }
  }

  /** `owner` (a target key or a fenced host) and step make the command id stable across restarts. */
  private frame(owner: string, step: string, spec: Spec, frame: CommandFrame): Command {
    const { key, ...rest } = spec;
    const commandId = `${frame.incidentId}-${shortHash(`${owner}/${step}/${key}`)}-a${frame.attempt}`;
    return {
      ...rest,
      commandId,
      incidentId: frame.incidentId,
      site: frame.site,
      fencingToken: frame.fencingToken,
      issuer: frame.issuer,
      issuedAt: frame.now,
      deadline: frame.deadline,
      attempt: frame.attempt,
      drill: frame.drill,
    } as Command;
  }
}

export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
