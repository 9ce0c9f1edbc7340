/**
 * bench:index's filtered part: for each {@link FilterRow}, Shoal's automatic plan at the smallest
 * ef of a ladder that reaches recall@10 ≥ {@link RECALL_GOAL}, its QPS against unfiltered search
 * at the same recall (measured in alternating rounds, on the same queries), and raw hnswlib-node's
 * callback filter (one JavaScript call per candidate) as the anchor.
 */
import type hnswlib from 'hnswlib-node';
import { parseFilter, type Hit, type SearchPlan, type SearchQuery, type WorkerIndex } from '../../src/index/mod.js';
import { groundTruth, recallAt } from './ground-truth.js';
import type { FilterRow } from './filter-workload.js';
import { median } from './stats.js';

export const RECALL_GOAL = 0.99;
/** Share of the unfiltered QPS at the same recall that issue 22 asks of every row. */
export const QPS_GOAL = 0.3;

/** One rung of the unfiltered ladder measured earlier in the same run (Shoal, all of its queries). */
export interface UnfilteredRung {
  ef: number;
  recall: number;
}

export interface FilterContext {
  ours: WorkerIndex;
  raw: hnswlib.HierarchicalNSW;
  dim: number;
  k: number;
  train: Float32Array;
  test: Float32Array;
  /** Name of the base set, for the ground-truth cache. */
  name: string;
  queries: number;
  efs: readonly number[];
  unfiltered: readonly UnfilteredRung[];
  rounds: number;
  inFlight: number;
}

export interface FilterResult {
  row: FilterRow;
  /** Mean, least and most matches of the row's filters, as a share of the base set. */
  matched: { mean: number; min: number; max: number };
  /** Recall at each ef tried, up to the chosen one. */
  ladder: { ef: number; recall: number }[];
  ef: number;
  /** How many of the row's queries took each plan, at the chosen ef. */
  plans: Partial<Record<SearchPlan, number>>;
  recall: number;
  qps: number;
  /** The unfiltered rung compared against; `capped` when no rung reached the row's recall (the best one is used). */
  unfiltered: { ef: number; recall: number; qps: number; capped: boolean };
  ratio: number;
  callback: { ef: number; recall: number; qps: number; queries: number };
}

const row = (data: Float32Array, dim: number, i: number): Float32Array => data.subarray(i * dim, (i + 1) * dim);

async function pipelined(ctx: FilterContext, query: (q: number) => SearchQuery): Promise<{ hits: Hit[][]; s: number }> {
  const hits: Hit[][] = new Array(ctx.queries);
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: ctx.inFlight }, async () => {
      while (next < ctx.queries) {
        const q = next++;
        hits[q] = await ctx.ours.search(query(q));
      }
    }),
  );
  return { hits, s: (performance.now() - t) / 1000 };
}

const labelsOf = (hits: Hit[][]): number[][] => hits.map((h) => h.map((x) => Number(x.id)));

/** Queries given to the callback filter: it visits ~ef/selectivity candidates, each through JavaScript. */
function callbackQueries(ctx: FilterContext, selectivity: number): number {
  return Math.min(ctx.queries, selectivity >= 0.1 ? ctx.queries : selectivity >= 0.01 ? 100 : 40);
}

export async function measureFilterRow(ctx: FilterContext, r: FilterRow): Promise<FilterResult> {
  const { dim, k } = ctx;
  const n = ctx.train.length / dim;
  const gt = await groundTruth({ name: `${ctx.name}-${r.id}`, dim, k, train: ctx.train, test: ctx.test, queries: ctx.queries, match: r.match });
  const counts = Array.from({ length: ctx.queries }, (_, q) => {
    let c = 0;
    for (let i = 0; i < n; i++) if (r.match(q, i)) c++;
    return c;
  });
  const filters = Array.from({ length: ctx.queries }, (_, q) => parseFilter(r.filter(q)));
  const filtered = (ef: number) => (q: number): SearchQuery => ({ vector: row(ctx.test, dim, q), k, ef, filter: filters[q], withMetadata: false });

  // The smallest ef of the ladder reaching the goal (ef changes nothing in an exact plan).
  const ladder: { ef: number; recall: number }[] = [];
  let ef = ctx.efs[0] as number;
  for (const e of ctx.efs) {
    ef = e;
    const pass = await pipelined(ctx, filtered(e));
    ladder.push({ ef: e, recall: recallAt(k, gt, labelsOf(pass.hits)) });
    if ((ladder.at(-1)?.recall ?? 0) >= RECALL_GOAL) break;
  }
  const recall = ladder.at(-1)?.recall ?? 0;
  const plans: Partial<Record<SearchPlan, number>> = {};
  for (let q = 0; q < ctx.queries; q++) {
    const p = await ctx.ours.plan(filtered(ef)(q));
    plans[p] = (plans[p] ?? 0) + 1;
  }

  // Unfiltered at the smallest ef whose recall is at least the row's (the best rung if none is).
  const best = ctx.unfiltered.reduce((a, b) => (b.recall > a.recall ? b : a));
  const rung = ctx.unfiltered.find((u) => u.recall >= recall) ?? best;
  const fQps: number[] = [];
  const uQps: number[] = [];
  for (let i = 0; i < ctx.rounds; i++) {
    fQps.push(ctx.queries / (await pipelined(ctx, filtered(ef))).s);
    uQps.push(ctx.queries / (await pipelined(ctx, (q) => ({ vector: row(ctx.test, dim, q), k, ef: rung.ef, withMetadata: false }))).s);
  }
  const qps = median(fQps);
  const unfilteredQps = median(uQps);

  // The anchor: hnswlib's callback filter, the same queries (fewer when selective), its own ladder.
  const cbN = callbackQueries(ctx, r.selectivity);
  const vectors = Array.from({ length: cbN }, (_, q) => Array.from(row(ctx.test, dim, q)));
  let callback = { ef: 0, recall: 0, qps: 0, queries: cbN };
  for (const e of ctx.efs) {
    ctx.raw.setEf(e);
    const found: number[][] = [];
    const t = performance.now();
    for (let q = 0; q < cbN; q++) found.push(ctx.raw.searchKnn(vectors[q] as number[], k, (i: number) => r.match(q, i)).neighbors);
    const s = (performance.now() - t) / 1000;
    callback = { ef: e, recall: recallAt(k, gt, found), qps: cbN / s, queries: cbN };
    if (callback.recall >= RECALL_GOAL) break;
  }

  return {
    row: r,
    matched: { mean: counts.reduce((a, b) => a + b, 0) / counts.length / n, min: Math.min(...counts) / n, max: Math.max(...counts) / n },
    ladder,
    ef,
    plans,
    recall,
    qps,
    unfiltered: { ef: rung.ef, recall: rung.recall, qps: unfilteredQps, capped: rung.recall < recall },
    ratio: qps / unfilteredQps,
    callback,
  };
}

export const planText = (plans: Partial<Record<SearchPlan, number>>, queries: number): string => {
  const entries = Object.entries(plans) as [SearchPlan, number][];
  return entries.length === 1 ? (entries[0]?.[0] ?? '') : entries.map(([p, c]) => `${p} ${c}/${queries}`).join(', ');
};

export function meetsGoal(r: FilterResult): boolean {
  return r.recall >= RECALL_GOAL && r.ratio >= QPS_GOAL;
}
