/**
 * The few fields of a libvirt domain definition the lab's hypervisors act on:
 * name, size, the NIC's MAC and VLANs, the LUN-backed disks and Firebreak's
 * image metadata. The lab reads the same XML the drivers send libvirt; it
 * depends on shared only, so it reads it itself, without a general XML parser.
 */

export interface LabDomainSpec {
  name: string;
  memoryKiB: number;
  vcpus: number;
  /** The first NIC's MAC. */
  mac: string;
  /** VLANs of the first NIC: the untagged one first. */
  vlans: number[];
  /** LUN ids of `/dev/mapper/<lun>` disks. */
  luns: string[];
  /** Firebreak's `<metadata>` image, if any. */
  image: string | null;
  /** Firebreak's `<metadata>` marks a drill's rehearsal. */
  drill: boolean;
}

const LUN_DEVICE_PREFIX = '/dev/mapper/';
const FIREBREAK_NS = 'https://firebreak.invalid/xmlns/vm/1';

/** The spec, or what is missing from the XML. */
export function parseLabDomain(xml: string): LabDomainSpec | { problems: string[] } {
  if (!/^\s*(<\?xml[^>]*\?>\s*)?<domain\b/.test(xml) || !/<\/domain>\s*$/.test(xml)) return { problems: ['not a <domain> document'] };
  const metadata = /<metadata>([\s\S]*?)<\/metadata>/.exec(xml)?.[1] ?? '';
  const body = xml.replace(/<metadata>[\s\S]*?<\/metadata>/, '');
  const problems: string[] = [];
  const name = /<name>\s*([A-Za-z0-9][A-Za-z0-9_-]{0,127})\s*<\/name>/.exec(body)?.[1];
  if (name === undefined) problems.push('no <name> (1-128 letters, digits, "-" or "_")');
  const memory = /<memory\b([^>]*)>\s*(\d+)\s*<\/memory>/.exec(body);
  const unit = attr(memory?.[1] ?? '', 'unit') ?? 'KiB';
  const memoryKiB = unit === 'KiB' ? Number(memory?.[2]) : unit === 'MiB' ? Number(memory?.[2]) * 1024 : unit === 'GiB' ? Number(memory?.[2]) * 1024 * 1024 : NaN;
  if (!(memoryKiB > 0)) problems.push('no <memory> in KiB, MiB or GiB');
  const vcpus = Number(/<vcpu\b[^>]*>\s*(\d+)\s*<\/vcpu>/.exec(body)?.[1]);
  if (!(vcpus >= 1)) problems.push('no <vcpu>');
  const nic = /<interface\b[^>]*>([\s\S]*?)<\/interface>/.exec(body)?.[1];
  const mac = attr(/<mac\b[^>]*>/.exec(nic ?? '')?.[0] ?? '', 'address')?.toLowerCase();
  if (mac === undefined || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) problems.push('no <interface> with a <mac address>');
  const tags = [...(nic ?? '').matchAll(/<tag\b[^>]*>/g)].map((m) => ({ id: Number(attr(m[0], 'id')), native: attr(m[0], 'nativeMode') === 'untagged' }));
  const vlans = [...tags.filter((t) => t.native), ...tags.filter((t) => !t.native)].map((t) => t.id);
  if (vlans.some((v) => !Number.isInteger(v) || v < 1 || v > 4094)) problems.push('a VLAN <tag id> outside 1-4094');
  const luns: string[] = [];
  for (const disk of body.matchAll(/<disk\b[^>]*>([\s\S]*?)<\/disk>/g)) {
    const dev = attr(/<source\b[^>]*>/.exec(disk[1] ?? '')?.[0] ?? '', 'dev');
    if (dev?.startsWith(LUN_DEVICE_PREFIX)) luns.push(dev.slice(LUN_DEVICE_PREFIX.length));
    else problems.push(`disk ${dev ?? '(no source dev)'} is not a SAN LUN (${LUN_DEVICE_PREFIX}<lun id>)`);
  }
  const ours = [...metadata.matchAll(/<[\w.-]*:?vm\b[^>]*>/g)].map((m) => m[0]).find((tag) => tag.includes(FIREBREAK_NS));
  if (problems.length > 0 || name === undefined || mac === undefined) return { problems };
  return { name, memoryKiB, vcpus, mac, vlans, luns, image: ours === undefined ? null : (attr(ours, 'image') ?? null), drill: ours !== undefined && attr(ours, 'drill') === 'true' };
}

function attr(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag);
  return match?.[1] ?? match?.[2];
}
