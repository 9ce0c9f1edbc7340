/**
 * `npm run bench:drift`: does recall stay where it was under churn (issue 21, item 2)? A graph
 * built with Shoal's addon (native-graph.ts) takes a first load of 20k points, then ten rounds that
 * each replace half of them (bench/lib/churn-plan.ts: a quarter updated under the same label, a
 * quarter deleted and their labels reused by new ids, as Shoal's PointTable hands them out). After
 * each round: recall@10 at ef 64 against an exact scan of the live points, for
 *   - ours: Shoal's addon, whose update path this bench is about;
 *   - hnswlib: raw hnswlib-node driven by the same calls (hnswlib's own updatePoint), the old path;
 *   - fresh: a graph built from scratch from the same live points (labels ascending): the anchor.
 * and the cost of an update (and of a reused label) per operation against an insert of the fresh
 * build in the same round. Graph shape from the written files (bench/lib/graph-file.ts) explains
 * the recall: live nodes a search cannot reach, nodes without in-links, mean link length.
 *
 * Data: Fashion-MNIST (784 dims, L2; the pool is its 60k train images, queries its test images),
 * or BENCH_DATA=clustered for the seeded 128-dim clustered vectors of bench:scale. BENCH_BASE,
 * BENCH_ROUNDS, BENCH_QUERIES shrink it for a quick trial; BENCH_RAW=0 skips hnswlib-node.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { newHnswGraph, type HnswGraph } from '../src/index/native-graph.js';
import { ChurnPlan, type ChurnOp } from './lib/churn-plan.js';
import { ClusteredVectors } from './lib/clustered-vectors.js';
import { loadFashionMnist, row } from './lib/fashion-mnist.js';
import { graphShape, readGraphFile, type GraphShape } from './lib/graph-file.js';
import { machine, today, writeSection } from './lib/report.js';
import { fmt, median } from './lib/stats.js';

const K = 10;
const EF = 64;
// Shoal's defaults (src/api/limits.ts DEFAULTS, src/index/hnsw-index.ts DEFAULT_SEED).
const M = Number(process.env.BENCH_M ?? 16);
const EF_CONSTRUCTION = Number(process.env.BENCH_EF_CONSTRUCTION ?? 200);
const SEED = 100;
const PLAN_SEED = 21;
const N = Number(process.env.BENCH_BASE ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 500);
const DATA = process.env.BENCH_DATA ?? 'blobs';
const RAW = process.env.BENCH_RAW !== '0';
const BLOB_DIM = Number(process.env.BENCH_DIM ?? 784);
const BLOB_CENTRES = Number(process.env.BENCH_CENTRES ?? 64);
const log = (s: string): void => console.log(s);

function dataset(): { name: string; dim: number; pool: Float32Array; queries: Float32Array } {
  if (DATA === 'fmnist') {
    const ds = loadFashionMnist();
    return { name: 'Fashion-MNIST', dim: ds.dim, pool: ds.train, queries: ds.test.subarray(0, QUERIES * ds.dim) };
  }
  if (DATA === 'clustered') {
    const c = new ClusteredVectors();
    return { name: 'clustered 128-dim (seed 20261202)', dim: c.spec.dim, pool: c.points(0, 3 * N), queries: c.queries(QUERIES) };
  }
  if (DATA === 'blobs') {
    // The vectors of the churn runs on a real node (bench:memory: 64 centres, 784 dims; the churn
    // integration test: 32, 512): centres uniform in [0, 1)^d, each point a centre plus uniform
    // noise of ±0.15 per dimension, from an LCG.
    const d = BLOB_DIM;
    let s = 21;
    const rand = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const centres = Array.from({ length: BLOB_CENTRES }, () => Float32Array.from({ length: d }, () => rand()));
    const fill = (out: Float32Array): Float32Array => {
      for (let i = 0; i < out.length; i += d) {
        const c = centres[Math.floor(rand() * centres.length)] as Float32Array;
        for (let j = 0; j < d; j++) out[i + j] = (c[j] as number) + (rand() - 0.5) * 0.3;
      }
      return out;
    };
    const queries = fill(new Float32Array(QUERIES * d));
    return { name: `${BLOB_CENTRES} uniform blobs (the real-node churn runs' vectors)`, dim: d, pool: fill(new Float32Array(3 * N * d)), queries };
  }
  throw new Error(`BENCH_DATA must be "fmnist", "blobs" or "clustered", got ${JSON.stringify(DATA)}`);
}

const { name, dim, pool, queries } = dataset();
const poolSize = pool.length / dim;
const vec = (i: number): Float32Array => row(pool, dim, i);
const query = (i: number): Float32Array => row(queries, dim, i);
const tmp = mkdtempSync(join(tmpdir(), 'shoal-drift-'));

/** The same calls to our addon and to raw hnswlib-node. */
interface Target {
  add(v: Float32Array, label: number): void;
  del(label: number): void;
  grow(span: number): void;
  search(q: Float32Array): Uint32Array;
  write(path: string): void;
}

function ours(g: HnswGraph): Target {
  return {
    add: (v, l) => g.addPoint(v, l),
    del: (l) => g.markDelete(l),
    grow: (span) => {
      if (span > g.getMaxElements()) g.resizeIndex(Math.max(span, 2 * g.getMaxElements()));
    },
    search: (q) => {
      g.setEf(EF);
      return g.searchKnn(q, K).labels;
    },
    write: (p) => g.writeIndex(p),
  };
}

function raw(): Target {
  const g = new hnswlib.HierarchicalNSW('l2', dim);
  g.initIndex({ maxElements: N, m: M, efConstruction: EF_CONSTRUCTION, randomSeed: SEED });
  return {
    add: (v, l) => g.addPoint(Array.from(v), l),
    del: (l) => g.markDelete(l),
    grow: (span) => {
      if (span > g.getMaxElements()) g.resizeIndex(Math.max(span, 2 * g.getMaxElements()));
    },
    search: (q) => {
      g.setEf(EF);
      return Uint32Array.from(g.searchKnn(Array.from(q), K).neighbors);
    },
    write: (p) => g.writeIndexSync(p),
  };
}

function newOurs(capacity: number): HnswGraph {
  const g = newHnswGraph('l2', dim);
  g.initIndex(capacity, M, EF_CONSTRUCTION, SEED);
  return g;
}

/** Milliseconds per op of each kind. */
type Costs = Record<'insert' | 'update' | 'reuse' | 'delete', number>;

function apply(t: Target, ops: ChurnOp[], span: number): Costs {
  t.grow(span);
  const ms = { insert: 0, update: 0, reuse: 0, delete: 0 };
  const n = { insert: 0, update: 0, reuse: 0, delete: 0 };
  for (const op of ops) {
    const kind = op.type === 'add' ? op.kind : 'delete';
    const t0 = performance.now();
    if (op.type === 'add') t.add(vec(op.vector), op.label);
    else t.del(op.label);
    ms[kind] += performance.now() - t0;
    n[kind]++;
  }
  return { insert: ms.insert / n.insert, update: ms.update / n.update, reuse: ms.reuse / n.reuse, delete: ms.delete / n.delete };
}

/** The exact k nearest (ties at the k-th distance included) of every query among the live labels. */
function truth(g: HnswGraph, live: Uint32Array): Set<number>[] {
  return Array.from({ length: queries.length / dim }, (_, i) => new Set(g.exactKnn(query(i), K, live).labels));
}

/** Recall@K, and the queries that found fewer than half of their K (a search stuck in the wrong region). */
function recallOf(t: Target, gt: Set<number>[]): { recall: number; lost: number } {
  let hit = 0;
  let lost = 0;
  gt.forEach((s, i) => {
    let h = 0;
    for (const l of t.search(query(i))) if (s.has(l)) h++;
    hit += h;
    if (2 * h < K) lost++;
  });
  return { recall: hit / (gt.length * K), lost };
}

/** Twice the mean level-0 link length of the first load's graph: "long" links, between clusters on clustered data. */
let longAt = Infinity;

function shapeOf(t: Target, tag: string): GraphShape {
  const p = join(tmp, `${tag}.hnsw`);
  t.write(p);
  const s = graphShape(readGraphFile(p, dim), longAt);
  rmSync(p);
  return s;
}

interface Row {
  round: number;
  lost: [number, number, number];
  ours: number;
  raw: number;
  fresh: number;
  cost: Costs;
  rawCost: Costs;
  freshInsert: number;
  shape: GraphShape;
  rawShape: GraphShape;
  freshShape: GraphShape;
}

log(`${name}: pool ${poolSize} × ${dim}, ${N} live points, ${ROUNDS} rounds, ${queries.length / dim} queries; M=${M} efConstruction=${EF_CONSTRUCTION} ef=${EF}`);
const plan = new ChurnPlan(poolSize, N, PLAN_SEED);
const graph = newOurs(N);
const a = ours(graph);
const b = RAW ? raw() : undefined;
const rows: Row[] = [];
let ops = plan.load();
for (let round = 0; round <= ROUNDS; round++) {
  if (round > 0) ops = plan.round();
  const cost = apply(a, ops, plan.labelSpan);
  const rawCost = b ? apply(b, ops, plan.labelSpan) : cost;
  const live = plan.liveLabels();
  const fresh = newOurs(plan.labelSpan);
  const t0 = performance.now();
  for (const l of live) fresh.addPoint(vec(plan.vectorAt[l] as number), l);
  const freshInsert = (performance.now() - t0) / live.length;
  const gt = truth(fresh, live);
  const ro = recallOf(a, gt);
  const rr = b ? recallOf(b, gt) : { recall: Number.NaN, lost: Number.NaN };
  const rf = recallOf(ours(fresh), gt);
  const r: Row = {
    round,
    lost: [ro.lost, rr.lost, rf.lost],
    ours: ro.recall,
    raw: rr.recall,
    fresh: rf.recall,
    cost,
    rawCost,
    freshInsert,
    shape: shapeOf(a, 'ours'),
    rawShape: b ? shapeOf(b, 'raw') : shapeOf(a, 'ours'),
    freshShape: shapeOf(ours(fresh), 'fresh'),
  };
  if (round === 0) {
    longAt = 2 * r.shape.linkLength;
    r.shape = shapeOf(a, 'ours');
    r.rawShape = r.shape;
    r.freshShape = r.shape;
  }
  rows.push(r);
  log(
    `round ${round}: recall ours ${r.ours.toFixed(4)} hnswlib ${r.raw.toFixed(4)} fresh ${r.fresh.toFixed(4)} (queries lost ${r.lost.join('/')}); ` +
      `ms/op ours update ${fmt(cost.update, 3)} reuse ${fmt(cost.reuse, 3)}, hnswlib update ${fmt(rawCost.update, 3)}, fresh insert ${fmt(freshInsert, 3)}; ` +
      `unreachable ${r.shape.unreachable}/${r.rawShape.unreachable}/${r.freshShape.unreachable} no-in-links ${r.shape.noInLinks}/${r.rawShape.noInLinks}/${r.freshShape.noInLinks} ` +
      `link length ${fmt(r.shape.linkLength, 2)}/${fmt(r.rawShape.linkLength, 2)}/${fmt(r.freshShape.linkLength, 2)} long links ${fmt(r.shape.longLinks, 2)}/${fmt(r.rawShape.longLinks, 2)}/${fmt(r.freshShape.longLinks, 2)}`,
  );
}
rmSync(tmp, { recursive: true, force: true });

const churned = rows.slice(1);
const last = rows[rows.length - 1] as Row;
const worst = (f: (r: Row) => number): number => Math.min(...churned.map(f));
const updRatio = median(churned.map((r) => r.cost.update / r.freshInsert));
const reuseRatio = median(churned.map((r) => r.cost.reuse / r.freshInsert));
const rawUpdRatio = median(churned.map((r) => r.rawCost.update / r.freshInsert));
const rawReuseRatio = median(churned.map((r) => r.rawCost.reuse / r.freshInsert));
const table = rows
  .map(
    (r) =>
      `| ${r.round === 0 ? 'load' : r.round} | ${r.ours.toFixed(4)} | ${b ? r.raw.toFixed(4) : '-'} | ${r.fresh.toFixed(4)} | ${r.round === 0 ? '-' : `${fmt(r.cost.update / r.freshInsert, 2)} / ${fmt(r.cost.reuse / r.freshInsert, 2)}`} | ` +
      `${r.shape.unreachable} / ${b ? r.rawShape.unreachable : '-'} / ${r.freshShape.unreachable} | ` +
      `${fmt(r.shape.longLinks, 2)} / ${b ? fmt(r.rawShape.longLinks, 2) : '-'} / ${fmt(r.freshShape.longLinks, 2)} | ${r.lost.map((x) => (Number.isNaN(x) ? '-' : x)).join(' / ')} |`,
  )
  .join('\n');
const body = `## Recall under churn (bench:drift)

${today()}, ${machine()}. ${name}, ${N} live points; ${ROUNDS} rounds each replacing half of them (a quarter
updated under the same id, a quarter deleted and their labels reused by as many new ids, newest freed
first, as Shoal's PointTable does); M=${M}, efConstruction=${EF_CONSTRUCTION}; recall@10 at ef ${EF} over
${queries.length / dim} queries against an exact scan of the live points. *ours*: Shoal's addon;
*hnswlib*: raw hnswlib-node driven by the same calls (hnswlib's updatePoint: the old path); *fresh*:
a graph built from the same live points in the same round (the anchor). Cost: ms per update / per
reused label over ms per insert of the fresh build, same round. Graph shape (ours / hnswlib / fresh):
live nodes unreachable from the entry point at level 0; long links per live node at level 0 (longer
than twice the first load's mean link: on clustered data, the links between clusters); queries that
found fewer than half of their 10 (a search that stayed in the wrong cluster).

| round | ours | hnswlib | fresh | cost ours (update / reuse) | unreachable | long links | queries lost |
|---|---|---|---|---|---|---|---|
${table}

After ${ROUNDS} rounds: ours ${last.ours.toFixed(4)}, hnswlib ${b ? last.raw.toFixed(4) : '-'}, fresh ${last.fresh.toFixed(4)}
(ours − fresh ${(last.ours - last.fresh).toFixed(4)}; lowest over the rounds ours ${worst((r) => r.ours).toFixed(4)}, hnswlib
${b ? worst((r) => r.raw).toFixed(4) : '-'}). Cost per operation against an insert (medians over the rounds):
ours update ${fmt(updRatio, 2)}x, reused label ${fmt(reuseRatio, 2)}x${b ? `; hnswlib update ${fmt(rawUpdRatio, 2)}x, reused label ${fmt(rawReuseRatio, 2)}x
(hnswlib-node's calls also copy each vector through a JavaScript array)` : ' (hnswlib-node not run: BENCH_RAW=0)'}.
`;
log(body);
if (process.env.BENCH_WRITE !== '0') writeSection(process.env.BENCH_SECTION ?? 'drift', body);
