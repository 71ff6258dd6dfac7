/**
 * Every Redis key Firebreak uses. No other file spells one, so a rename or a
 * layout change happens here.
 *
 * Keys that one Lua script or MULTI touches together share a `{hash tag}`, so
 * the layout keeps working on Redis Cluster, where a script or transaction
 * may only touch keys of one slot.
 */

const PREFIX = 'fb';

/** Whitespace breaks tooling that prints keys; braces would move a key's hash tag. */
const KEY_PART = /^[^\s{}]+$/;

function keyPart(value: string, what: string): string {
  if (!KEY_PART.test(value)) {
    throw new Error(`${what} "${value}" cannot be used in a Redis key: it must not be empty or contain whitespace, '{' or '}'`);
  }
  return value;
}

/** A lease namespace is part of a hash tag and a prefix; a ':' would let two namespaces collide. */
export function leaseNamespace(value: string): string {
  if (value.includes(':')) throw new Error(`lease namespace "${value}" must not contain ':'`);
  return keyPart(value, 'lease namespace');
}

function leaseTag(namespace: string, id: string): string {
  return `{${leaseNamespace(namespace)}:${keyPart(id, 'lease id')}}`;
}

export const redisKeys = {
  /** Hash `{ owner, token }` with a PX expiry: who holds the lease now. */
  lease: (namespace: string, id: string): string => `${PREFIX}:lease:${leaseTag(namespace, id)}`,
  /** Counter that never expires, so fencing tokens keep rising across expiry and re-acquire. */
  fencingCounter: (namespace: string, id: string): string => `${PREFIX}:fence:${leaseTag(namespace, id)}`,

  idempotency: (key: string): string => `${PREFIX}:idem:${keyPart(key, 'idempotency key')}`,

  /** A device's lock and the newest planner token per site that asked for it share the device's tag: one script reads both. */
  deviceLock: (device: string): string => `${PREFIX}:{device:${keyPart(device, 'device')}}:lock`,
  deviceLockTokens: (device: string): string => `${PREFIX}:{device:${keyPart(device, 'device')}}:tokens`,

  /** Snapshots and the open set share the `{incidents}` tag: they change in one MULTI. */
  snapshot: (incidentId: string): string => `${PREFIX}:{incidents}:snapshot:${keyPart(incidentId, 'incident id')}`,
  openIncidents: `${PREFIX}:{incidents}:open`,

  /** Hash `{ doc, version }`: one key, so a reader gets a document and its version together. */
  inventory: `${PREFIX}:inventory`,

  /** The fleet ledger shares the `{ledger}` tag: one script changes entries, versions, history and the token together. */
  ledgerServers: `${PREFIX}:{ledger}:servers`,
  ledgerServerVersions: `${PREFIX}:{ledger}:server-versions`,
  ledgerHosts: `${PREFIX}:{ledger}:hosts`,
  ledgerHostVersions: `${PREFIX}:{ledger}:host-versions`,
  /** The newest planner fencing token that wrote the ledger for a site. */
  ledgerToken: (site: string): string => `${PREFIX}:{ledger}:token:${keyPart(site, 'site')}`,
  /** List of history records, oldest first. */
  ledgerHistory: (entity: 'server' | 'host', id: string): string => `${PREFIX}:{ledger}:history:${entity}:${keyPart(id, `${entity} id`)}`,
} as const;
