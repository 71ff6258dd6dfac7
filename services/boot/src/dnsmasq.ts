/**
 * What dnsmasq reads from the boot service's directory: one `--dhcp-hostsdir`
 * file per MAC and a configuration snippet that includes that directory.
 *
 * A dhcp-host line only tags the MAC as Firebreak's (`set:firebreak`); which
 * server and image the host boots lives in its iPXE script alone. dnsmasq
 * picks up new hostsdir files by inotify but never forgets a record before a
 * SIGHUP or restart, so anything in the line that could change (a hostname
 * naming the server) would go stale when the MAC gets another server. A
 * cleared MAC keeps its tag until then, which is harmless: its per-MAC
 * script is gone, so the first stage falls through to the next boot device.
 */

/** The tag dhcp-host entries set and the snippet's dhcp-boot matches. */
export const DHCP_TAG = 'firebreak';

export function dhcpHostLine(mac: string): string {
  return `${mac},set:${DHCP_TAG}\n`;
}

/** Include it from dnsmasq's own configuration with `conf-file=<path>`. */
export function dnsmasqSnippet(options: { hostsDir: string; chainUrl: string; path: string }): string {
  return [
    '# Written by the Firebreak boot service at start-up; do not edit.',
    `# Include it from dnsmasq's configuration: conf-file=${options.path}`,
    '# dnsmasq reads new and changed files in the hosts directory by itself (inotify).',
    `dhcp-hostsdir=${options.hostsDir}`,
    '# iPXE announces itself with DHCP option 175.',
    'dhcp-match=set:ipxe,175',
    `# Firebreak's hosts, once in iPXE, fetch the first stage; it chains to their per-MAC script.`,
    `dhcp-boot=tag:${DHCP_TAG},tag:ipxe,${options.chainUrl}`,
    '# NICs with a plain PXE ROM load iPXE first; enable with enable-tftp and a tftp-root holding undionly.kpxe:',
    `#dhcp-boot=tag:${DHCP_TAG},tag:!ipxe,undionly.kpxe`,
    '',
  ].join('\n');
}
