/** bench:heal's figures, per round and as medians over the rounds of each throttle, in bench/RESULTS.md's style. */
import { totalMs, type Interval } from './intervals.js';
import { MACHINE } from './proc-cpu.js';
import { machine, today } from './report.js';
import type { RepairFigures } from './repair-watch.js';
import type { WindowFigures } from './search-load.js';
import { fmt, median } from './stats.js';

export interface Round {
  throttle: number;
  victim: string;
  victimLeaders: number;
  repair: RepairFigures;
  /** Bytes the move targets counted (the moves' bytesTotal estimate where a count was missed). */
  bytes: number;
  before: WindowFigures;
  /** From the kill to full redundancy. */
  during: WindowFigures;
  /** From the victim's `dead` to full redundancy: the copy and switch alone. */
  afterDead: WindowFigures;
  /** Kill → dead (failover and detection); transfers with no restore running; restores (last byte → restored). */
  detect: WindowFigures;
  transfers: WindowFigures;
  restores: WindowFigures;
  /** Replicas that had not caught up with their leader 15 s after full redundancy (empty: all did). */
  lagging: string[];
  anchorIdle: number;
  anchorLoaded: number;
  /** The idle anchor in requests of ReportInput.bigChunk bytes. */
  anchorIdleBig: number;
  /** Percent of one core per process (client, nats-server, sink, node ids), per window. */
  cpu: Record<'before' | 'repair' | 'transfer' | 'anchorLoaded' | 'anchorIdle', Map<string, number>>;
}

export interface ReportInput {
  rounds: Round[];
  n: number;
  dim: number;
  ingestBatch: number;
  ingestRate: number;
  entries: number[];
  windowS: number;
  clients: number;
  k: number;
  chunk: number;
  bigChunk: number;
  nodeEnv: Record<string, string>;
  defaultRate: number;
}

const MB = 1e6;
const s = (ms: number): string => fmt(ms / 1000, 1);

interface Derived {
  r: Round;
  detectMs: number;
  planMs: number;
  healMs: number;
  totalMs: number;
  transferMs: number;
  rate: number;
}

function derive(r: Round): Derived {
  const { killAt, deadAt, redundantAt, moves } = r.repair;
  const dead = deadAt ?? killAt;
  const transferMs = totalMs(moves.map((m): Interval => [m.firstByteAt ?? 0, m.lastByteAt ?? 0]));
  return {
    r,
    detectMs: dead - killAt,
    planMs: Math.min(...moves.map((m) => m.seenAt)) - dead,
    healMs: (redundantAt ?? dead) - dead,
    totalMs: (redundantAt ?? dead) - killAt,
    transferMs,
    rate: transferMs > 0 ? r.bytes / (transferMs / 1000) : Number.NaN,
  };
}

const rateName = (bps: number, def: number): string => (bps === 0 ? '0 (unthrottled)' : `${fmt(bps / 2 ** 20, 0)} MiB/s${bps === def ? ' (default)' : ''}`);

/** Medians of each position of the node figures, busiest first, and of the named processes. */
function cpuLine(maps: Map<string, number>[]): string {
  const named = ['client', 'nats-server', 'sink', MACHINE];
  const nodes = maps.map((m) => [...m].filter(([k]) => !named.includes(k)).map(([, v]) => v).sort((a, b) => b - a));
  const width = Math.max(0, ...nodes.map((x) => x.length));
  const pos = Array.from({ length: width }, (_, i) => median(nodes.map((x) => x[i] ?? Number.NaN).filter(Number.isFinite)));
  const ours = (m: Map<string, number>): number => [...m].filter(([k]) => k !== MACHINE).reduce((a, [, v]) => a + v, 0);
  const pick = (k: string): string => fmt(median(maps.map((m) => m.get(k) ?? Number.NaN)), 0);
  const others = median(maps.map((m) => Math.max(0, (m.get(MACHINE) ?? Number.NaN) - ours(m))));
  return `${pick('client')} | ${pick('nats-server')} | ${pos.map((x) => fmt(x, 0)).join(' / ')} | ${pick('sink')} | ${fmt(median(maps.map(ours)), 0)} | ${fmt(others, 0)}`;
}

export function report(x: ReportInput): string {
  const throttles = [...new Set(x.rounds.map((r) => r.throttle))].sort((a, b) => a - b);
  const by = (t: number): Derived[] => x.rounds.filter((r) => r.throttle === t).map(derive);
  const med = (ds: Derived[], f: (d: Derived) => number): number => median(ds.map(f));
  const unthrottled = by(0);
  const throttled = by(x.defaultRate);
  const copyRate = med(unthrottled, (d) => d.rate);
  const rawIdle = median(unthrottled.map((d) => d.r.anchorIdle));
  const rawLoaded = median(unthrottled.map((d) => d.r.anchorLoaded));
  const p99Ratio = med(throttled, (d) => d.r.during.p99 / d.r.before.p99);
  const p99RatioCopy = med(throttled, (d) => d.r.afterDead.p99 / d.r.before.p99);
  const lines: string[] = [
    '## Self-repair after losing a node (`npm run bench:heal`)',
    '',
    `Run ${today()} on ${machine()}. Four \`shoal node\` processes and one nats-server on this machine, the nodes with`,
    `${Object.entries(x.nodeEnv).map(([k, v]) => `${k}=${v}`).join(', ')} (a silent node is \`down\` after 2 s and \`dead\` 3 s later, so the repair starts ~5 s after the kill);`,
    `collection of ${x.n} × ${x.dim} float32 points (L2), 4 shards × 3 replicas, HNSW defaults (m 16, efConstruction 200), ingested through the API in upserts of ${x.ingestBatch} points`,
    `(${fmt(x.ingestRate, 0)} points/s; ${x.entries.join(' / ')} Raft entries per shard, so every shard has an index checkpoint: a snapshot carries checkpoint files, points and the journal since).`,
    `${x.clients} search clients in the benchmark process (CBOR, k ${x.k}, the default consistency \`leased\` and ef 64) run through each round.`,
    `A round: a ${x.windowS} s window before; SIGKILL of a node that is not the coordinator, its data deleted; the clients go on until every shard has 3 voters on live nodes and`,
    `cluster.health is healthy (polled every 200 ms, as are \`rebalance.status\` and each move target's replica status, whose snapshot byte count is what \`MB copied\` sums);`,
    'then the anchor; then a fresh empty node joins and the coordinator evens the cluster out (unthrottled, not measured) before the next round: one cluster, ingested once.',
    `maxBytesPerSec alternates ABBA between 0 and the default; ${unthrottled.length} + ${throttled.length} rounds; the coordinator's default maxConcurrentMoves (2) for the 3 moves of each repair. Medians over rounds.`,
    '',
    '| maxBytesPerSec | kill → dead, s | dead → first move, s | dead → full redundancy, s | kill → full redundancy, s | MB copied | transfer time, s | copy rate, MB/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const t of throttles) {
    const ds = by(t);
    lines.push(`| ${rateName(t, x.defaultRate)} | ${s(med(ds, (d) => d.detectMs))} | ${s(med(ds, (d) => d.planMs))} | ${s(med(ds, (d) => d.healMs))} | ${s(med(ds, (d) => d.totalMs))} | ${fmt(med(ds, (d) => d.r.bytes) / MB, 0)} | ${s(med(ds, (d) => d.transferMs))} | ${fmt(med(ds, (d) => d.rate) / MB, 1)} |`);
  }
  lines.push(
    '',
    'Transfer time: the union of the moves\' streams, from the first poll that saw a target count bytes to the first that saw its final count; copy rate = MB copied / transfer time.',
    'Per move (medians over all moves of the rounds), the time from the move\'s record to its end:',
    '',
    '| maxBytesPerSec | moves | queued + prepare, s | transfer, s | per stream, MB/s | restore after the last byte, s | catch-up + switch + cleanup, s | MB per move | the sender\'s estimate / counted |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const t of throttles) {
    const ms = by(t).flatMap((d) => d.r.repair.moves).filter((m) => m.firstByteAt !== null && m.lastByteAt !== null && m.restoredAt !== null && m.doneAt !== null);
    const m = (f: (v: (typeof ms)[number]) => number): number => median(ms.map(f));
    lines.push(
      `| ${rateName(t, x.defaultRate)} | ${ms.length} | ${s(m((v) => (v.firstByteAt as number) - v.seenAt))} | ${s(m((v) => (v.lastByteAt as number) - (v.firstByteAt as number)))} | ` +
        `${fmt(m((v) => v.bytes / (((v.lastByteAt as number) - (v.firstByteAt as number)) / 1000)) / MB, 1)} | ${s(m((v) => (v.restoredAt as number) - (v.lastByteAt as number)))} | ` +
        `${s(m((v) => (v.doneAt as number) - (v.restoredAt as number)))} | ${fmt(m((v) => v.bytes) / MB, 1)} | ${fmt(m((v) => (v.bytesTotal ?? Number.NaN) / v.bytes), 3)} |`,
    );
  }
  lines.push(
    '',
    `Search, ${x.clients} clients (medians over rounds; failed = searches that ended in an error):`,
    '',
    '| maxBytesPerSec | window | QPS | p50 ms | p99 ms | failed |',
    '|---|---|---:|---:|---:|---:|',
  );
  for (const t of throttles) {
    const ds = by(t);
    const windows = [
      [`${x.windowS} s before the kill`, (d: Derived) => d.r.before],
      ['**kill → full redundancy**', (d: Derived) => d.r.during],
      ['of which kill → dead (failover, detection)', (d: Derived) => d.r.detect],
      ['of which dead → full redundancy (copy and switch)', (d: Derived) => d.r.afterDead],
      ['of which streams with no restore running', (d: Derived) => d.r.transfers],
      ['of which restores (last byte → restored)', (d: Derived) => d.r.restores],
    ] as const;
    for (const [name, w] of windows) {
      lines.push(`| ${rateName(t, x.defaultRate)} | ${name} | ${fmt(med(ds, (d) => w(d).qps), 0)} | ${fmt(med(ds, (d) => w(d).p50), 2)} | ${fmt(med(ds, (d) => w(d).p99), 2)} | ${fmt(med(ds, (d) => w(d).errors), 0)} |`);
    }
  }
  lines.push(
    '',
    `Anchor, same rounds, same nats-server: each round's MB copied sent as raw NATS requests of ${fmt(x.chunk / 1024, 0)} KiB (the snapshot stream's chunk size), one at a time,`,
    'each answered (one byte) before the next, to a process of its own; once under the search load (right after the repair), once with the cluster idle.',
    `Unthrottled rounds: ${fmt(rawIdle / MB, 0)} MB/s idle, ${fmt(rawLoaded / MB, 0)} MB/s under the search load (all rounds: ${x.rounds.map((r) => fmt(r.anchorIdle / MB, 0)).join(' / ')} idle).`,
    `For reference, idle in requests of ${fmt(x.bigChunk / 1024, 0)} KiB (near the default max payload): ${fmt(median(x.rounds.map((r) => r.anchorIdleBig)) / MB, 0)} MB/s (all rounds).`,
    '',
    'Goals:',
    `- copy rate unthrottled / raw NATS: **${fmt(copyRate / rawIdle, 2)}×** the idle anchor (${fmt(copyRate / MB, 1)} / ${fmt(rawIdle / MB, 0)} MB/s), ${fmt(copyRate / rawLoaded, 2)}× the anchor under the same search load (goal ≥ 0.5×): ${copyRate / rawIdle >= 0.5 ? 'met' : 'not met'};`,
    `- search p99 during a repair at the default throttle / p99 before: **${fmt(p99Ratio, 2)}×** from the kill to full redundancy, ${fmt(p99RatioCopy, 2)}× from \`dead\` to full redundancy (goal ≤ 2×): ${p99Ratio <= 2 ? 'met' : 'not met'}.`,
    '',
    'CPU, % of one core (2 cores: 200% in all; /proc/<pid>/stat, all threads), medians over rounds; nodes busiest first (4 before the kill, 3 after);',
    '"others": what the rest of this shared machine used at the same time (/proc/stat busy time less ours):',
    '',
    '| maxBytesPerSec | window | client (bench) | nats-server | nodes | anchor sink | ours in all | others |',
    '|---|---|---:|---:|---|---:|---:|---:|',
  );
  for (const t of throttles) {
    const ds = by(t);
    const windows: [string, keyof Round['cpu']][] = [[`${x.windowS} s before`, 'before'], ['kill → full redundancy', 'repair'], ['transfers (first byte → last byte)', 'transfer'], ['anchor, under the search load', 'anchorLoaded'], ['anchor, idle', 'anchorIdle']];
    for (const [name, key] of windows) lines.push(`| ${rateName(t, x.defaultRate)} | ${name} | ${cpuLine(ds.map((d) => d.r.cpu[key]).filter((m) => m.size > 0))} |`);
  }
  const lagging = x.rounds.filter((r) => r.lagging.length > 0);
  lines.push(
    '',
    lagging.length === 0
      ? 'After every repair each replica had applied its leader\'s commit index and held its count of points (checked through their shard status).'
      : `**Replicas that had not caught up 15 s after full redundancy** (the run stopped there): ${lagging.map((r) => r.lagging.join('; ')).join(' / ')}.`,
  );
  lines.push('', 'Rounds:', '');
  x.rounds.forEach((r, i) => {
    const d = derive(r);
    lines.push(
      `${i + 1}. ${rateName(r.throttle, x.defaultRate)}: ${r.victim} killed (${r.victimLeaders} leadership${r.victimLeaders === 1 ? '' : 's'}); dead after ${s(d.detectMs)} s, full redundancy ${s(d.healMs)} s later; ` +
        `${r.repair.moves.length} moves, ${fmt(r.bytes / MB, 0)} MB in ${s(d.transferMs)} s (${fmt(d.rate / MB, 1)} MB/s); anchor ${fmt(r.anchorIdle / MB, 0)} MB/s idle, ${fmt(r.anchorLoaded / MB, 0)} under load; ` +
        `p99 ${fmt(r.before.p99, 1)} → ${fmt(r.during.p99, 1)} ms, QPS ${fmt(r.before.qps, 0)} → ${fmt(r.during.qps, 0)}, ${r.during.errors} failed.`,
    );
  });
  return lines.join('\n');
}
