/**
 * `npm run bench:index`: Shoal's vector index (HNSW in a worker thread, with its automatic exact
 * path for selective filters) against raw hnswlib-node with the same parameters, in the same run,
 * on Fashion-MNIST (60k × 784, L2, 10k queries). Writes its figures to bench/RESULTS.md.
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
import { machine, today, writeSection } from './lib/report.js';
import { fmt, median, percentile, sortedCopy } from './lib/stats.js';

const K = 10;
const M = Number(process.env.BENCH_M ?? 16);
const EF_CONSTRUCTION = Number(process.env.BENCH_EF_CONSTRUCTION ?? 200);
const SEED = 100;
const EFS = [16, 32, 64, 128, 256];
const FILTER_EFS = [64, 256, 1024];
const QUERIES = Number(process.env.BENCH_QUERIES ?? 10_000);
const FILTER_QUERIES = Number(process.env.BENCH_FILTER_QUERIES ?? 500);
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
const bucket = Uint8Array.from({ length: N }, (_, i) => i % 10);
log(`Fashion-MNIST: ${N} base × ${dim}, ${ds.test.length / dim} queries; M=${M} efConstruction=${EF_CONSTRUCTION}`);

// Filters independent of the query: 10% = one class; 1% = one class and one of ten buckets.
const wantLabel = Int16Array.from({ length: FILTER_QUERIES }, (_, q) => q % 10);
const wantBucketNone = new Int16Array(FILTER_QUERIES).fill(-1);
const wantBucket = Int16Array.from({ length: FILTER_QUERIES }, (_, q) => Math.floor(q / 10) % 10);
const gt = await groundTruth({ name: `fmnist-l2-n${N}`, dim, k: K, train: ds.train, test: ds.test, queries: QUERIES });
const gt10 = await groundTruth({ name: `fmnist-l2-class-n${N}`, dim, k: K, train: ds.train, test: ds.test, queries: FILTER_QUERIES, filter: { label: ds.trainLabels, bucket, wantLabel, wantBucket: wantBucketNone } });
const gt1 = await groundTruth({ name: `fmnist-l2-class-bucket-n${N}`, dim, k: K, train: ds.train, test: ds.test, queries: FILTER_QUERIES, filter: { label: ds.trainLabels, bucket, wantLabel, wantBucket } });

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
const ours = await host.create('hnsw', { dim, metric: 'l2', hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 }, seed: SEED, initialCapacity: N });
t0 = performance.now();
const pending: Promise<void>[] = [];
for (let i = 0; i < N; i += BATCH) {
  const points = [];
  for (let j = i; j < Math.min(N, i + BATCH); j++) points.push({ id: String(j), vector: row(ds.train, dim, j), metadata: { label: ds.trainLabels[j], bucket: bucket[j] } });
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
  for (let q = 0; q < Math.min(1000, QUERIES); q++) {
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

// ---- filtered search: hnswlib's callback filter vs ours (automatic plan) ----
interface FilterRow { name: string; ef: number | string; plan: string; recall: number; qps: number }
const filterRows: FilterRow[] = [];
for (const [name, gtf, wb] of [['10%', gt10, wantBucketNone], ['1%', gt1, wantBucket]] as const) {
  const cb = (q: number) => {
    const l = wantLabel[q] as number;
    const b = wb[q] as number;
    return (i: number): boolean => ds.trainLabels[i] === l && (b < 0 || bucket[i] === b);
  };
  let exactMeasured = false;
  const filters = Array.from({ length: FILTER_QUERIES }, (_, q) => parseFilter((wb[q] as number) < 0 ? { label: wantLabel[q] } : { label: wantLabel[q], bucket: wb[q] }));
  for (const ef of FILTER_EFS) {
    const plan = await ours.plan({ vector: row(ds.test, dim, 0), k: K, ef, filter: filters[0] });
    raw.setEf(ef);
    const rawQps: number[] = [];
    const oursQps: number[] = [];
    let rawLabels: number[][] = [];
    let oursLabels: number[][] = [];
    // One pass of the callback filter (tens of ms a query: long enough to average out noise).
    const a = rawSearch(rawQueries, 0, FILTER_QUERIES, cb);
    rawQps.push(FILTER_QUERIES / a.s);
    rawLabels = a.labels;
    for (let r = 0; r < ROUNDS; r++) {
      if (plan === 'exact' && exactMeasured) continue; // ef does not change an exact search
      const b = await oursPipelined(ours, 0, FILTER_QUERIES, (q) => ({ vector: row(ds.test, dim, q), k: K, ef, filter: filters[q], withMetadata: false }));
      oursQps.push(FILTER_QUERIES / b.s);
      oursLabels = b.hits.map(labelsOf);
    }
    filterRows.push({ name, ef, plan: 'hnswlib callback', recall: recallAt(K, gtf, rawLabels), qps: median(rawQps) });
    if (plan === 'exact') exactMeasured = true;
    if (oursQps.length > 0) filterRows.push({ name, ef: plan === 'exact' ? 'any' : ef, plan: `Shoal (${plan})`, recall: recallAt(K, gtf, oursLabels), qps: median(oursQps) });
    log(`filter ${name} ef ${ef}: ${filterRows.slice(-2).map((r) => `${r.plan} recall ${r.recall.toFixed(4)} QPS ${fmt(r.qps, 0)}`).join('; ')}`);
  }
}
await ours.close();

// ---- the shard state machine: apply through LMDB + journal + index, checkpoint, restart ----
const root = mkdtempSync(join(tmpdir(), 'shoal-bench-'));
const env = openNodeEnv({ path: join(root, 'env') });
const entries: LogEntry[] = [];
for (let i = 0; i < N; i += BATCH) {
  const points = [];
  for (let j = i; j < Math.min(N, i + BATCH); j++) points.push({ id: String(j), vector: row(ds.train, dim, j), metadata: { label: ds.trainLabels[j], bucket: bucket[j] } });
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
const filterTable = filterRows.map((r) => `| ${r.name} | ${r.plan} | ${r.ef} | ${r.recall.toFixed(4)} | ${fmt(r.qps, 0)} |`).join('\n');
const ratioLines = (['10%', '1%'] as const)
  .map((name) => {
    const mine = filterRows.filter((r) => r.name === name && r.plan.startsWith('Shoal'));
    const theirs = filterRows.filter((r) => r.name === name && r.plan === 'hnswlib callback');
    return theirs
      .map((t) => {
        const m = mine.find((x) => x.ef === t.ef) ?? mine.find((x) => x.ef === 'any');
        return m ? `- ${name}, hnswlib callback at ef ${t.ef} (recall ${t.recall.toFixed(4)}): Shoal ${fmt(m.qps / t.qps, 1)}× its QPS at recall ${m.recall.toFixed(4)}` : '';
      })
      .join('\n');
  })
  .join('\n');

writeSection(
  'index',
  `## Vector index vs raw hnswlib-node on Fashion-MNIST (\`npm run bench:index\`)

Run ${today()} on ${machine()}. ${N} base vectors × ${dim} dims (L2), ${QUERIES} queries, k=${K}, M=${M},
efConstruction=${EF_CONSTRUCTION}, seed ${SEED} for both. Raw: hnswlib-node called directly on this thread with
pre-built number arrays. Shoal: \`WorkerIndex\` (the index in its worker thread, as the shard state machine
uses it), ${IN_FLIGHT} searches in flight; inserts in batches of ${BATCH}; both sized for ${N} points up front.
QPS: median of ${ROUNDS} alternating rounds (the slow callback-filter rows: one pass).
Exact ground truth: hnswlib's BruteforceSearch, cached in bench/.cache/.

Build: raw ${fmt(N / rawInsertS, 0)} inserts/s, Shoal ${fmt(N / oursInsertS, 0)} inserts/s (**${pct(rawInsertS, oursInsertS)}** of raw).
Memory (process RSS growth while building): raw ${fmt(rawBytes / N, 0)} B/vector, Shoal ${fmt(oursBytes / N, 0)} B/vector
(Shoal keeps a float32 copy of each vector and its metadata beside the graph, for the exact path, \`withVector\` and filters).

| ef | recall@10 raw | recall@10 Shoal | identical hits | QPS raw | QPS Shoal | Shoal/raw | p50 µs raw, 1 at a time | p50 µs Shoal, 1 at a time | QPS Shoal, 1 at a time |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${efTable}

Filtered search, ${FILTER_QUERIES} queries; 10% = \`{label: c}\`, 1% = \`{label: c, bucket: b}\` (metadata: the class label and
\`i % 10\`); ground truth exact over the matching points. Shoal picks its plan by itself.

| selectivity | path | ef | recall@10 | QPS |
|---|---|---:|---:|---:|
${filterTable}

${ratioLines}

Shard state machine (LMDB points + journal + index, one entry of ${BATCH} points per apply): ${fmt(smPoints / smApplyS, 0)} points/s
(${pct(smPoints / smApplyS, N / rawInsertS)} of raw inserts); the last entry plus a checkpoint of the full index (written and read back):
${fmt(smLastS, 1)} s; reopen from that checkpoint: ${fmt(reopenS, 1)} s.

Goals: recall@10 identical to raw at equal parameters; QPS and insert rate ≥ 90% of raw; filtered search at 1%
≥ 10× the callback filter's QPS at equal or better recall.`,
);
log('written to bench/RESULTS.md');
