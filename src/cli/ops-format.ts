/**
 * What the operations verbs print: replies in words, the rebalance status as a header and a table
 * of moves, and for `rebalance status --watch` the frame redrawn on a terminal or the lines of
 * what changed elsewhere. Pure: the time is passed in.
 */
import type { MaintenanceReply, Move, RebalanceStatus, RemoveNodeReply, TransferLeaderReply } from '../client/ops.js';
import { table } from './connection.js';
import { bar } from './progress.js';

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes in powers of 1024: `0 B`, `999 B`, `1.5 KiB`, `18 MiB`; one decimal below 10. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < IEC.length - 1) {
    v /= 1024;
    i++;
  }
  const shown = i === 0 || v >= 10 ? String(Math.round(v)) : String(Number(v.toFixed(1)));
  return `${shown} ${IEC[i]}`;
}

/** A copy rate: `50 MiB/s`, or `unthrottled` for 0. */
export function formatRate(bytesPerSec: number): string {
  return bytesPerSec === 0 ? 'unthrottled' : `${formatBytes(bytesPerSec)}/s`;
}

/** A duration for people: `750 ms`, `42s`, `1m`, `2m5s`, `1h3m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  return m % 60 === 0 ? `${Math.floor(m / 60)}h` : `${Math.floor(m / 60)}h${m % 60}m`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The share of a move's snapshot copied, 0..1, or undefined before its size is known. */
export function copiedFraction(m: Pick<Move, 'bytesCopied' | 'bytesTotal'>): number | undefined {
  if (typeof m.bytesTotal !== 'number' || !(m.bytesTotal > 0) || typeof m.bytesCopied !== 'number') return undefined;
  return Math.min(1, Math.max(0, m.bytesCopied / m.bytesTotal));
}

/** `18 MiB/90 MiB (20%)`, or `-` before the size is known. */
export function formatCopy(m: Pick<Move, 'bytesCopied' | 'bytesTotal'>): string {
  const f = copiedFraction(m);
  if (f === undefined) return '-';
  return `${formatBytes(m.bytesCopied)}/${formatBytes(m.bytesTotal)} (${Math.floor(f * 100)}%)`;
}

/** `docs/1`. */
export function shardLabel(m: Pick<Move, 'collection' | 'shard'>): string {
  return `${m.collection}/${m.shard}`;
}

/** `n2 → n4`, or `(new) → n4` for a replica added from nothing. */
export function fromTo(m: Pick<Move, 'from' | 'to'>): string {
  return `${m.from ?? '(new)'} → ${m.to}`;
}

/**
 * The table of moves; with `bars`, a move in its copy phase shows a progress bar. A `plan` (a dry
 * run's moves, not started) has no phase, progress or age.
 */
export function movesTable(moves: Move[], now: number, opts: { bars?: boolean; plan?: boolean } = {}): string {
  if (opts.plan) return table(moves.map((m) => [m.id, shardLabel(m), fromTo(m), m.reason]), ['ID', 'SHARD', 'MOVE', 'REASON']);
  const rows = moves.map((m) => {
    const f = copiedFraction(m);
    const progress = opts.bars && m.phase === 'copy' && f !== undefined ? `${bar(f, 20)} ${formatCopy(m)}` : formatCopy(m);
    return [m.id, shardLabel(m), fromTo(m), m.reason, m.phase, progress, formatDuration(now - Date.parse(m.startedAt))];
  });
  return table(rows, ['ID', 'SHARD', 'MOVE', 'REASON', 'PHASE', 'PROGRESS', 'FOR']);
}

/** `moves: 1 in flight, 3 pending, 12 done, 0 failed`. */
export function movesCounts(s: Pick<RebalanceStatus, 'moves' | 'pending' | 'done' | 'failed'>): string {
  return `moves: ${s.moves.length} in flight, ${s.pending} pending, ${s.done} done, ${s.failed} failed`;
}

/** The header of the rebalance status: coordinator, state, auto, throttles, counts. */
export function statusHeader(s: RebalanceStatus): string[] {
  const t = s.throttle;
  return [
    `coordinator ${s.coordinator ?? '(none)'}: ${s.state}, auto ${s.auto ? 'on' : 'off'}`,
    `throttle: at most ${plural(t.maxConcurrentMoves, 'move')} at once, ${formatRate(t.maxBytesPerSec)}, dead nodes replaced after ${formatDuration(t.replaceAfterMs)}`,
    movesCounts(s),
  ];
}

/** `shoal rebalance status` (and the reply of start, pause, resume, configure). */
export function formatStatus(s: RebalanceStatus, now: number, opts: { bars?: boolean } = {}): string {
  const lines = statusHeader(s);
  lines.push(s.moves.length === 0 ? 'no moves in flight' : `\n${movesTable(s.moves, now, opts)}`);
  return lines.join('\n');
}

/** `shoal rebalance start --dry-run`: the planned moves, none applied. */
export function formatDryRun(s: RebalanceStatus): string {
  if (s.moves.length === 0) return 'dry run: nothing to move, the cluster is even';
  return `dry run: ${plural(s.moves.length, 'move')} planned, none applied\n\n${movesTable(s.moves, 0, { plan: true })}`;
}

/** Nothing in flight and nothing pending: `--watch` is done. */
export function settled(s: RebalanceStatus): boolean {
  return s.moves.length === 0 && s.pending === 0;
}

/** The last line of `--watch`. */
export function finalLine(s: RebalanceStatus): string {
  // Nothing left to move is not the same as even (a node may be down and not dead yet, or `auto` off).
  return `no moves in flight or pending: ${plural(s.done, 'move')} done, ${s.failed === 0 ? 'none' : s.failed} failed`;
}

function moveLine(m: Move): string {
  const f = copiedFraction(m);
  return `${m.id} ${shardLabel(m)} ${fromTo(m)} (${m.reason}): ${m.phase}${m.phase === 'copy' && f !== undefined ? ` ${formatCopy(m)}` : ''}`;
}

/** Tenths of the copy done, so that a log gets a line per 10%, not per poll. */
function decile(m: Move): number | undefined {
  const f = copiedFraction(m);
  return f === undefined ? undefined : Math.floor(f * 10);
}

/**
 * What changed between two polls, one line each (`--watch` when standard output is not a
 * terminal). The first poll is the header and every move.
 */
export function watchEvents(prev: RebalanceStatus | undefined, next: RebalanceStatus): string[] {
  if (prev === undefined) return [...statusHeader(next), ...next.moves.map(moveLine)];
  const out: string[] = [];
  if (prev.coordinator !== next.coordinator) out.push(`coordinator ${prev.coordinator ?? '(none)'} → ${next.coordinator ?? '(none)'}`);
  if (prev.state !== next.state) out.push(`state ${prev.state} → ${next.state}`);
  if (prev.auto !== next.auto) out.push(`auto ${next.auto ? 'on' : 'off'}`);
  const [pt, nt] = [prev.throttle, next.throttle];
  if (pt.maxConcurrentMoves !== nt.maxConcurrentMoves || pt.maxBytesPerSec !== nt.maxBytesPerSec || pt.replaceAfterMs !== nt.replaceAfterMs) {
    out.push(statusHeader(next)[1] as string);
  }
  const before = new Map(prev.moves.map((m) => [m.id, m]));
  const after = new Set(next.moves.map((m) => m.id));
  for (const m of prev.moves) if (!after.has(m.id)) out.push(`${m.id} ${shardLabel(m)} ${fromTo(m)}: ended`);
  for (const m of next.moves) {
    const was = before.get(m.id);
    if (!was) out.push(moveLine(m));
    else if (was.phase !== m.phase) out.push(`${m.id} ${shardLabel(m)}: ${was.phase} → ${m.phase}`);
    else if (m.phase === 'copy' && decile(m) !== decile(was)) out.push(`${m.id} ${shardLabel(m)}: copy ${formatCopy(m)}`);
  }
  if (prev.done !== next.done || prev.failed !== next.failed || prev.pending !== next.pending || prev.moves.length !== next.moves.length) out.push(movesCounts(next));
  return out;
}

/**
 * A frame that fits the terminal: lines cut to its width (a wrapped line would throw off the
 * redraw), and at most `rows - 1` of them.
 */
export function fitFrame(lines: string[], columns: number | undefined, rows: number | undefined): string[] {
  const cut = (l: string): string => (columns && columns > 1 && [...l].length > columns - 1 ? [...l].slice(0, columns - 2).join('') + '…' : l);
  const max = rows && rows > 3 ? rows - 1 : Infinity;
  const kept = lines.length > max ? [...lines.slice(0, max - 1), `… ${lines.length - max + 1} more lines`] : lines;
  return kept.map(cut);
}

/** `nodes.maintenance`'s reply in words. */
export function formatMaintenance(r: MaintenanceReply): string {
  if (r.state === 'maintenance') return `${r.node} is in maintenance: it leads ${plural(r.leaders, 'shard')} and takes no new replicas`;
  return `${r.node} is ${r.state}: out of maintenance, leaderships balance back to it`;
}

/** `nodes.remove`'s reply in words. */
export function formatRemove(r: RemoveNodeReply): string {
  return `${r.node} is ${r.state}: ${plural(r.moves, 'move')} take its replicas elsewhere, then it leaves the cluster (follow them with: shoal rebalance status --watch)`;
}

/** `shards.transfer-leader`'s reply in words. */
export function formatTransfer(r: TransferLeaderReply): string {
  return `${r.collection}/${r.shard}: ${r.leader} leads now (term ${r.term})`;
}
