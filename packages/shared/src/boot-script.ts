/**
 * The iPXE script the boot service serves at /boot/<mac>.ipxe. Real hosts run
 * its `chain`; the lab's simulated hosts read the `fb-server` and `fb-image`
 * settings to know which identity they booted.
 */
export interface BootScript {
  mac: string;
  server: string;
  image: string;
  /** Where the image's own iPXE script, kernel or ISO lives. */
  imageUrl: string;
}

export function renderBootScript(script: BootScript): string {
  return [
    '#!ipxe',
    `# Firebreak: ${script.mac} boots server ${script.server} from image ${script.image}`,
    `set fb-server ${script.server}`,
    `set fb-image ${script.image}`,
    `chain ${script.imageUrl}`,
    '',
  ].join('\n');
}

export function parseBootScript(text: string): { server: string; image: string; imageUrl: string } {
  if (!text.startsWith('#!ipxe')) throw new Error('not an iPXE script (missing #!ipxe)');
  const setting = (name: string): string => {
    const match = new RegExp(`^set ${name} (\\S+)$`, 'm').exec(text);
    if (!match?.[1]) throw new Error(`iPXE script sets no ${name}`);
    return match[1];
  };
  const chain = /^chain (\S+)$/m.exec(text);
  if (!chain?.[1]) throw new Error('iPXE script has no chain command');
  return { server: setting('fb-server'), image: setting('fb-image'), imageUrl: chain[1] };
}
