/**
 * The iPXE script the boot service serves at /boot/<mac>.ipxe. Real hosts run
 * its `chain`; the lab's simulated hosts read the `fb-server` and `fb-image`
 * settings to know which identity they booted, and `fb-vlans`/`fb-luns`
 * (present only when the instance does not use its server's own, as in a
 * drill) to know which networks and storage it must find.
 */
import { BootAttach } from './schemas/commands.schema.ts';

export interface BootScript {
  mac: string;
  server: string;
  image: string;
  /** Where the image's own iPXE script, kernel or ISO lives. */
  imageUrl: string;
  /** The VLANs and LUNs this instance uses instead of its server's own (a drill's twins and clones). */
  attach?: BootAttach;
}

export function renderBootScript(script: BootScript): string {
  const { attach } = script;
  return [
    '#!ipxe',
    `# Firebreak: ${script.mac} boots server ${script.server} from image ${script.image}`,
    `set fb-server ${script.server}`,
    `set fb-image ${script.image}`,
    // iPXE has no empty-valued `set`, so an instance with no LUNs has no fb-luns line.
    ...(attach ? [`set fb-vlans ${attach.vlans.join(',')}`] : []),
    ...(attach && attach.luns.length > 0 ? [`set fb-luns ${attach.luns.join(',')}`] : []),
    `chain ${script.imageUrl}`,
    '',
  ].join('\n');
}

export function parseBootScript(text: string): Omit<BootScript, 'mac'> {
  if (!text.startsWith('#!ipxe')) throw new Error('not an iPXE script (missing #!ipxe)');
  const optional = (name: string): string | undefined => new RegExp(`^set ${name} (\\S+)$`, 'm').exec(text)?.[1];
  const setting = (name: string): string => {
    const value = optional(name);
    if (value === undefined) throw new Error(`iPXE script sets no ${name}`);
    return value;
  };
  const chain = /^chain (\S+)$/m.exec(text);
  if (!chain?.[1]) throw new Error('iPXE script has no chain command');
  const parsed: Omit<BootScript, 'mac'> = { server: setting('fb-server'), image: setting('fb-image'), imageUrl: chain[1] };
  const vlans = optional('fb-vlans');
  const luns = optional('fb-luns');
  if (vlans === undefined) {
    if (luns !== undefined) throw new Error('iPXE script sets fb-luns but no fb-vlans; an instance that names its own LUNs names its VLANs too');
    return parsed;
  }
  const attach = BootAttach.safeParse({ vlans: vlans.split(',').map((v) => (/^\d+$/.test(v) ? Number(v) : v)), luns: luns?.split(',') ?? [] });
  if (!attach.success) {
    const issue = attach.error.issues[0];
    throw new Error(`iPXE script's fb-${String(issue?.path[0] ?? 'vlans')} is not a comma-separated list of ${issue?.path[0] === 'luns' ? 'LUN ids' : 'VLAN ids (1-4094)'}: ${issue?.message ?? 'invalid'}`);
  }
  return { ...parsed, attach: attach.data };
}

/** Whether two attachments name the same VLANs and LUNs, in any order; no attachment equals only no attachment. */
export function sameBootAttach(a: BootAttach | undefined, b: BootAttach | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const same = <T extends number | string>(x: readonly T[], y: readonly T[]): boolean => {
    const left = new Set(x);
    const right = new Set(y);
    return left.size === right.size && [...left].every((v) => right.has(v));
  };
  return same(a.vlans, b.vlans) && same(a.luns, b.luns);
}
