/**
 * MACs as boot clients spell them in URLs: iPXE's `${net0/mac}` is colon
 * lower-case (sent percent-encoded, `%3A`), `${mac:hexhyp}` uses hyphens,
 * operators paste upper case or bare hex. All of them name one file.
 */
const separated = /^[0-9a-f]{2}([:-])(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}$/i;
const bare = /^[0-9a-f]{12}$/i;

/** The canonical form (`52:54:00:12:34:56`), or undefined when `raw` is no MAC. */
export function canonicalMac(raw: string): string | undefined {
  if (!separated.test(raw) && !bare.test(raw)) return undefined;
  const hex = raw.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)?.join(':');
}

export const macFormatHint = 'expected six hex pairs like 52:54:00:12:34:56 (":" or "-" separated, any case)';
