/**
 * Resets land late, as on real BMCs: the action is accepted at once (204) and
 * the world's power changes `delayMs` later. A client that trusts the 204
 * instead of reading PowerState back sees the old state.
 */
import type { PowerState, World } from '../world.ts';
import { redfishErrors } from './redfish-error.ts';
import type { ResetType } from './resources.ts';

export class DelayedPower {
  private readonly pending = new Map<string, { type: ResetType; timer: NodeJS.Timeout }>();

  constructor(
    private readonly world: World,
    private readonly delayMs: number,
  ) {}

  pendingFor(hostId: string): ResetType | undefined {
    return this.pending.get(hostId)?.type;
  }

  /** Accepts a reset the system's (pending) state allows; a 409 Redfish error otherwise, as iDRAC answers "already on". */
  request(hostId: string, type: ResetType): void {
    const heading = this.heading(hostId);
    if (type === 'On' && heading === 'on') throw redfishErrors.conflict('the system is already powered on');
    if (type !== 'On' && heading === 'off') throw redfishErrors.conflict('the system is powered off');
    this.cancel(hostId);
    const timer = setTimeout(() => this.land(hostId, type), this.delayMs);
    this.pending.set(hostId, { type, timer });
  }

  stop(): void {
    for (const hostId of [...this.pending.keys()]) this.cancel(hostId);
  }

  /** Power as it will be once the pending reset lands. */
  private heading(hostId: string): PowerState {
    const type = this.pendingFor(hostId);
    if (type === undefined) return this.world.host(hostId).power;
    return type === 'On' || type === 'ForceRestart' ? 'on' : 'off';
  }

  private cancel(hostId: string): void {
    const entry = this.pending.get(hostId);
    if (entry) clearTimeout(entry.timer);
    this.pending.delete(hostId);
  }

  private land(hostId: string, type: ResetType): void {
    this.pending.delete(hostId);
    // A BMC that lost power meanwhile (a burned rack) never carries out what it had accepted.
    if (!this.world.host(hostId).bmc.reachable) return;
    switch (type) {
      case 'On':
        this.world.setPower(hostId, 'on');
        break;
      case 'ForceOff':
      case 'GracefulShutdown':
        this.world.setPower(hostId, 'off');
        break;
      case 'ForceRestart':
        // Off then on: the host simulator sees a fresh boot (and a pending PXE override).
        this.world.setPower(hostId, 'off');
        this.world.setPower(hostId, 'on');
        break;
    }
  }
}
