/**
 * A VM spec as a libvirt domain definition, and back. The same XML goes to
 * libvirt (`virsh define`) and to the lab's hypervisor simulation, so both
 * compare what a hypervisor holds with what was asked the same way.
 *
 * The shape, and why:
 * - One NIC with the spec's MAC on a host bridge (`fb-trunk` by default: an
 *   Open vSwitch bridge over the hypervisor's trunked uplink, which the
 *   hypervisor image sets up). Its `<vlan>` mirrors a bare-metal port: the
 *   first VLAN untagged (the VM PXE-boots there, like a physical host on its
 *   access VLAN), any further VLANs tagged on the same NIC. The guest OS is
 *   then configured the same whether the server runs on metal or as a VM.
 * - Each LUN as a virtio-scsi disk from `/dev/mapper/<lun id>`: the LUNs are
 *   masked to the hypervisor's HBA, and its multipath configuration names each
 *   device after the inventory's LUN id. The disk serial is the LUN id too.
 * - Boot from the network; the image is kept in Firebreak's `<metadata>`
 *   because nothing else in the definition names it (the boot service maps
 *   the MAC to the image).
 * - Memory in KiB, rounded to whole MiB as hypervisors allocate it.
 */
import { Id, Mac, VlanId } from '@firebreak/shared';
import type { VmSpec } from '../driver.ts';

/** Firebreak's namespace in a domain's `<metadata>`. */
export const FIREBREAK_DOMAIN_NS = 'https://firebreak.invalid/xmlns/vm/1';

export interface DomainXmlOptions {
  /** libvirt domain type; default `kvm`. */
  type?: string;
  /** The host bridge VM NICs attach to; default `fb-trunk`. */
  bridge?: string;
  /** The existing domain's UUID, so a redefinition replaces it instead of clashing with it. */
  uuid?: string;
}

/** What a definition says, as far as Firebreak compares it; undefined where the XML has no such field. */
export interface DomainDefinition {
  name: string | undefined;
  uuid: string | undefined;
  memoryKiB: number | undefined;
  vcpus: number | undefined;
  /** MACs of every NIC, in order. */
  macs: string[];
  /** VLANs of the first NIC: the untagged (native) one first, then the tagged ones. */
  vlans: number[];
  /** LUN ids of `/dev/mapper/<lun>` disks; any other disk as its source path. */
  luns: string[];
  image: string | undefined;
  /** A drill's rehearsal (Firebreak's `<metadata>`). */
  drill: boolean;
}

export const DEFAULT_DOMAIN_TYPE = 'kvm';
export const DEFAULT_BRIDGE = 'fb-trunk';

const KIB_PER_GIB = 1024 * 1024;
const LUN_DEVICE_PREFIX = '/dev/mapper/';

/** Memory as the definition holds it: whole MiB, in KiB. */
export function memoryKiB(memoryGiB: number): number {
  return Math.round(memoryGiB * 1024) * 1024;
}

/** What is wrong with a spec before anything is sent, or an empty list. */
export function specProblems(spec: VmSpec): string[] {
  const problems: string[] = [];
  if (!Id.safeParse(spec.name).success) problems.push(`name "${spec.name}" must be 1-128 letters, digits, "-" or "_"`);
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1) problems.push(`cpus ${spec.cpus} must be a positive whole number`);
  if (!Number.isFinite(spec.memoryGiB) || memoryKiB(spec.memoryGiB) < 1024) problems.push(`memoryGiB ${spec.memoryGiB} must be at least 1 MiB`);
  if (!Id.safeParse(spec.image).success) problems.push(`image "${spec.image}" is not an image id`);
  if (!Mac.safeParse(spec.mac).success) problems.push(`mac "${spec.mac}" is not a MAC address (six hex pairs like 52:54:00:12:34:56)`);
  if (spec.vlans.length === 0) problems.push('a VM needs at least one VLAN');
  for (const vlan of spec.vlans) if (!VlanId.safeParse(vlan).success) problems.push(`VLAN ${vlan} is outside 1-4094`);
  if (new Set(spec.vlans).size !== spec.vlans.length) problems.push(`VLANs ${spec.vlans.join(', ')} repeat`);
  for (const lun of spec.luns) if (!Id.safeParse(lun).success) problems.push(`LUN "${lun}" is not a LUN id`);
  if (new Set(spec.luns).size !== spec.luns.length) problems.push(`LUNs ${spec.luns.join(', ')} repeat`);
  return problems;
}

/** The domain XML for a valid spec (check `specProblems` first). */
export function renderDomainXml(spec: VmSpec, options: DomainXmlOptions = {}): string {
  const type = options.type ?? DEFAULT_DOMAIN_TYPE;
  const bridge = options.bridge ?? DEFAULT_BRIDGE;
  const kib = memoryKiB(spec.memoryGiB);
  const [native, ...tagged] = spec.vlans;
  const vlan =
    tagged.length === 0
      ? [`      <vlan>`, `        <tag id='${native}'/>`, `      </vlan>`]
      : [
          `      <vlan trunk='yes'>`,
          `        <tag id='${native}' nativeMode='untagged'/>`,
          ...tagged.map((v) => `        <tag id='${v}'/>`),
          `      </vlan>`,
        ];
  const disks = spec.luns.flatMap((lun, i) => [
    `    <disk type='block' device='disk'>`,
    `      <driver name='qemu' type='raw' cache='none' io='native'/>`,
    `      <source dev='${attr(LUN_DEVICE_PREFIX + lun)}'/>`,
    `      <target dev='${scsiDiskName(i)}' bus='scsi'/>`,
    `      <serial>${text(lun)}</serial>`,
    `    </disk>`,
  ]);
  return [
    `<domain type='${attr(type)}'>`,
    `  <name>${text(spec.name)}</name>`,
    ...(options.uuid === undefined ? [] : [`  <uuid>${text(options.uuid)}</uuid>`]),
    `  <title>Firebreak server ${text(spec.name)}</title>`,
    `  <metadata>`,
    `    <fb:vm xmlns:fb='${FIREBREAK_DOMAIN_NS}' image='${attr(spec.image)}'${spec.drill === true ? ` drill='true'` : ''}/>`,
    `  </metadata>`,
    `  <memory unit='KiB'>${kib}</memory>`,
    `  <currentMemory unit='KiB'>${kib}</currentMemory>`,
    `  <vcpu placement='static'>${spec.cpus}</vcpu>`,
    `  <os>`,
    `    <type>hvm</type>`,
    `    <boot dev='network'/>`,
    `  </os>`,
    `  <features>`,
    `    <acpi/>`,
    `    <apic/>`,
    `  </features>`,
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>restart</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
    `    <interface type='bridge'>`,
    `      <mac address='${attr(spec.mac.toLowerCase())}'/>`,
    `      <source bridge='${attr(bridge)}'/>`,
    `      <virtualport type='openvswitch'/>`,
    ...vlan,
    `      <model type='virtio'/>`,
    `    </interface>`,
    ...(spec.luns.length > 0 ? [`    <controller type='scsi' index='0' model='virtio-scsi'/>`] : []),
    ...disks,
    `  </devices>`,
    `</domain>`,
    '',
  ].join('\n');
}

/**
 * Reads the fields Firebreak compares from a definition as libvirt's
 * `dumpxml` (or our own renderer) writes it: well-formed, one element per
 * field, attributes quoted. Not a general XML parser.
 */
export function parseDomainXml(xml: string): DomainDefinition {
  const metadata = /<metadata>([\s\S]*?)<\/metadata>/.exec(xml)?.[1] ?? '';
  const body = xml.replace(/<metadata>[\s\S]*?<\/metadata>/, '');
  const memory = /<memory\b([^>]*)>\s*(\d+)\s*<\/memory>/.exec(body);
  const vcpu = /<vcpu\b[^>]*>\s*(\d+)\s*<\/vcpu>/.exec(body)?.[1];
  const interfaces = [...body.matchAll(/<interface\b[^>]*>([\s\S]*?)<\/interface>/g)].map((m) => m[1] ?? '');
  const macs = interfaces.flatMap((nic) => {
    const mac = attrOf(/<mac\b[^>]*>/.exec(nic)?.[0] ?? '', 'address');
    return mac === undefined ? [] : [mac.toLowerCase()];
  });
  const luns = [...body.matchAll(/<disk\b[^>]*>([\s\S]*?)<\/disk>/g)].flatMap((m) => {
    const source = /<source\b[^>]*>/.exec(m[1] ?? '')?.[0] ?? '';
    const path = attrOf(source, 'dev') ?? attrOf(source, 'file') ?? attrOf(source, 'name');
    if (path === undefined) return [];
    return [path.startsWith(LUN_DEVICE_PREFIX) ? path.slice(LUN_DEVICE_PREFIX.length) : path];
  });
  const ours = [...metadata.matchAll(/<[\w.-]*:?vm\b[^>]*>/g)].map((m) => m[0]).find((tag) => tag.includes(FIREBREAK_DOMAIN_NS));
  return {
    name: textOf(/<name>([^<]*)<\/name>/.exec(body)?.[1]),
    uuid: textOf(/<uuid>([^<]*)<\/uuid>/.exec(body)?.[1]),
    memoryKiB: memory?.[2] === undefined ? undefined : toKiB(Number(memory[2]), attrOf(memory[1] ?? '', 'unit') ?? 'KiB'),
    vcpus: vcpu === undefined ? undefined : Number(vcpu),
    macs,
    vlans: vlansOf(interfaces[0] ?? ''),
    luns,
    image: ours === undefined ? undefined : attrOf(ours, 'image'),
    drill: ours !== undefined && attrOf(ours, 'drill') === 'true',
  };
}

/** How `current` differs from `spec`, one phrase per field; empty when it matches. */
export function definitionDiff(spec: VmSpec, current: DomainDefinition): string[] {
  const diff: string[] = [];
  const wantKiB = memoryKiB(spec.memoryGiB);
  if (current.memoryKiB !== wantKiB) diff.push(`memory ${gib(current.memoryKiB)} → ${gib(wantKiB)}`);
  if (current.vcpus !== spec.cpus) diff.push(`vcpus ${current.vcpus ?? 'none'} → ${spec.cpus}`);
  const mac = spec.mac.toLowerCase();
  if (current.macs.length !== 1 || current.macs[0] !== mac) diff.push(`NICs ${current.macs.join(', ') || 'none'} → ${mac}`);
  if (vlanKey(current.vlans) !== vlanKey(spec.vlans)) diff.push(`VLANs ${current.vlans.join(', ') || 'none'} → ${spec.vlans.join(', ')}`);
  if (current.luns.join(',') !== spec.luns.join(',')) diff.push(`LUNs ${current.luns.join(', ') || 'none'} → ${spec.luns.join(', ') || 'none'}`);
  if (current.image !== spec.image) diff.push(`image ${current.image ?? 'none'} → ${spec.image}`);
  if (current.drill !== (spec.drill === true)) diff.push(current.drill ? 'drill → production' : 'production → drill');
  return diff;
}

/** The untagged VLAN matters (the VM boots there); the order of the tagged ones does not. */
function vlanKey(vlans: readonly number[]): string {
  const [native, ...tagged] = vlans;
  return `${native ?? ''}|${[...tagged].sort((a, b) => a - b).join(',')}`;
}

function vlansOf(nic: string): number[] {
  const tags = [...nic.matchAll(/<tag\b[^>]*>/g)].map((m) => m[0]);
  const ids = tags.map((tag) => ({ id: Number(attrOf(tag, 'id')), native: attrOf(tag, 'nativeMode') === 'untagged' }));
  return [...ids.filter((t) => t.native), ...ids.filter((t) => !t.native)].map((t) => t.id).filter((id) => Number.isInteger(id));
}

/** sda … sdz, sdaa …, as the kernel names SCSI disks. */
function scsiDiskName(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) name = String.fromCharCode(97 + ((n - 1) % 26)) + name;
  return `sd${name}`;
}

const unitKiB: Readonly<Record<string, number>> = { b: 1 / 1024, bytes: 1 / 1024, k: 1, KiB: 1, M: 1024, MiB: 1024, G: KIB_PER_GIB, GiB: KIB_PER_GIB };

function toKiB(value: number, unit: string): number | undefined {
  const factor = unitKiB[unit];
  return factor === undefined ? undefined : Math.round(value * factor);
}

function gib(kib: number | undefined): string {
  return kib === undefined ? 'none' : `${+(kib / KIB_PER_GIB).toFixed(3)} GiB`;
}

function attrOf(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag);
  const raw = match?.[1] ?? match?.[2];
  return raw === undefined ? undefined : unescape(raw);
}

function textOf(raw: string | undefined): string | undefined {
  return raw === undefined ? undefined : unescape(raw.trim());
}

const entities: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescape(value: string): string {
  return value.replace(/&(amp|lt|gt|quot|apos);/g, (_, name: string) => entities[name] ?? '');
}

function text(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function attr(value: string): string {
  return text(value).replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}
