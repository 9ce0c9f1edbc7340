/**
 * `npm run bench:filter-plans`: what each plan of a filtered search costs with the native addon,
 * measured to set HnswIndex's planner constants (hnsw-index.ts). Fashion-MNIST 60k × 784 (L2),
 * metadata drawn at random, independent of the vectors: a field per selectivity (50%, 10%, 1%,
 * 0.1%), each query asking for one value of it. Recall@10 against exact ground truth over the
 * matches (hnswlib's brute force, bench/lib/ground-truth.ts).
 *
 * Plans, each timed on the addon alone with the per-query work HnswIndex does for it (the match
 * list comes in as a number[], as PointTable.select gives it):
 *   - exact: Uint32Array of the m matches, `exactKnn` (recall 1 by construction);
 *   - bitset: a bitset of the matches, `searchKnn` with it, at several ef;
 *   - post-filter: an unfiltered `searchKnn` for k' candidates at ef = k', filtered afterwards.
 * Then HnswIndex itself (in this thread, its automatic plan) for the end-to-end figures, against
 * its own unfiltered search at the same ef. Writes bench/RESULTS.md's `filter-plans` section.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HnswIndex, parseFilter, type Filter } from '../src/index/mod.js';
import { bitsetOf, newHnswGraph, type GraphHits } from '../src/index/native-graph.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { groundTruth, recallAt } from './lib/ground-truth.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt, median } from './lib/stats.js';

const K = 10;
const M = 16;
const EF_CONSTRUCTION = 200;
const SEED = 100;
const QUERIES = Number(process.env.BENCH_FILTER_QUERIES ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const EFS = (process.env.BENCH_EFS ?? '16,32,64,128,256').split(',').map(Number);
/** Field cardinality → selectivity 1 / cardinality. */
const ALL_CARDS = [2, 10, 100, 1000];
/** BENCH_CARDS measures some of them (the metadata always has all four, drawn in this order). */
const CARDS = (process.env.BENCH_CARDS ?? ALL_CARDS.join(',')).split(',').map(Number);
const log = (s: string): void => console.log(s);

const full = loadFashionMnist();
const { dim } = full;
const N = Math.min(Number(process.env.BENCH_BASE ?? Infinity), full.train.length / dim);
const train = full.train.subarray(0, N * dim);
const queries = Array.from({ length: QUERIES }, (_, q) => Float32Array.from(row(full.test, dim, q)));

// Seeded xorshift: the metadata is the same in every run, and independent of the vectors.
let state = 0x9e3779b9;
const rand = (): number => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
};
const values = new Map<number, Uint16Array>(ALL_CARDS.map((c) => [c, Uint16Array.from({ length: N }, () => Math.floor(rand() * c))]));
const field = (card: number): string => `f${card}`;
/** Query q asks for value q mod card of the field. */
const wanted = (card: number, q: number): number => q % card;
const matchesOf = (card: number, w: number): number[] => {
  const v = values.get(card) as Uint16Array;
  const out: number[] = [];
  for (let i = 0; i < N; i++) if (v[i] === w) out.push(i);
  return out;
};

// Ground truth over the matches (exact, by the bench's own predicate).
const gtUnfiltered = await groundTruth({ name: `fmnist-l2-n${N}`, dim, k: K, train, test: full.test, queries: QUERIES });
const gts = new Map<number, Int32Array>();
for (const card of CARDS) {
  const v = values.get(card) as Uint16Array;
  gts.set(
    card,
    await groundTruth({
      name: `fmnist-l2-rand${card}-n${N}`,
      dim,
      k: K,
      train,
      test: full.test,
      queries: QUERIES,
      match: (q, i) => v[i] === wanted(card, q),
    }),
  );
}

// ---- the index: built once through HnswIndex (checkpoint cached in bench/.cache/), its graph file also read into a bare addon graph ----
const CKPT = fileURLToPath(new URL(`../../bench/.cache/filter-plans-n${N}-m${M}-efc${EF_CONSTRUCTION}`, import.meta.url));
const indexOptions = { dim, metric: 'l2' as const, hnsw: { m: M, efConstruction: EF_CONSTRUCTION, ef: 64 }, seed: SEED, initialCapacity: N };
let index: HnswIndex;
if (existsSync(join(CKPT, 'graph.hnsw'))) {
  index = HnswIndex.load(CKPT, indexOptions);
  log(`index read from ${CKPT}`);
} else {
  index = HnswIndex.create(indexOptions);
  const t0 = performance.now();
  for (let i = 0; i < N; i += 256) {
    const points = [];
    for (let j = i; j < Math.min(N, i + 256); j++) points.push({ id: String(j), vector: row(train, dim, j), metadata: Object.fromEntries(ALL_CARDS.map((c) => [field(c), (values.get(c) as Uint16Array)[j]])) });
    index.upsert(points);
  }
  log(`built ${N} points in ${fmt((performance.now() - t0) / 1000)} s`);
  mkdirSync(dirname(CKPT), { recursive: true });
  index.checkpoint(CKPT);
}
const graph = newHnswGraph('l2', dim);
graph.readIndex(join(CKPT, 'graph.hnsw'));

/**
 * Runs every plan on each query in turn (so that a machine shared with other work slows them
 * alike), ROUNDS times; per plan the median over rounds of its queries per second, and its recall.
 */
interface Plan { name: string; ef: number | string; run: (q: number) => ArrayLike<number> }
function measureAll(plans: Plan[], gt: Int32Array): { plan: Plan; qps: number; us: number; recall: number }[] {
  const times = plans.map(() => [] as number[]);
  const found = plans.map(() => [] as number[][]);
  for (let r = 0; r < ROUNDS; r++) {
    const spent = plans.map(() => 0);
    for (let q = 0; q < QUERIES; q++) {
      plans.forEach((p, i) => {
        graph.setEf(typeof p.ef === 'number' ? p.ef : 64);
        const t = performance.now();
        const labels = p.run(q);
        spent[i] = (spent[i] as number) + performance.now() - t;
        if (r === 0) (found[i] as number[][]).push(Array.from(labels));
      });
    }
    spent.forEach((ms, i) => (times[i] as number[]).push(QUERIES / (ms / 1000)));
  }
  return plans.map((plan, i) => {
    const qps = median(times[i] as number[]);
    return { plan, qps, us: 1e6 / qps, recall: recallAt(K, gt, found[i] as number[][]) };
  });
}

interface Row { sel: string; m: number; plan: string; ef: number | string; recall: number; qps: number; us: number }
const rows: Row[] = [];
const add = (sel: string, m: number, results: ReturnType<typeof measureAll>): void => {
  for (const r of results) {
    rows.push({ sel, m, plan: r.plan.name, ef: r.plan.ef, recall: r.recall, qps: r.qps, us: r.us });
    log(`${sel} (m ${m}) ${r.plan.name} ef ${r.plan.ef}: recall ${r.recall.toFixed(4)}, ${fmt(r.qps, 0)} QPS, ${fmt(r.us, 0)} µs`);
  }
};

add('100%', N, measureAll(EFS.map((ef) => ({ name: 'graph', ef, run: (q: number) => graph.searchKnn(queries[q] as Float32Array, K).labels })), gtUnfiltered));

for (const card of CARDS) {
  const sel = `${fmt(100 / card, card >= 1000 ? 1 : 0)}%`;
  const lists = Array.from({ length: card }, (_, w) => matchesOf(card, w));
  const listOf = (q: number): number[] => lists[wanted(card, q)] as number[];
  const top = (h: GraphHits): Uint32Array => h.labels.subarray(0, K); // ties beyond k do not count
  const plans: Plan[] = [{ name: 'exact', ef: '-', run: (q) => top(graph.exactKnn(queries[q] as Float32Array, K, Uint32Array.from(listOf(q)))) }];
  for (const ef of EFS) plans.push({ name: 'bitset', ef, run: (q) => graph.searchKnn(queries[q] as Float32Array, K, bitsetOf(listOf(q), N)).labels });
  for (const mult of [1, 2, 4]) {
    const kk = mult * K * card;
    if (kk > 2048) break; // past this the unfiltered search costs more than the exact scan of every point
    plans.push({
      name: `post-filter k'=${kk}`,
      ef: kk,
      run: (q) => {
        const bits = bitsetOf(listOf(q), N);
        const h = graph.searchKnn(queries[q] as Float32Array, kk);
        const out: number[] = [];
        for (let i = 0; i < h.labels.length && out.length < K; i++) {
          const l = h.labels[i] as number;
          if (((bits[l >>> 3] as number) >> (l & 7)) & 1) out.push(l);
        }
        return out;
      },
    });
  }
  add(sel, Math.round(N / card), measureAll(plans, gts.get(card) as Int32Array));
}

// ---- HnswIndex end to end: the automatic plan against its own unfiltered search ----
/** Median queries per second over ROUNDS passes of `run` over all queries; labels from the last pass. */
function measure(run: (q: number) => ArrayLike<number>): { qps: number; recallOf: (gt: Int32Array) => number } {
  const qps: number[] = [];
  let found: number[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    found = [];
    const t = performance.now();
    for (let q = 0; q < QUERIES; q++) found.push(Array.from(run(q)));
    qps.push(QUERIES / ((performance.now() - t) / 1000));
  }
  return { qps: median(qps), recallOf: (gt) => recallAt(K, gt, found) };
}
interface E2E { sel: string; ef: number; plan: string; recall: number; qps: number; unfilteredQps: number; unfilteredRecall: number }
const e2e: E2E[] = [];
const unfiltered = new Map<number, { qps: number; recall: number }>();
for (const ef of [32, 64, 128]) {
  const r = measure((q) => index.search({ vector: queries[q] as Float32Array, k: K, ef, withMetadata: false }).map((h) => Number(h.id)));
  unfiltered.set(ef, { qps: r.qps, recall: r.recallOf(gtUnfiltered) });
}
for (const card of CARDS) {
  const filters: Filter[] = Array.from({ length: card }, (_, w) => parseFilter({ [field(card)]: w }));
  for (const ef of [32, 64, 128]) {
    const filter = (q: number): Filter => filters[wanted(card, q)] as Filter;
    const plan = index.plan({ vector: queries[0] as Float32Array, k: K, ef, filter: filter(0) });
    const r = measure((q) => index.search({ vector: queries[q] as Float32Array, k: K, ef, filter: filter(q), withMetadata: false }).map((h) => Number(h.id)));
    const u = unfiltered.get(ef) as { qps: number; recall: number };
    e2e.push({ sel: `${fmt(100 / card, card >= 1000 ? 1 : 0)}%`, ef, plan, recall: r.recallOf(gts.get(card) as Int32Array), qps: r.qps, unfilteredQps: u.qps, unfilteredRecall: u.recall });
    const e = e2e[e2e.length - 1] as E2E;
    log(`HnswIndex ${e.sel} ef ${ef}: ${plan}, recall ${e.recall.toFixed(4)}, ${fmt(e.qps, 0)} QPS = ${fmt((100 * e.qps) / e.unfilteredQps, 0)}% of unfiltered (${fmt(e.unfilteredQps, 0)} QPS, recall ${e.unfilteredRecall.toFixed(4)})`);
  }
}

const section = [
    `## Filtered-search plans on the native addon (bench/filter-plans.ts), ${today()}`,
    '',
    `Machine: ${machine()}. Fashion-MNIST ${N} × ${dim} (L2), M ${M}, efConstruction ${EF_CONSTRUCTION}; ${QUERIES} queries, k ${K}; metadata random and independent of the vectors; a field per selectivity, each query asking for one of its values. Median of ${ROUNDS} passes, one thread, no worker; on the addon every plan runs on each query in turn. Recall@10 against exact ground truth over the matches.`,
    '',
    'Per plan, on the addon alone (with the per-query conversion HnswIndex does: Uint32Array or bitset of the match list):',
    '',
    '| selectivity | matches m | plan | ef | recall@10 | QPS | µs/query |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.sel} | ${r.m} | ${r.plan} | ${r.ef} | ${r.recall.toFixed(4)} | ${fmt(r.qps, 0)} | ${fmt(r.us, 0)} |`),
    '',
    'HnswIndex end to end (equality filter through its postings, automatic plan), against its own unfiltered search at the same ef in the same run:',
    '',
    '| selectivity | ef | plan | recall@10 | QPS | unfiltered QPS (recall) | filtered / unfiltered |',
    '|---|---|---|---|---|---|---|',
    ...e2e.map((e) => `| ${e.sel} | ${e.ef} | ${e.plan} | ${e.recall.toFixed(4)} | ${fmt(e.qps, 0)} | ${fmt(e.unfilteredQps, 0)} (${e.unfilteredRecall.toFixed(4)}) | ${fmt((100 * e.qps) / e.unfilteredQps, 0)}% |`),
  ].join('\n');
log(section);
writeSection('filter-plans', section);
log('bench/RESULTS.md: filter-plans section written');
