/**
 * Log lines for people: `shoal dev` turns each JSON line its nodes write (src/runtime/logger.ts)
 * into
 *
 *     12:05:01 INFO  n1 replica started collection=docs shard=0
 *
 * local time, level, node, message, then the other fields as key=value (strings bare unless they
 * need quotes; the trace and span ids last). An error with a stack is followed by its stack,
 * indented. A line that is not a JSON log line is shown as it is. Formatted here, in a few lines,
 * rather than with pino-pretty: the format is ours and small, and it saves a dependency of a
 * dozen packages.
 */

const LEVEL_COLOR: Record<string, string> = { debug: '90', info: '32', warn: '33', error: '31', fatal: '31' };
const LAST = ['trace_id', 'span_id'];
const SHOWN = new Set(['level', 'time', 'node', 'msg']);

/** `line` (one JSON log line, without its newline) for people; `fallbackNode` names a line that does not say its node. */
export function formatLogLine(line: string, opts: { color?: boolean; fallbackNode?: string } = {}): string {
  let rec: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof (parsed as { msg?: unknown }).msg !== 'string') throw new Error('not a log line');
    rec = parsed as Record<string, unknown>;
  } catch {
    return opts.fallbackNode !== undefined ? `[${opts.fallbackNode}] ${line}` : line;
  }
  const level = typeof rec['level'] === 'string' ? rec['level'] : 'info';
  const label = level.toUpperCase().padEnd(5);
  const time = typeof rec['time'] === 'string' ? clockTime(rec['time']) : '--:--:--';
  const node = typeof rec['node'] === 'string' ? rec['node'] : opts.fallbackNode ?? '-';
  const keys = Object.keys(rec).filter((k) => !SHOWN.has(k) && !LAST.includes(k));
  keys.push(...LAST.filter((k) => k in rec));
  const stacks: string[] = [];
  const fields = keys.map((k) => {
    const v = rec[k];
    if (isErrorRecord(v)) {
      if (typeof v.stack === 'string') stacks.push(v.stack);
      return `${k}=${value(`${v.name}: ${v.message}`)}`;
    }
    return `${k}=${value(v)}`;
  });
  const head = opts.color ? `\x1b[${LEVEL_COLOR[level] ?? '0'}m${label}\x1b[0m` : label;
  const out = [`${time} ${head} ${node} ${rec['msg'] as string}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}`];
  for (const s of stacks) out.push(...s.split('\n').slice(1).map((l) => `    ${l.trim()}`));
  return out.join('\n');
}

function clockTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function isErrorRecord(v: unknown): v is { name: string; message: string; stack?: unknown } {
  return typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string' && typeof (v as { message?: unknown }).message === 'string';
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === undefined) return 'undefined';
  return JSON.stringify(v);
}

/** Cuts a stream of chunks into whole lines (a chunk may end inside a line). */
export class LineSplitter {
  private rest = '';

  /** The lines that `chunk` completes, without their newlines. */
  push(chunk: string): string[] {
    const parts = (this.rest + chunk).split('\n');
    this.rest = parts.pop() ?? '';
    return parts;
  }

  /** What is left: a last line without its newline, if any. */
  end(): string[] {
    const last = this.rest;
    this.rest = '';
    return last === '' ? [] : [last];
  }
}
