/** bench:scale's figures at each size, the Markdown table of them, their growth, and the plot's panels. */
import { fmt } from './stats.js';
import type { Panel } from './scale-plot.js';

export interface ScaleStep {
  points: number;
  /** Points of this step (since the previous size) over the time to their acknowledgement, per second. */
  ingestRate: number;
  rawInsertRate: number;
  /** The smallest ef of the ladder with recall@10 ≥ the target through the cluster, and that recall. */
  ef: number;
  recall: number;
  /** The smallest ef (in steps of 1) at which raw hnswlib's recall is at least the cluster's, and that recall. */
  rawEf: number;
  rawRecall: number;
  qps: number;
  p50: number;
  p99: number;
  searchErrors: number;
  /** Raw single-thread QPS at rawEf: the faster of the phase before and the phase after the cluster's. */
  rawQps: number;
  /** Median over the nodes of RssAnon, and of RssAnon less the node's own with the empty collection, bytes. */
  rssAnon: number;
  rssAnonGrowth: number;
  rssFile: number;
  /** Raw hnswlib's RssAnon less its process's before the index was made, bytes. */
  rawRssAnon: number;
  /** Median over the nodes of their data directory's disk usage, bytes. */
  disk: number;
  /** Median over the shards of their commit index once the step's points are in: the Raft log entries written (each upsert is split into one entry per shard). */
  logEntries: number;
  /** Index checkpoint directories on the restarted node's disk before its restart. */
  checkpoints: number;
  /** SIGTERM until the process exited; until it printed "ready"; until /readyz answered 200 (ms from SIGTERM). */
  stopMs: number;
  processReadyMs: number;
  servingMs: number;
  /** The restarted node's RssAnon once serving again (it reopened its shards), bytes. */
  reopenedRssAnon: number;
  /** Other processes' share of this machine's CPU during the ingest and during the search phase, % of one core (the machine is shared). */
  othersIngestCpu: number;
  othersSearchCpu: number;
}

/** Log-log slope of y against size between two steps: ~0 constant, ~1 linear, <0 falling. */
export function slope(x1: number, y1: number, x2: number, y2: number): number {
  return Math.log(y2 / y1) / Math.log(x2 / x1);
}

interface Figure {
  label: string;
  value: (s: ScaleStep) => number;
  show: (v: number) => string;
  /** What growth is expected, in words. */
  expect: string;
}

const perPoint = (bytes: number, s: ScaleStep): number => bytes / s.points;
const b0 = (v: number): string => fmt(v, 0);

export const FIGURES: Figure[] = [
  { label: 'ingest, points/s (this step\'s points)', value: (s) => s.ingestRate, show: b0, expect: 'falls slowly' },
  { label: 'raw hnswlib insert, points/s', value: (s) => s.rawInsertRate, show: b0, expect: 'falls slowly' },
  { label: 'ingest / raw insert', value: (s) => s.ingestRate / s.rawInsertRate, show: (v) => `${fmt(v, 2)}×`, expect: 'flat' },
  { label: 'ef, the smallest of the ladder with recall@10 ≥ 0.95 through Shoal', value: (s) => s.ef, show: b0, expect: 'grows slowly' },
  { label: 'search QPS, 32 clients', value: (s) => s.qps, show: b0, expect: 'falls slowly' },
  { label: 'search p99, ms', value: (s) => s.p99, show: (v) => fmt(v, 1), expect: 'grows slowly' },
  { label: 'raw hnswlib QPS, one thread, same recall', value: (s) => s.rawQps, show: b0, expect: 'falls slowly' },
  { label: 'search QPS / raw QPS', value: (s) => s.qps / s.rawQps, show: (v) => `${fmt(v, 2)}×`, expect: 'flat' },
  { label: 'RssAnon per point, bytes (node, all)', value: (s) => perPoint(s.rssAnon, s), show: b0, expect: 'falls toward the growth figure' },
  { label: 'RssAnon growth per point, bytes (node less its empty self)', value: (s) => perPoint(s.rssAnonGrowth, s), show: b0, expect: 'flat' },
  { label: 'raw hnswlib RssAnon per point, bytes', value: (s) => perPoint(s.rawRssAnon, s), show: b0, expect: 'flat' },
  { label: 'node RssAnon growth / raw', value: (s) => s.rssAnonGrowth / s.rawRssAnon, show: (v) => `${fmt(v, 2)}×`, expect: 'flat' },
  { label: 'RssFile per point, bytes (page cache, apart)', value: (s) => perPoint(s.rssFile, s), show: b0, expect: 'flat' },
  { label: 'disk per point, bytes (node data directory)', value: (s) => perPoint(s.disk, s), show: b0, expect: 'flat' },
  { label: 'restart: SIGTERM to exit, s', value: (s) => s.stopMs / 1000, show: (v) => fmt(v, 1), expect: 'small' },
  { label: 'restart: SIGTERM to process ready, s', value: (s) => s.processReadyMs / 1000, show: (v) => fmt(v, 1), expect: '' },
  { label: 'restart: SIGTERM to /readyz 200 (serving), s', value: (s) => s.servingMs / 1000, show: (v) => fmt(v, 1), expect: 'linear' },
  { label: 'restarted node RssAnon per point, bytes', value: (s) => perPoint(s.reopenedRssAnon, s), show: b0, expect: 'flat' },
];

/** The table: one row per figure, one column per size, then the log-log slope between each pair of sizes and overall. */
export function scaleTable(steps: ScaleStep[]): string {
  const sizes = steps.map((s) => s.points);
  const pairs = steps.slice(1).map((s, i) => [steps[i] as ScaleStep, s] as const);
  const head = `| figure | ${sizes.map((n) => fmt(n, 0)).join(' | ')} | ${pairs.map(([a, b]) => `slope ${short(a.points)}→${short(b.points)}`).join(' | ')}${steps.length > 2 ? ' | slope overall' : ''} | expected |`;
  const cols = sizes.length + pairs.length + (steps.length > 2 ? 1 : 0);
  const rows = FIGURES.map((f) => {
    const v = steps.map(f.value);
    const sl = pairs.map(([a, b]) => fmt(slope(a.points, f.value(a), b.points, f.value(b)), 2));
    const first = steps[0] as ScaleStep;
    const last = steps[steps.length - 1] as ScaleStep;
    const overall = steps.length > 2 ? [fmt(slope(first.points, f.value(first), last.points, f.value(last)), 2)] : [];
    return `| ${f.label} | ${v.map(f.show).join(' | ')} | ${[...sl, ...overall].join(' | ')} | ${f.expect} |`;
  });
  return [head, `|---|${Array.from({ length: cols }, () => '---:').join('|')}|---|`, ...rows].join('\n');
}

function short(n: number): string {
  return n >= 1000 ? `${+(n / 1000).toFixed(1)}k` : String(n);
}

/** The plot's panels. */
export function scalePanels(steps: ScaleStep[]): Panel[] {
  const SHOAL = '#1f6fb4';
  const RAW = '#d9711c';
  const v = (f: (s: ScaleStep) => number): number[] => steps.map(f);
  return [
    { title: 'Ingest', unit: 'points/s', series: [{ label: 'Shoal, 3 replicas', values: v((s) => s.ingestRate), colour: SHOAL }, { label: 'raw insert, 1 thread', values: v((s) => s.rawInsertRate), colour: RAW, dashed: true }] },
    { title: 'Search QPS at recall@10 ≥ 0.95', unit: 'queries/s', series: [{ label: 'Shoal, 32 clients', values: v((s) => s.qps), colour: SHOAL }, { label: 'raw, 1 thread', values: v((s) => s.rawQps), colour: RAW, dashed: true }] },
    { title: 'Search p99, 32 clients', unit: 'ms', series: [{ label: 'Shoal', values: v((s) => s.p99), colour: SHOAL }] },
    { title: 'Memory per point (RssAnon)', unit: 'bytes', series: [{ label: 'node, growth', values: v((s) => s.rssAnonGrowth / s.points), colour: SHOAL }, { label: 'raw hnswlib', values: v((s) => s.rawRssAnon / s.points), colour: RAW, dashed: true }] },
    { title: 'Disk per point (and RssFile)', unit: 'bytes', series: [{ label: 'data dir', values: v((s) => s.disk / s.points), colour: SHOAL }, { label: 'RssFile', values: v((s) => s.rssFile / s.points), colour: '#7a7a7a', dashed: true }] },
    { title: 'Restart of one node', unit: 's', series: [{ label: 'to /readyz 200', values: v((s) => s.servingMs / 1000), colour: SHOAL }, { label: 'to process ready', values: v((s) => s.processReadyMs / 1000), colour: '#7a7a7a', dashed: true }] },
  ];
}
