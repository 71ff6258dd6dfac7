/** Renders the services' pino JSON lines for a person at a terminal. */
const levels: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const hidden = new Set(['level', 'time', 'pid', 'hostname', 'service', 'instance', 'msg', 'trace_id', 'span_id', 'trace_flags']);

export function renderLogLine(service: string, line: string): string {
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
