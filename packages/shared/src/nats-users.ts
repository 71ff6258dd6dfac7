/**
 * The NATS identities of deploy/nats/nats.conf, for servers this repository
 * starts itself (`firebreak up`/`lab`, the tests) with that same file: the
 * users and their permissions live there only; here is how each user's
 * password reaches the server and how one is generated.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** Every user nats.conf names; the server refuses to start while one has no password variable. */
export const natsUsers = ['admin', 'detector', 'planner', 'executor', 'operator', 'host-agent'] as const;
export type NatsUser = (typeof natsUsers)[number];

/** What `connectBus` (and NATS_USER / NATS_PASSWORD) take to log in as one user. */
export interface NatsCredentials {
  readonly user: NatsUser;
  readonly password: string;
}

/** deploy/nats/nats.conf, found from this package: a monorepo checkout, as `firebreak up` runs from one. */
export const natsConfPath = fileURLToPath(new URL('../../../deploy/nats/nats.conf', import.meta.url));

/** `host-agent` → `NATS_HOST_AGENT_PASSWORD`, the variable nats.conf reads. */
export function passwordVariable(user: NatsUser): string {
  return `NATS_${user.toUpperCase().replaceAll('-', '_')}_PASSWORD`;
}

/**
 * Letters and digits, starting with a letter: nats.conf's parser reads a
 * number as a number and stops at spaces and '#' (deploy/README.md tells
 * operators the same), and a URL's userinfo needs no escaping.
 */
export function randomPassword(): string {
  return `fb${randomBytes(24).toString('hex')}`;
}

export function randomNatsPasswords(): Record<NatsUser, string> {
  return Object.fromEntries(natsUsers.map((user) => [user, randomPassword()])) as Record<NatsUser, string>;
}
