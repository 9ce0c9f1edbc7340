/**
 * `trace <trace id>`: one trace's spans, read from the file the nodes write them to
 * (`SHOAL_TRACE_FILE`, telemetry.ts), as a tree: each span under its parent, in start order,
 * with its process, its start after the trace's first span and its duration.
 */
import { readFileSync } from 'node:fs';
import { describeError } from '../../runtime/errors.js';
import { NotFoundError } from '../../runtime/errors.js';
import { UsageError } from '../command.js';
import type { SpanRecord } from '../telemetry.js';
import { parseCommandArgs, type ConsoleCommand } from './registry.js';

export interface SpanNode {
  span: SpanRecord;
  children: SpanNode[];
}

/** The spans of `traceId` in `text` (JSON lines; lines that are not spans are skipped), as trees: roots are spans whose parent is not in the file. */
export function traceTree(text: string, traceId: string): SpanNode[] {
  const spans: SpanRecord[] = [];
  for (const l of text.split('\n')) {
    if (!l.includes(traceId)) continue;
    try {
      const s = JSON.parse(l) as SpanRecord;
      if (s.traceId === traceId) spans.push(s);
    } catch {
      // a line cut short by a process that died mid-write
    }
  }
  const nodes = new Map(spans.map((s) => [s.spanId, { span: s, children: [] as SpanNode[] }]));
  const roots: SpanNode[] = [];
  for (const n of nodes.values()) {
    const parent = n.span.parentSpanId ? nodes.get(n.span.parentSpanId) : undefined;
    (parent ? parent.children : roots).push(n);
  }
  const order = (list: SpanNode[]): SpanNode[] => {
    list.sort((a, b) => a.span.startMs - b.span.startMs);
    for (const n of list) order(n.children);
    return list;
  };
  return order(roots);
}

/** The tree as lines: `├─ name  (service pid, +start ms, duration ms)`. */
export function formatTree(roots: SpanNode[]): string {
  const t0 = Math.min(...roots.map((r) => r.span.startMs));
  const lines: string[] = [];
  const walk = (n: SpanNode, indent: string, last: boolean, top: boolean): void => {
    const s = n.span;
    const attrs = Object.entries(s.attributes).map(([k, v]) => `${k}=${String(v)}`).join(' ');
    lines.push(`${indent}${top ? '' : last ? '└─ ' : '├─ '}${s.name}  (${s.service} pid ${s.pid}, +${(s.startMs - t0).toFixed(1)} ms, ${s.durationMs.toFixed(1)} ms${s.status === 2 ? ', ERROR' : ''})${attrs ? `  ${attrs}` : ''}`);
    const next = top ? indent : `${indent}${last ? '   ' : '│  '}`;
    n.children.forEach((c, i) => walk(c, next, i === n.children.length - 1, false));
  };
  roots.forEach((r) => walk(r, '', true, true));
  return lines.join('\n');
}

function count(roots: SpanNode[]): number {
  return roots.reduce((n, r) => n + 1 + count(r.children), 0);
}

export const traceCmd: ConsoleCommand = {
  name: 'trace',
  args: '<trace id> [--file <spans.jsonl>]',
  summary: 'one trace as a tree of spans, from the span file (SHOAL_TRACE_FILE)',
  more: 'Nodes write spans to a file when started with SHOAL_TRACE_FILE (or --trace-file); the\nconsole reads the same variable, or --file.',
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { file: { type: 'string' } }, { min: 1, max: 1, what: 'the trace id' });
    const traceId = (positionals[0] as string).toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(traceId)) throw new UsageError(`a trace id is 32 hex digits, got '${positionals[0]}'`);
    const file = (values['file'] as string | undefined) ?? process.env['SHOAL_TRACE_FILE'];
    if (!file) throw new UsageError('no span file: set SHOAL_TRACE_FILE (as the nodes have it) or give --file');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the span file ${file}: ${describeError(err)}`);
    }
    const roots = traceTree(text, traceId);
    if (roots.length === 0) throw new NotFoundError(`no span of trace ${traceId} in ${file}`);
    const spans = count(roots);
    return { text: `trace ${traceId}: ${spans} span${spans === 1 ? '' : 's'}\n${formatTree(roots)}`, json: { traceId, spans: roots } };
  },
};
