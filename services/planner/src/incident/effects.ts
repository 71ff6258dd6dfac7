/**
 * Everything the incident machines need from the outside world. The machines
 * decide; these do. Real implementations live in ../effects and are bound in
 * one wiring file; machine tests provide fakes with the same failure modes.
 */
import type { Command, CommandResult, IncidentProgress } from '@firebreak/shared';

export interface HeartbeatWanted {
  /** Whose wait it is, for its trace. */
  incidentId?: string;
  site: string;
  rack: string;
  /** The host the server must now run on (for a VM: its hypervisor). */
  host: string;
  /** The server identity the heartbeat must carry; null for a bare hypervisor host. */
  server: string | null;
  /** Only a heartbeat sent at or after this instant counts (not one from before the reboot). */
  sentAfter: number;
}

export interface ClaimOutcome {
  /** Hosts now leased to the incident (including ones it already held). */
  claimed: string[];
  /** Hosts another incident holds: the plan must be made again without them. */
  lost: { host: string; holder: string }[];
}

export interface IncidentEffects {
  /**
   * Publishes the commands (ids are stable, so a repeat is deduplicated) and
   * resolves with one result per command, in order, once all are in. A
   * command whose result is already recorded on the bus is not published
   * again: a planner resumed after a crash does not re-issue finished work.
   * Rejects only when the signal aborts (the caller's deadline).
   */
  runCommands(commands: readonly Command[], signal: AbortSignal): Promise<CommandResult[]>;
  /** Resolves with the heartbeat's sentAt when a matching one arrives; rejects when the signal aborts. */
  waitForHeartbeat(wanted: HeartbeatWanted, signal: AbortSignal): Promise<number>;
  /**
   * A wait for `wanted` is coming (the host is about to be powered on): listen
   * from now until the signal aborts and keep what matches, so that a wait
   * begun later still gets a heartbeat sent in between. A host that boots fast
   * beats once at start, then only every period. Optional: without it, a wait
   * hears only heartbeats sent after it began.
   */
  watchHeartbeats?(wanted: HeartbeatWanted, signal: AbortSignal): void;
  /** Leases hosts to the incident atomically per host (Redis, with fencing tokens). */
  claimHosts(incidentId: string, hosts: readonly string[]): Promise<ClaimOutcome>;
  /** Gives the incident's leases back (compensation, cleanup); hosts it does not hold are ignored. */
  releaseHosts(incidentId: string, hosts: readonly string[]): Promise<void>;
  /** Fire and forget: progress for dashboards and the CLI. */
  publishProgress(progress: IncidentProgress): void;
}
