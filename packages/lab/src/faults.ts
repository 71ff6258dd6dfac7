/**
 * Fault injection over the world model. Each fault changes the world the way
 * the real failure would; the simulators then show it over their protocols
 * (BMCs stop answering, switches send linkDown traps, heartbeats stop).
 */
import type { World } from './world.ts';

export type BmcFault = { mode: 'unreachable' } | { mode: 'slow'; latencyMs: number } | { mode: 'fail'; requests: number } | { mode: 'ok' };
export type SwitchFault = { mode: 'slow'; latencyMs: number; jitterMs?: number } | { mode: 'ok' };

export interface FlapOptions {
  /** How long the host is silent, then talking, in each cycle. */
  periodMs: number;
  cycles: number;
}

export class Faults {
  private readonly flaps = new Map<string, NodeJS.Timeout>();

  constructor(private readonly world: World) {}

  /** Fire or power loss: hosts off, BMCs dark, every NIC's link down; returns the rack's hosts. */
  burnRack(rackId: string): string[] {
    const hosts = [...this.world.allHosts()].filter((rt) => rt.host.rack === rackId);
    if (hosts.length === 0) throw new Error(`no rack "${rackId}" in the lab (racks: ${this.rackIds().join(', ')})`);
    this.world.recorder.record('fault', 'burn-rack', { detail: { rack: rackId, hosts: hosts.map((h) => h.host.id) } });
    for (const rt of hosts) {
      this.stopFlap(rt.host.id);
      rt.bmc.reachable = false;
      this.world.setPower(rt.host.id, 'off');
      for (const nic of rt.host.nics) this.world.setPortCarrier(nic.switch, nic.port, 'down');
    }
    return hosts.map((h) => h.host.id);
  }

  /** The host dies (OS crash, dead PSU) but its BMC still answers and reports it off. */
  killHost(hostId: string): void {
    this.world.host(hostId);
    this.world.recorder.record('fault', 'kill-host', { host: hostId });
    this.stopFlap(hostId);
    this.world.setPower(hostId, 'off');
  }

  /** The host keeps running but its heartbeats no longer arrive; the BMC says all is well. */
  isolateHost(hostId: string, isolated = true): void {
    this.world.host(hostId).isolated = isolated;
    this.world.recorder.record('fault', isolated ? 'isolate-host' : 'rejoin-host', { host: hostId });
  }

  setBmc(hostId: string, fault: BmcFault): void {
    const bmc = this.world.host(hostId).bmc;
    bmc.reachable = fault.mode !== 'unreachable';
    bmc.extraLatencyMs = fault.mode === 'slow' ? fault.latencyMs : 0;
    bmc.failNext = fault.mode === 'fail' ? fault.requests : 0;
    this.world.recorder.record('fault', `bmc-${fault.mode}`, { host: hostId, detail: { ...fault } });
  }

  /** A slow switch serves (reads or applies, then answers) every SNMP request that much later, plus up to the jitter at random. */
  setSwitch(switchId: string, fault: SwitchFault): void {
    const behaviour = this.world.switchBehaviour(switchId);
    behaviour.extraLatencyMs = fault.mode === 'slow' ? fault.latencyMs : 0;
    behaviour.jitterMs = fault.mode === 'slow' ? (fault.jitterMs ?? 0) : 0;
    this.world.recorder.record('fault', `switch-${fault.mode}`, { detail: { switch: switchId, ...fault } });
  }

  setHealth(hostId: string, health: 'OK' | 'Warning' | 'Critical'): void {
    this.world.host(hostId).health = health;
    this.world.recorder.record('fault', 'bmc-health', { host: hostId, detail: { health } });
  }

  /** Heartbeats stop and resume repeatedly, the way a bad cable or NIC behaves. */
  flapHost(hostId: string, options: FlapOptions): void {
    const rt = this.world.host(hostId);
    this.stopFlap(hostId);
    this.world.recorder.record('fault', 'flap-host', { host: hostId, detail: { ...options } });
    let toggles = options.cycles * 2;
    const tick = (): void => {
      rt.isolated = !rt.isolated;
      if (--toggles <= 0) {
        rt.isolated = false;
        this.flaps.delete(hostId);
        return;
      }
      this.flaps.set(hostId, setTimeout(tick, options.periodMs));
    };
    tick();
  }

  /** Undo a burn or kill: power and links back, BMC answering. The host boots from disk. */
  restoreHost(hostId: string): void {
    const rt = this.world.host(hostId);
    this.stopFlap(hostId);
    rt.bmc.reachable = true;
    rt.bmc.extraLatencyMs = 0;
    rt.bmc.failNext = 0;
    rt.isolated = false;
    rt.health = 'OK';
    for (const nic of rt.host.nics) this.world.setPortCarrier(nic.switch, nic.port, 'up');
    this.world.recorder.record('fault', 'restore-host', { host: hostId });
  }

  stop(): void {
    for (const id of [...this.flaps.keys()]) this.stopFlap(id);
  }

  private stopFlap(hostId: string): void {
    const timer = this.flaps.get(hostId);
    if (timer) clearTimeout(timer);
    this.flaps.delete(hostId);
  }

  private rackIds(): string[] {
    return this.world.inventory.racks.map((r) => r.id);
  }
}
