/**
 * Renders the services' pino JSON lines for a person at a terminal. Text in
 * them comes from devices and messages, so every control character (C0, DEL,
 * C1: what a terminal would obey) is shown escaped, never passed through.
 */
const levels: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const hidden = new Set(['level', 'time', 'pid', 'hostname', 'service', 'instance', 'msg', 'trace_id', 'span_id', 'trace_flags']);

// eslint-disable-next-line no-control-regex -- matching control characters is the point here
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
const named: Record<string, string> = { '\n': '\\n', '\r': '\\r' };

/** Tabs stay; every other control character becomes \n, \r or \xHH. */
function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function renderLogLine(service: string, line: string): string {
  return escapeControl(formatLogLine(service, line));
}

function formatLogLine(service: string, line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${service.padEnd(9)} ${line}`;
  }
  const time = typeof rec.time === 'number' || typeof rec.time === 'string' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const level = typeof rec.level === 'number' ? (levels[rec.level] ?? String(rec.level)) : String(rec.level ?? '');
  const extra = Object.entries(rec)
    .filter(([k]) => !hidden.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${service.padEnd(9)} ${level.padEnd(5)} ${String(rec.msg ?? '')}${extra ? `  ${extra}` : ''}`;
}
