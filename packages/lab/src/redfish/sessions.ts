/**
 * One BMC endpoint's Redfish sessions: X-Auth-Token → account. Sessions idle
 * longer than the timeout expire, so clients must cope with a 401 mid-way
 * and log in again, as against a real BMC.
 */
import { randomBytes } from 'node:crypto';

export interface Account {
  readonly username: string;
  readonly password: string;
}

export function sameAccount(a: Account | undefined, b: Account | undefined): boolean {
  return a !== undefined && b !== undefined && a.username === b.username && a.password === b.password;
}

export interface Session {
  readonly id: string;
  readonly token: string;
  readonly account: Account;
  lastUsed: number;
}

export class SessionStore {
  private readonly byToken = new Map<string, Session>();
  private readonly byId = new Map<string, Session>();
  private nextId = 1;

  constructor(readonly timeoutMs: number) {}

  create(account: Account): Session {
    const s: Session = { id: String(this.nextId++), token: randomBytes(24).toString('hex'), account, lastUsed: Date.now() };
    this.byToken.set(s.token, s);
    this.byId.set(s.id, s);
    return s;
  }

  /** The live session of a token, touching it. */
  authenticate(token: string): Session | undefined {
    const s = this.byToken.get(token);
    if (s === undefined) return undefined;
    if (Date.now() - s.lastUsed > this.timeoutMs) {
      this.delete(s.id);
      return undefined;
    }
    s.lastUsed = Date.now();
    return s;
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  delete(id: string): boolean {
    const s = this.byId.get(id);
    if (s === undefined) return false;
    this.byId.delete(id);
    this.byToken.delete(s.token);
    return true;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }
}
