/**
 * The first-stage script, the same for every host: DHCP (or TFTP) hands it
 * out as the boot file because neither can name a per-MAC URL. A MAC without
 * an entry gets 404 for its own script; `|| exit` then hands control back to
 * the firmware, which tries its next boot device (the local disk), so a host
 * Firebreak does not manage boots as if network boot had not been tried.
 */
export function renderChainScript(baseUrl: string): string {
  return [
    '#!ipxe',
    '# Firebreak first stage: boot what the boot service holds for this MAC, else the next boot device.',
    `chain ${baseUrl.replace(/\/+$/, '')}/boot/\${net0/mac}.ipxe || exit`,
    '',
  ].join('\n');
}
