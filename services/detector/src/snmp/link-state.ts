/**
 * Per-host NIC link state, fed with the trap receiver's link events. One port
 * down is a cable or a switch port; every NIC of a host down at once is what a
 * dead host (or a burned rack) looks like from the switches, usually before
 * its heartbeats are missed. The correlator takes `all-down` as a failure
 * candidate with cause `link-down`, pending a BMC check.
 *
 * Every port starts up (no news from a switch is good news) and only down
 * ports are stored, so a large fleet costs next to nothing here.
 */
import { EventEmitter } from 'node:events';
import { switchPortKey, type Inventory } from '@firebreak/shared';

export interface HostLinksEvent {
  host: string;
  /** The port whose change made the host's links all down, or brought the first one back. */
  switch: string;
  port: number;
  at: number;
}

export interface LinkStateEvents {
  /** Every NIC of the host is down now; it was not before. */
  'all-down': [event: HostLinksEvent];
  /** The host had every NIC down and one has come back. */
  restored: [event: HostLinksEvent];
}

export class LinkState extends EventEmitter<LinkStateEvents> {
  /** The switch-port keys of each host's NICs. */
  readonly #nics = new Map<string, readonly string[]>();
  /** Only hosts with a port down have an entry. */
  readonly #down = new Map<string, Set<string>>();

  constructor(inventory: Inventory) {
    super();
    for (const host of inventory.hosts) this.#nics.set(host.id, host.nics.map((nic) => switchPortKey(nic.switch, nic.port)));
  }

  /** Applies one port's new state; a port that is not one of the host's NICs is ignored. */
  update(host: string, switchId: string, port: number, state: 'up' | 'down', at = Date.now()): void {
    const nics = this.#nics.get(host);
    const key = switchPortKey(switchId, port);
    if (nics === undefined || !nics.includes(key)) return;
    const wasAllDown = this.allLinksDown(host);
    const down = this.#down.get(host) ?? new Set<string>();
    if (state === 'down') down.add(key);
    else down.delete(key);
    if (down.size > 0) this.#down.set(host, down);
    else this.#down.delete(host);
    const isAllDown = this.allLinksDown(host);
    const payload: HostLinksEvent = { host, switch: switchId, port, at };
    if (!wasAllDown && isAllDown) this.emit('all-down', payload);
    else if (wasAllDown && !isAllDown) this.emit('restored', payload);
  }

  allLinksDown(host: string): boolean {
    const nics = this.#nics.get(host);
    return nics !== undefined && this.#down.get(host)?.size === nics.length;
  }

  /** The host's down ports as `switch:port` keys. */
  downLinks(host: string): string[] {
    return [...(this.#down.get(host) ?? [])];
  }
}
