/**
 * Which BMC endpoints the inventory names and what each serves: one HTTPS
 * endpoint per distinct `bmc.address` (sushy-tools style, one per rack in
 * generated topologies), each host a ComputerSystem with
 * `Id = bmc.systemId ?? host.id`, and the accounts its hosts' credential
 * references resolve to.
 */
import { resolveCredentials, type Inventory } from '@firebreak/shared';
import { stableUuid } from './resources.ts';
import { SessionStore, type Account } from './sessions.ts';

export interface SystemEntry {
  /** The ComputerSystem Id (also the Manager and Chassis Id). */
  readonly id: string;
  readonly hostId: string;
  /** The credentials the host's `bmc.credentialsRef` resolves to. */
  readonly account: Account;
}

export interface EndpointModel {
  /** As the inventory spells it. */
  readonly address: string;
  readonly port: number;
  readonly systems: ReadonlyMap<string, SystemEntry>;
  readonly accounts: readonly Account[];
  /** Absent: the endpoint has no SessionService (basic auth only). */
  readonly sessions: SessionStore | undefined;
  readonly uuid: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost']);

/** `host:port` or `https://host:port`; the lab binds loopback only. */
export function bmcListenPort(address: string): number {
  let url: URL;
  try {
    url = new URL(address.includes('://') ? address : `https://${address}`);
  } catch {
    throw new Error(`lab: BMC address "${address}" is not host:port or an https URL`);
  }
  if (url.protocol !== 'https:') throw new Error(`lab: BMC address "${address}": the simulated BMCs speak https only`);
  if (!LOOPBACK.has(url.hostname)) throw new Error(`lab: BMC address "${address}": the lab binds 127.0.0.1 only`);
  if (url.port === '') throw new Error(`lab: BMC address "${address}" needs an explicit port`);
  return Number(url.port);
}

export interface EndpointOptions {
  withoutSessionService: readonly string[];
  sessionTimeoutMs: number;
  env: NodeJS.ProcessEnv;
}

export async function endpointModels(inventory: Inventory, options: EndpointOptions): Promise<EndpointModel[]> {
  const basicOnly = new Set(options.withoutSessionService.map(bmcListenPort));
  const accounts = new Map<string, Promise<Account>>();
  const accountOf = (ref: string, hostId: string): Promise<Account> => {
    let account = accounts.get(ref);
    if (account === undefined) {
      account = resolveCredentials(ref, options.env).then(({ username, password }) => {
        if (username === undefined || password === undefined) {
          throw new Error(`lab: BMC credentials ${ref} (host ${hostId}) need a username and a password`);
        }
        return { username, password: password.reveal() };
      });
      accounts.set(ref, account);
    }
    return account;
  };

  const byPort = new Map<number, { address: string; systems: Map<string, SystemEntry> }>();
  for (const host of inventory.hosts) {
    const port = bmcListenPort(host.bmc.address);
    const id = host.bmc.systemId ?? host.id;
    if (id.includes('/')) throw new Error(`lab: host ${host.id}: bmc.systemId must be an Id, not a path`);
    let ep = byPort.get(port);
    if (ep === undefined) byPort.set(port, (ep = { address: host.bmc.address, systems: new Map() }));
    const clash = ep.systems.get(id);
    if (clash) throw new Error(`lab: hosts ${clash.hostId} and ${host.id} both claim system "${id}" at ${host.bmc.address}`);
    ep.systems.set(id, { id, hostId: host.id, account: await accountOf(host.bmc.credentialsRef, host.id) });
  }

  return [...byPort].map(([port, ep]) => ({
    address: ep.address,
    port,
    systems: ep.systems,
    accounts: uniqueAccounts([...ep.systems.values()].map((s) => s.account)),
    sessions: basicOnly.has(port) ? undefined : new SessionStore(options.sessionTimeoutMs),
    uuid: stableUuid(`endpoint:${port}`),
  }));
}

function uniqueAccounts(list: Account[]): Account[] {
  return [...new Map(list.map((a) => [`${a.username}\0${a.password}`, a])).values()];
}
