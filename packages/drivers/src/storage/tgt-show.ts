/**
 * Reads `tgtadm --lld iscsi --mode target --op show`: one "Target N: name"
 * block per target with its sessions (I_T nexus), logical units and ACL.
 * That one listing is everything the tgt driver decides on, so every
 * ensure-step costs a single read. (`--op show --tid N` prints the target's
 * iSCSI parameters instead, not this block.)
 */

export interface TgtLogicalUnit {
  lun: number;
  /** `controller` for LUN 0, which tgtd adds to every target; `disk` for a backing store. */
  type: string;
  /** Undefined when tgtd prints "None" (the controller). */
  backingStorePath: string | undefined;
}

/** A logged-in initiator (tgtd's I_T nexus id is the iSCSI session id). */
export interface TgtSession {
  sid: number;
  initiator: string;
  connections: number[];
}

export interface TgtTarget {
  tid: number;
  name: string;
  units: TgtLogicalUnit[];
  /** ACL entries as tgtd lists them: initiator names, and addresses (`ALL`, an IP, a network). */
  acl: string[];
  sessions: TgtSession[];
}

type Section = 'system' | 'nexus' | 'lun' | 'account' | 'acl' | undefined;

const sections: Record<string, Section> = {
  'System information:': 'system',
  'I_T nexus information:': 'nexus',
  'LUN information:': 'lun',
  'Account information:': 'account',
  'ACL information:': 'acl',
};

/** Throws an Error saying which line it could not read; the driver wraps it with the array's name. */
export function parseTgtShow(output: string): TgtTarget[] {
  const targets: TgtTarget[] = [];
  let target: TgtTarget | undefined;
  let section: Section;
  let unit: TgtLogicalUnit | undefined;
  let session: TgtSession | undefined;
  for (const [index, raw] of output.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const head = /^Target (\d+): (\S+)$/.exec(raw);
    if (head) {
      target = { tid: Number(head[1]), name: head[2] ?? '', units: [], acl: [], sessions: [] };
      targets.push(target);
      section = undefined;
      unit = undefined;
      session = undefined;
      continue;
    }
    if (target === undefined) throw new Error(`line ${index + 1} "${line}" comes before any "Target N: name"`);
    if (line in sections) {
      section = sections[line];
      continue;
    }
    switch (section) {
      case 'nexus': {
        const nexus = /^I_T nexus: (\d+)$/.exec(line);
        if (nexus) {
          session = { sid: Number(nexus[1]), initiator: '', connections: [] };
          target.sessions.push(session);
          break;
        }
        const initiator = /^Initiator: (\S+)/.exec(line);
        if (initiator && session) session.initiator = initiator[1] ?? '';
        const connection = /^Connection: (\d+)$/.exec(line);
        if (connection && session) session.connections.push(Number(connection[1]));
        break;
      }
      case 'lun': {
        const lun = /^LUN: (\d+)$/.exec(line);
        if (lun) {
          unit = { lun: Number(lun[1]), type: '', backingStorePath: undefined };
          target.units.push(unit);
          break;
        }
        const [key, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (unit && key === 'Type') unit.type = value;
        if (unit && key === 'Backing store path') unit.backingStorePath = value === 'None' || value === '' ? undefined : value;
        break;
      }
      case 'acl':
        target.acl.push(line);
        break;
      default:
        // System and account details, and fields added by later tgt versions: nothing the driver decides on.
        break;
    }
  }
  if (targets.length === 0 && output.trim() !== '') throw new Error('no "Target N: name" block');
  return targets;
}

/** ACL entries that name initiators, as opposed to addresses: tgt keeps both in one list. */
export function isInitiatorName(entry: string): boolean {
  return /^(iqn|eui|naa)\./i.test(entry);
}
