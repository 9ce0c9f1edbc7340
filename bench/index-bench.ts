/**
 * `npm run bench:index`: Shoal's vector index (HNSW in a worker thread, with its automatic exact
 * path for selective filters) against raw hnswlib-node with the same parameters, in the same run,
 * on Fashion-MNIST (60k × 784, L2, 10k queries); then filtered search at four selectivities in
 * three shapes (bench/lib/filter-*.ts). Writes its figures to bench/RESULTS.md (sections `index`
 * and `index-filter`). `BENCH_ONLY=filter` runs only what the filtered part needs (both builds,
 * the unfiltered ef ladder on 2,000 queries) and rewrites only its section.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { IndexHost, parseFilter, type Hit, type WorkerIndex } from '../src/index/mod.js';
import { ShardStateMachine, type LogEntry } from '../src/shard/mod.js';
import { openNodeEnv } from '../src/storage/node-env.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { groundTruth, recallAt } from './lib/ground-truth.js';
import { measureFilterRow, planText, type FilterResult } from './lib/filter-measure.js';
import { filterSection } from './lib/filter-report.js';
import { filterRows, makeMetadata, metadataOf, pctLabel } from './lib/filter-workload.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt, median, percentile, sortedCopy } from './lib/stats.js';

const K = 10;
const M = Number(process.env.BENCH_M ?? 16);
const EF_CONSTRUCTION = Number(process.env.BENCH_EF_CONSTRUCTION ?? 200);
const SEED = 100;
const META_SEED = 22;
const EFS = [16, 32, 64, 128, 256];
const FILTER_EFS = [16, 32, 64, 128, 256, 512, 1024];
const ONLY = process.env.BENCH_ONLY;
if (ONLY !== undefined && ONLY !== 'filter') throw new Error(`BENCH_ONLY must be "filter" (or unset for everything), got ${JSON.stringify(ONLY)}`);
const FILTER_ONLY = ONLY === 'filter';
const QUERIES = Number(process.env.BENCH_QUERIES ?? (FILTER_ONLY ? 2_000 : 10_000));
const FILTER_QUERIES = Number(process.env.BENCH_FILTER_QUERIES ?? 300);
const FILTER_ROUNDS = 3;
const IN_FLIGHT = 16;
const BATCH = 256;
const ROUNDS = 5;

const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);
const rss = (): number => {
  gc();
  return process.memoryUsage().rss;
};
const log = (s: string): void => console.log(s);

const full = loadFashionMnist();
const { dim } = full;
/** BENCH_BASE shrinks the base set, for a quick trial of the bench itself. */
const N = Math.min(Number(process.env.BENCH_BASE ?? Infinity), full.train.length / dim);
const ds = { ...full, train: full.train.subarray(0, N * dim) };
const meta = makeMetadata(N, META_SEED);
const rows = filterRows(meta, FILTER_QUERIES, META_SEED + 1);
log(`Fashion-MNIST: ${N} base × ${dim}, ${ds.test.length / dim} queries; M=${M} efConstruction=${EF_CONSTRUCTION}${FILTER_ONLY ? '; filtered part only' : ''}`);

const gt = await groundTruth({ name: 'fmnist-l2', dim, k: K, train: ds.train, test: ds.test, queries: QUERIES });

// ---- build: raw, then ours (worker), each timed; memory as RSS growth ----
let before = rss();
let t0 = performance.now();
const raw = new hnswlib.HierarchicalNSW('l2', dim);
raw.initIndex({ maxElements: N, m: M, efConstruction: EF_CONSTRUCTION, randomSeed: SEED });
for (let i = 0; i < N; i++) raw.addPoint(Array.from(row(ds.train, dim, i)), i);
const rawInsertS = (performance.now() - t0) / 1000;
const rawBytes = rss() - before;
log(`raw build: ${fmt(N / rawInsertS, 0)} inserts/s, ${fmt(rawBytes / N, 0)} B/vector`);

before = rss();
const host = IndexHost.start();
const ours = await host.create('hnsw', { dim, metric: 'l2', hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 }, seed: SEED, initialCapacity: N, indexes: { tag: 'keyword', num: 'integer' } });
t0 = performance.now();
const pending: Promise<void>[] = [];
for (let i = 0; i < N; i += BATCH) {
  const points = [];
  for (let j = i; j < Math.min(N, i + BATCH); j++) points.push({ id: String(j), vector: row(ds.train, dim, j), metadata: metadataOf(meta, j) });
  pending.push(ours.upsert(points));
  if (pending.length >= 4) await pending.shift();
}
await Promise.all(pending);
const oursInsertS = (performance.now() - t0) / 1000;
const workerMemory = await host.memory(); // collects the worker's garbage first
const oursBytes = rss() - before;
log(`ours build: ${fmt(N / oursInsertS, 0)} inserts/s, ${fmt(oursBytes / N, 0)} B/vector (worker heap ${fmt(workerMemory.heapUsed / 2 ** 20, 0)} MiB, external ${fmt(workerMemory.external / 2 ** 20, 0)} MiB)`);

// ---- unfiltered search ----
const rawQueries = Array.from({ length: QUERIES }, (_, q) => Array.from(row(ds.test, dim, q)));
const labelsOf = (hits: Hit[]): number[] => hits.map((h) => Number(h.id));

function rawSearch(qs: number[][], from: number, to: number, filter?: (q: number) => (l: number) => boolean): { labels: number[][]; dists: number[][]; s: number } {
  const labels: number[][] = [];
  const dists: number[][] = [];
  const t = performance.now();
  for (let q = from; q < to; q++) {
    const r = raw.searchKnn(qs[q] as number[], K, filter?.(q));
    labels.push(r.neighbors);
    dists.push(r.distances);
  }
  return { labels, dists, s: (performance.now() - t) / 1000 };
}

async function oursPipelined(idx: WorkerIndex, from: number, to: number, query: (q: number) => Parameters<WorkerIndex['search']>[0]): Promise<{ hits: Hit[][]; s: number }> {
  const hits: Hit[][] = new Array(to - from);
  let next = from;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < to) {
        const q = next++;
        hits[q - from] = await idx.search(query(q));
      }
    }),
  );
  return { hits, s: (performance.now() - t) / 1000 };
}

interface EfRow { ef: number; rawQps: number; oursQps: number; rawRecall: number; oursRecall: number; identical: number; oursSerialP50: number; oursSerialQps: number; rawP50: number }
const efRows: EfRow[] = [];
for (const ef of EFS) {
  raw.setEf(ef);
  const rawQps: number[] = [];
  const oursQps: number[] = [];
  const rawLabels: number[][] = [];
  const rawDists: number[][] = [];
  const oursHits: Hit[][] = [];
  const chunk = Math.ceil(QUERIES / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const from = r * chunk;
    const to = Math.min(QUERIES, from + chunk);
    const a = rawSearch(rawQueries, from, to);
    rawQps.push((to - from) / a.s);
    rawLabels.push(...a.labels);
    rawDists.push(...a.dists);
    const b = await oursPipelined(ours, from, to, (q) => ({ vector: row(ds.test, dim, q), k: K, ef, withMetadata: false }));
    oursQps.push((to - from) / b.s);
    oursHits.push(...b.hits);
  }
  // One query at a time, for latency.
  const serial: number[] = [];
  const rawSerial: number[] = [];
  for (let q = 0; q < (FILTER_ONLY ? 0 : Math.min(1000, QUERIES)); q++) {
    let t = performance.now();
    await ours.search({ vector: row(ds.test, dim, q), k: K, ef, withMetadata: false });
    serial.push(performance.now() - t);
    t = performance.now();
    raw.searchKnn(rawQueries[q] as number[], K);
    rawSerial.push(performance.now() - t);
  }
  let identical = 0;
  oursHits.forEach((hits, q) => {
    const rawPairs = (rawLabels[q] ?? []).map((l, j) => [String(l), rawDists[q]?.[j] as number] as const).sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    if (JSON.stringify(hits.map((h) => [h.id, h.distance])) === JSON.stringify(rawPairs)) identical++;
  });
  const s = sortedCopy(serial);
  const rowOut: EfRow = {
    ef,
    rawQps: median(rawQps),
    oursQps: median(oursQps),
    rawRecall: recallAt(K, gt, rawLabels),
    oursRecall: recallAt(K, gt, oursHits.map(labelsOf)),
    identical,
    oursSerialP50: percentile(s, 50),
    oursSerialQps: (serial.length / serial.reduce((x, y) => x + y, 0)) * 1000,
    rawP50: percentile(sortedCopy(rawSerial), 50),
  };
  efRows.push(rowOut);
  log(`ef ${ef}: recall raw ${rowOut.rawRecall.toFixed(4)} ours ${rowOut.oursRecall.toFixed(4)}, identical ${identical}/${QUERIES}; QPS raw ${fmt(rowOut.rawQps, 0)} ours ${fmt(rowOut.oursQps, 0)} (${fmt((100 * rowOut.oursQps) / rowOut.rawQps, 0)}%)`);
}

// ---- filtered search: ours (automatic plan) at every selectivity and shape, hnswlib's callback filter as anchor ----
const filterResults: FilterResult[] = [];
const filterCtx = {
  ours,
  raw,
  dim,
  k: K,
  train: ds.train,
  test: ds.test,
  name: 'fmnist-l2',
  queries: FILTER_QUERIES,
  efs: FILTER_EFS,
  unfiltered: efRows.map((r) => ({ ef: r.ef, recall: r.oursRecall })),
  rounds: FILTER_ROUNDS,
  inFlight: IN_FLIGHT,
};
for (const r of rows) {
  const x = await measureFilterRow(filterCtx, r);
  filterResults.push(x);
  log(
    `filter ${r.shape} ${pctLabel(r.selectivity)} (${r.id}): ${planText(x.plans, FILTER_QUERIES)} ef ${x.ef} recall ${x.recall.toFixed(4)} QPS ${fmt(x.qps, 0)}; ` +
      `unfiltered ef ${x.unfiltered.ef} ${fmt(x.unfiltered.qps, 0)} → ${fmt(100 * x.ratio, 1)}%; callback ef ${x.callback.ef} recall ${x.callback.recall.toFixed(4)} QPS ${fmt(x.callback.qps, 1)}`,
  );
}
writeSection(
  'index-filter',
  filterSection({
    when: today(),
    machine: machine(),
    n: N,
    dim,
    k: K,
    m: M,
    efConstruction: EF_CONSTRUCTION,
    queries: FILTER_QUERIES,
    unfilteredQueries: QUERIES,
    rounds: FILTER_ROUNDS,
    inFlight: IN_FLIGHT,
    metaSeed: META_SEED,
    efs: FILTER_EFS,
    unfiltered: efRows.map((r) => ({ ef: r.ef, recall: r.oursRecall, qps: r.oursQps })),
    results: filterResults,
    note: process.env.BENCH_NOTE,
  }),
);
log('filtered part written to bench/RESULTS.md');
await ours.close();
if (FILTER_ONLY) {
  await host.close();
  process.exit(0);
}

// ---- the shard state machine: apply through LMDB + journal + index, checkpoint, restart ----
const root = mkdtempSync(join(tmpdir(), 'shoal-bench-'));
const env = openNodeEnv({ path: join(root, 'env') });
const entries: LogEntry[] = [];
for (let i = 0; i < N; i += BATCH) {
  const points = [];
  for (let j = i; j < Math.min(N, i + BATCH); j++) points.push({ id: String(j), vector: row(ds.train, dim, j), metadata: metadataOf(meta, j) });
  entries.push({ index: entries.length + 1, command: { type: 'upsert', points, at: entries.length + 1 } });
}
const smOpts = { env, group: 'bench', dir: join(root, 'index'), dim, metric: 'l2' as const, hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 }, seed: SEED, checkpointEvery: entries.length, host };
let sm = await ShardStateMachine.open(smOpts);
t0 = performance.now();
for (const e of entries.slice(0, -1)) await sm.apply([e]);
const smApplyS = (performance.now() - t0) / 1000;
const last = entries.at(-1)?.command;
const smPoints = N - (last?.type === 'upsert' ? last.points.length : 0);
t0 = performance.now();
await sm.apply(entries.slice(-1)); // its index is a multiple of checkpointEvery: applies, then writes and reads back the index
const smLastS = (performance.now() - t0) / 1000;
await sm.close();
t0 = performance.now();
sm = await ShardStateMachine.open(smOpts);
const reopenS = (performance.now() - t0) / 1000;
await sm.close();
await env.close();
rmSync(root, { recursive: true, force: true });
await host.close();
log(`state machine: ${fmt(smPoints / smApplyS, 0)} points/s applied; last entry + checkpoint ${fmt(smLastS, 1)} s; reopen ${fmt(reopenS, 1)} s`);

// ---- report ----
const pct = (a: number, b: number): string => `${fmt((100 * a) / b, 0)}%`;
const efTable = efRows
  .map((r) => `| ${r.ef} | ${r.rawRecall.toFixed(4)} | ${r.oursRecall.toFixed(4)} | ${r.identical} / ${QUERIES} | ${fmt(r.rawQps, 0)} | ${fmt(r.oursQps, 0)} | ${pct(r.oursQps, r.rawQps)} | ${fmt(r.rawP50 * 1000, 0)} | ${fmt(r.oursSerialP50 * 1000, 0)} | ${fmt(r.oursSerialQps, 0)} |`)
  .join('\n');
writeSection(
  'index',
  `## Vector index vs raw hnswlib-node on Fashion-MNIST (\`npm run bench:index\`)

Run ${today()} on ${machine()}. ${N} base vectors × ${dim} dims (L2), ${QUERIES} queries, k=${K}, M=${M},
efConstruction=${EF_CONSTRUCTION}, seed ${SEED} for both. Raw: hnswlib-node called directly on this thread with
pre-built number arrays. Shoal: \`WorkerIndex\` (the index in its worker thread, as the shard state machine
uses it), ${IN_FLIGHT} searches in flight; inserts in batches of ${BATCH}; both sized for ${N} points up front.
QPS: median of ${ROUNDS} alternating rounds.
Exact ground truth: hnswlib's BruteforceSearch, cached in bench/.cache/.

Build: raw ${fmt(N / rawInsertS, 0)} inserts/s, Shoal ${fmt(N / oursInsertS, 0)} inserts/s (**${pct(rawInsertS, oursInsertS)}** of raw).
Memory (process RSS growth while building): raw ${fmt(rawBytes / N, 0)} B/vector, Shoal ${fmt(oursBytes / N, 0)} B/vector
(Shoal keeps a float32 copy of each vector and its metadata beside the graph, for the exact path, \`withVector\` and filters).

| ef | recall@10 raw | recall@10 Shoal | identical hits | QPS raw | QPS Shoal | Shoal/raw | p50 µs raw, 1 at a time | p50 µs Shoal, 1 at a time | QPS Shoal, 1 at a time |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${efTable}

Filtered search: the next section (\`index-filter\`), from the same run.

Shard state machine (LMDB points + journal + index, one entry of ${BATCH} points per apply): ${fmt(smPoints / smApplyS, 0)} points/s
(${pct(smPoints / smApplyS, N / rawInsertS)} of raw inserts); the last entry plus a checkpoint of the full index (written and read back):
${fmt(smLastS, 1)} s; reopen from that checkpoint: ${fmt(reopenS, 1)} s.

Goals: recall@10 identical to raw at equal parameters; QPS and insert rate ≥ 90% of raw.`,
);
log('written to bench/RESULTS.md');
