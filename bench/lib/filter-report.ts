/** The `index-filter` section of bench/RESULTS.md, from the results of filter-measure.ts. */
import { execFileSync } from 'node:child_process';
import { meetsGoal, planText, QPS_GOAL, RECALL_GOAL, type FilterResult, type UnfilteredRung } from './filter-measure.js';
import { pctLabel } from './filter-workload.js';
import { fmt } from './stats.js';

export interface FilterReportInput {
  when: string;
  machine: string;
  n: number;
  dim: number;
  k: number;
  m: number;
  efConstruction: number;
  queries: number;
  unfilteredQueries: number;
  rounds: number;
  inFlight: number;
  metaSeed: number;
  efs: readonly number[];
  unfiltered: readonly (UnfilteredRung & { qps: number })[];
  results: readonly FilterResult[];
  /** BENCH_NOTE: a paragraph saying what code these figures are of. */
  note?: string | undefined;
}

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim() !== '';
    return `${head}${dirty ? ' (with uncommitted changes under src/)' : ''}`;
  } catch {
    return 'unknown';
  }
}

const pctOf = (share: number): string => `${fmt(100 * share, share < 0.01 ? 2 : 1)}%`;

export function filterSection(x: FilterReportInput): string {
  const rows = x.results
    .map((r) => {
      const sel = r.matched.min === r.matched.max ? pctOf(r.matched.mean) : `${pctOf(r.matched.mean)} (${pctOf(r.matched.min)}–${pctOf(r.matched.max)})`;
      const exactOnly = Object.keys(r.plans).length === 1 && r.plans.exact !== undefined;
      const u = r.unfiltered;
      const cb = r.callback;
      return `| ${r.row.shape} | ${pctLabel(r.row.selectivity)}: ${sel} | \`${r.row.describe}\` | ${planText(r.plans, x.queries)} | ${exactOnly ? `any (${r.ef})` : r.ef} | ${r.recall.toFixed(4)} | ${fmt(r.qps, 0)} | ${u.ef}: ${u.recall.toFixed(4)}${u.capped ? '*' : ''}, ${fmt(u.qps, 0)} | **${fmt(100 * r.ratio, 1)}%** | ${cb.ef}: ${cb.recall.toFixed(4)}, ${fmt(cb.qps, 1)} (${cb.queries} q) | ${meetsGoal(r) ? 'met' : 'not met'} |`;
    })
    .join('\n');
  const ladders = x.results.map((r) => `${r.row.id} ${r.ladder.map((l) => `${l.ef}: ${l.recall.toFixed(4)}`).join(', ')}`).join('; ');
  const met = x.results.filter(meetsGoal).length;
  const unf = x.unfiltered.map((u) => `ef ${u.ef}: ${u.recall.toFixed(4)}, ${fmt(u.qps, 0)} QPS`).join('; ');
  return `## Filtered search on Fashion-MNIST (\`npm run bench:index\`; this part alone: \`BENCH_ONLY=filter\`)

Run ${x.when} on ${x.machine}, code at ${commit()}. ${x.n} base vectors × ${x.dim} dims (L2), k=${x.k}, M=${x.m},
efConstruction=${x.efConstruction}; Shoal's \`WorkerIndex\` created with \`indexes: {tag: "keyword", num: "integer"}\`,
${x.inFlight} searches in flight.
${x.note ? `\n${x.note}\n` : ''}
Metadata independent of the vectors, drawn from seed ${x.metaSeed} (bench/lib/filter-workload.ts): \`tag\`, a keyword
whose values \`p50\`, \`p10\`, \`p1\`, \`p01\` are on exactly 50%, 10%, 1%, 0.1% of the points (\`rest\` on the others);
\`num\`, an integer, a shuffled permutation of 0 … n−1, so a range of width w matches exactly w points. ${x.queries} queries
per row (the first of the test set); each range query has its own start. \`$and\` rows pair a broad field with a narrower
one; their match count varies by query (the table gives the mean and range). At 50% the \`$and\`'s range spans the whole
field (no two shares below 1 multiply to 50%).

Ground truth: exact over each query's matches, computed by the bench from its own arrays (a scan in worker threads,
cached in bench/.cache/ under a hash of the match masks). Shoal picks its plan by itself (\`plan\` column: the
index's \`plan()\` for each query at the chosen ef); ef is the smallest of ${x.efs.join(', ')} whose recall@10 reaches
${RECALL_GOAL} (or the last). QPS: median of ${x.rounds} rounds, each a filtered pass then an unfiltered pass over the
same queries at the smallest ef whose unfiltered recall@10 (${x.unfilteredQueries} queries, this run) is at least the
row's (* none is: the best rung); ratio = filtered / unfiltered. The anchor: hnswlib-node's \`searchKnn\` with a
JavaScript predicate per candidate, same queries (the first 100 at 1%, 40 at 0.1%: it is slow), the smallest ef of
the same ladder reaching ${RECALL_GOAL}, one pass.

Unfiltered, this run: ${unf}.

| shape | selectivity: matched | filter | plan | ef | recall@10 | QPS | unfiltered at same recall (ef: recall, QPS) | ratio | hnswlib callback (ef: recall, QPS) | goal |
|---|---|---|---|---:|---:|---:|---|---:|---|---|
${rows}

Goal (issue 22): recall@10 ≥ ${RECALL_GOAL} and QPS ≥ ${fmt(100 * QPS_GOAL, 0)}% of unfiltered QPS at the same recall, at every row:
**met at ${met} of ${x.results.length} rows**.

Recall along the ef ladder (Shoal): ${ladders}.`;
}
