/**
 * One switch's MIB as net-snmp's agent serves it, mirrored from the world.
 * The agent answers from its own MIB tree, so `sync()` copies the world into
 * the tree before every request (reads then show what other simulators and
 * faults changed), and the SET handlers write into the world (an SNMP SET
 * changes who can reach whom). The tree is a per-request cache; the world is
 * the truth.
 */
import type { Switch } from '@firebreak/shared';
import { DEFAULT_VLAN, type PortRuntime, type World } from '../world.ts';
import { snmp, type Mib, type MibRequest, type TableColumn, type Varbind } from './net-snmp.ts';
import { columns, ifStatus, oids, parseInstance } from './oids.ts';
import { decodePortList, encodePortList } from './port-list.ts';

const MAX_VLAN = 4094;
const { ObjectType, MaxAccess, MibProviderType, RowStatus, ErrorStatus, PduType } = snmp;

const tables = {
  if: 'ifEntry',
  ifX: 'ifXEntry',
  basePort: 'dot1dBasePortEntry',
  portVlan: 'dot1qPortVlanEntry',
  vlanStatic: 'dot1qVlanStaticEntry',
} as const;

/** One dot1qVlanStaticEntry: the VLAN, its name and its member ports, ascending. */
export interface VlanTableRow {
  vlan: number;
  name: string;
  egress: number[];
  untagged: number[];
}

const column = (number: number, name: string, type: number, maxAccess: number, extra: Partial<TableColumn> = {}): TableColumn => ({
  number,
  name,
  type,
  maxAccess,
  ...extra,
});

export class SwitchMib {
  private readonly ports: ReadonlyMap<number, PortRuntime>;
  /** PortList width: enough octets for the highest port number. */
  private readonly octets: number;
  private readonly vlanNames: ReadonlyMap<number, string>;
  /** VLANs created over SNMP: the switch keeps them in its VLAN database even when no port carries them. */
  private readonly created = new Set<number>();
  /** VLAN rows currently in the MIB tree. */
  private readonly rows = new Set<number>();

  constructor(
    private readonly world: World,
    private readonly sw: Switch,
    private readonly mib: Mib,
  ) {
    const ports = world.portsOf(sw.id);
    this.ports = new Map(ports.map((p) => [p.port, p]));
    this.octets = Math.max(1, Math.ceil(Math.max(0, ...this.ports.keys()) / 8));
    // Like a switch set up for drills: each VLAN of its fabric and the drill twin the inventory names for it are
    // configured from the start, so a drill uses them and leaves the VLAN database as it found it.
    this.vlanNames = new Map(
      world.inventory.vlans
        .filter((v) => v.fabric === sw.fabric)
        .flatMap((v): [number, string][] => (v.drillVlan === undefined ? [[v.id, v.name]] : [[v.id, v.name], [v.drillVlan, `${v.name}-drill`]])),
    );
    this.register();
    mib.setScalarValue('sysName', sw.id);
    for (const p of ports) {
      mib.addTableRow(tables.if, [p.port, `${sw.id} port ${p.port}`, ifStatus[p.admin], ifStatus[p.oper]]);
      mib.addTableRow(tables.ifX, [p.port, `port${p.port}`]);
      mib.addTableRow(tables.basePort, [p.port, p.port]);
      mib.addTableRow(tables.portVlan, [p.port, p.pvid]);
    }
    this.sync();
  }

  /** Copies the world into the MIB tree: port status, PVIDs, and one VLAN row per VLAN the switch knows. */
  sync(): void {
    for (const p of this.ports.values()) {
      this.mib.setTableSingleCell(tables.if, columns.ifAdminStatus, [p.port], ifStatus[p.admin]);
      this.mib.setTableSingleCell(tables.if, columns.ifOperStatus, [p.port], ifStatus[p.oper]);
      this.mib.setTableSingleCell(tables.portVlan, columns.dot1qPvid, [p.port], p.pvid);
    }
    const vlans = this.vlans();
    for (const vlan of this.rows) {
      if (vlans.has(vlan)) continue;
      this.mib.deleteTableRow(tables.vlanStatic, [vlan]);
      this.rows.delete(vlan);
    }
    for (const vlan of vlans) {
      if (!this.rows.has(vlan)) {
        this.addVlanRow(vlan, RowStatus.active);
        continue;
      }
      this.mib.setTableSingleCell(tables.vlanStatic, columns.dot1qVlanStaticEgressPorts, [vlan], this.portList(vlan, 'egress'));
      this.mib.setTableSingleCell(tables.vlanStatic, columns.dot1qVlanStaticUntaggedPorts, [vlan], this.portList(vlan, 'untagged'));
      this.mib.setTableSingleCell(tables.vlanStatic, columns.dot1qVlanStaticRowStatus, [vlan], RowStatus.active);
    }
  }

  /**
   * Runs before net-snmp processes a SET, on the request's varbinds.
   * Writing a VLAN's egress or untagged ports creates the VLAN, as does
   * RowStatus createAndGo: net-snmp only writes instances that exist, so the
   * rows are added here first; a createAndGo row starts as createAndGo, which
   * net-snmp's RowStatus check takes as a fresh row and answers active.
   */
  prepareSet(varbinds: Varbind[]): void {
    for (const vb of varbinds) {
      // net-snmp casts an OCTET STRING SET value with Buffer#toString() (UTF-8),
      // which mangles binary PortLists; a latin1 string passes through intact.
      if (Buffer.isBuffer(vb.value)) vb.value = vb.value.toString('latin1');
    }
    const newRows = new Map<number, number>();
    for (const vb of varbinds) {
      const at = parseInstance(vb.oid, oids.dot1qVlanStaticEntry);
      if (!at || at.index < 1 || at.index > MAX_VLAN || this.rows.has(at.index)) continue;
      const creates = at.column === columns.dot1qVlanStaticRowStatus && (vb.value === RowStatus.createAndGo || vb.value === RowStatus.createAndWait);
      newRows.set(at.index, creates ? (vb.value as number) : (newRows.get(at.index) ?? RowStatus.active));
    }
    for (const [vlan, status] of newRows) this.addVlanRow(vlan, status);
  }

  /**
   * dot1qVlanStaticTable as the agent serves it, a row per VLAN in the
   * switch's database with its member ports, read without an SNMP request.
   */
  vlanTable(): VlanTableRow[] {
    return [...this.vlans()]
      .sort((a, b) => a - b)
      .map((vlan) => ({ vlan, name: this.vlanName(vlan), egress: this.members(vlan, 'egress'), untagged: this.members(vlan, 'untagged') }));
  }

  /** Every VLAN in the switch's database: VLAN 1, the fabric's inventory VLANs, those created over SNMP and any a port uses. */
  private vlans(): Set<number> {
    const vlans = new Set([DEFAULT_VLAN, ...this.vlanNames.keys(), ...this.created]);
    for (const p of this.ports.values()) {
      vlans.add(p.pvid);
      for (const v of p.egress) vlans.add(v);
      for (const v of p.untagged) vlans.add(v);
    }
    return vlans;
  }

  private addVlanRow(vlan: number, status: number): void {
    this.mib.addTableRow(tables.vlanStatic, [vlan, this.vlanName(vlan), this.portList(vlan, 'egress'), this.portList(vlan, 'untagged'), status]);
    this.rows.add(vlan);
  }

  private vlanName(vlan: number): string {
    return this.vlanNames.get(vlan) ?? `VLAN${String(vlan).padStart(4, '0')}`;
  }

  private portList(vlan: number, set: 'egress' | 'untagged'): Buffer {
    return encodePortList(this.members(vlan, set), this.octets);
  }

  private members(vlan: number, set: 'egress' | 'untagged'): number[] {
    return [...this.ports.values()].filter((p) => p[set].has(vlan)).map((p) => p.port).sort((a, b) => a - b);
  }

  private readonly onIfEntry = (req: MibRequest): void => {
    // Only ifAdminStatus is writable, and its enumeration constraint already refused anything but up/down.
    const port = this.setTarget(req, oids.ifEntry);
    if (!port) return req.done();
    const admin = req.setValue === ifStatus.up ? 'up' : 'down';
    if (!req.testSet) {
      this.world.setPortAdmin(this.sw.id, port.port, admin);
      this.record('set-admin', port, { admin });
    }
    req.done();
  };

  private readonly onPortVlanEntry = (req: MibRequest): void => {
    const port = this.setTarget(req, oids.dot1qPortVlanEntry);
    if (!port) return req.done();
    const pvid = Number(req.setValue);
    if (!(pvid >= 1 && pvid <= MAX_VLAN)) return req.done({ errorStatus: ErrorStatus.WrongValue });
    // Like real switches: the PVID must name a VLAN that exists (or that this request creates).
    if (!this.rows.has(pvid)) return req.done({ errorStatus: ErrorStatus.InconsistentValue });
    if (!req.testSet) {
      port.pvid = pvid;
      this.record('set-pvid', port, { pvid });
    }
    req.done();
  };

  private readonly onVlanStaticEntry = (req: MibRequest): void => {
    const at = parseInstance(req.oid, oids.dot1qVlanStaticEntry);
    if (req.operation !== PduType.SetRequest || !at) return req.done();
    const vlan = at.index;
    if (at.column === columns.dot1qVlanStaticRowStatus) {
      // net-snmp has already refused createAndGo on an existing row (see prepareSet for new ones); the lab neither parks nor destroys VLANs.
      if (req.setValue !== RowStatus.active && req.setValue !== RowStatus.createAndGo) return req.done({ errorStatus: ErrorStatus.InconsistentValue });
      if (!req.testSet && !this.vlans().has(vlan)) {
        this.created.add(vlan);
        this.world.recorder.record('switch', 'create-vlan', { detail: { switch: this.sw.id, vlan } });
      }
      return req.done();
    }
    const list = Buffer.from(String(req.setValue), 'latin1');
    const members = new Set(decodePortList(list));
    if ([...members].some((p) => !this.ports.has(p))) return req.done({ errorStatus: ErrorStatus.WrongValue });
    if (!req.testSet) {
      const egress = at.column === columns.dot1qVlanStaticEgressPorts;
      for (const p of this.ports.values()) {
        if (members.has(p.port)) (egress ? p.egress : p.untagged).add(vlan);
        else if (egress) {
          // A port that stops carrying a VLAN cannot keep sending it untagged.
          p.egress.delete(vlan);
          p.untagged.delete(vlan);
        } else p.untagged.delete(vlan);
      }
      this.created.add(vlan);
      // Committed as the raw octets, so the response echoes the PortList the manager sent.
      req.setValue = list;
      this.world.recorder.record('switch', egress ? 'set-egress' : 'set-untagged', {
        detail: { switch: this.sw.id, vlan, ports: [...members].sort((a, b) => a - b) },
      });
    }
    req.done();
  };

  /** The port a SET on a port-indexed table writes, or undefined when the request is not a SET. */
  private setTarget(req: MibRequest, entry: string): PortRuntime | undefined {
    if (req.operation !== PduType.SetRequest) return undefined;
    const at = parseInstance(req.oid, entry);
    return at && this.ports.get(at.index);
  }

  private record(action: string, port: PortRuntime, detail: Record<string, unknown>): void {
    this.world.recorder.record('switch', action, {
      host: port.hostId ?? undefined,
      detail: { switch: this.sw.id, port: port.port, ...detail },
    });
  }

  private register(): void {
    const { Integer, OctetString, Gauge } = ObjectType;
    const ro = MaxAccess['read-only'];
    const rw = MaxAccess['read-write'];
    const rc = MaxAccess['read-create'];
    const table = MibProviderType.Table;
    const entry = MaxAccess['not-accessible'];
    this.mib.registerProvider({ name: 'sysName', type: MibProviderType.Scalar, oid: oids.sysName, scalarType: OctetString, maxAccess: ro });
    this.mib.registerProvider({
      name: tables.if,
      type: table,
      oid: oids.ifEntry,
      maxAccess: entry,
      tableColumns: [
        column(columns.ifIndex, 'ifIndex', Integer, ro),
        column(columns.ifDescr, 'ifDescr', OctetString, ro),
        column(columns.ifAdminStatus, 'ifAdminStatus', Integer, rw, { constraints: { enumeration: { 1: 'up', 2: 'down' } } }),
        column(columns.ifOperStatus, 'ifOperStatus', Integer, ro),
      ],
      tableIndex: [{ columnName: 'ifIndex' }],
      handler: this.onIfEntry,
    });
    this.mib.registerProvider({
      name: tables.ifX,
      type: table,
      oid: oids.ifXEntry,
      maxAccess: entry,
      tableColumns: [column(columns.ifName, 'ifName', OctetString, ro)],
      tableAugments: tables.if,
    });
    this.mib.registerProvider({
      name: tables.basePort,
      type: table,
      oid: oids.dot1dBasePortEntry,
      maxAccess: entry,
      tableColumns: [column(columns.dot1dBasePort, 'dot1dBasePort', Integer, ro), column(columns.dot1dBasePortIfIndex, 'dot1dBasePortIfIndex', Integer, ro)],
      tableIndex: [{ columnName: 'dot1dBasePort' }],
    });
    this.mib.registerProvider({
      name: tables.portVlan,
      type: table,
      oid: oids.dot1qPortVlanEntry,
      maxAccess: entry,
      // VlanIndex is an Unsigned32: Gauge32 on the wire.
      tableColumns: [column(columns.dot1qPvid, 'dot1qPvid', Gauge, rw)],
      tableAugments: tables.basePort,
      handler: this.onPortVlanEntry,
    });
    this.mib.registerProvider({
      name: tables.vlanStatic,
      type: table,
      oid: oids.dot1qVlanStaticEntry,
      maxAccess: entry,
      tableColumns: [
        // The index lives in dot1qVlanCurrentTable in Q-BRIDGE-MIB; a local not-accessible column encodes it the same way.
        column(0, 'dot1qVlanIndex', Gauge, entry),
        column(columns.dot1qVlanStaticName, 'dot1qVlanStaticName', OctetString, ro),
        column(columns.dot1qVlanStaticEgressPorts, 'dot1qVlanStaticEgressPorts', OctetString, rc),
        column(columns.dot1qVlanStaticUntaggedPorts, 'dot1qVlanStaticUntaggedPorts', OctetString, rc),
        column(columns.dot1qVlanStaticRowStatus, 'dot1qVlanStaticRowStatus', Integer, rc, { rowStatus: true }),
      ],
      tableIndex: [{ columnName: 'dot1qVlanIndex' }],
      // Rows come from the world (sync) and from prepareSet, never from net-snmp's defVal-based creation.
      createHandler: null,
      handler: this.onVlanStaticEntry,
    });
  }
}
