/**
 * The HNSW index over hnswlib (Shoal's addon, native-graph.ts), with an exact path for selective filters and small
 * collections. String ids map to uint32 labels through a {@link PointTable}, which also keeps
 * the metadata (for filters). The graph alone holds the vectors (issue 21: no second copy beside
 * it): the exact plan scores them, and `get` and `withVector` read them from it. For `l2` and `ip`
 * those are the vectors as given; for `cosine` hnswlib holds them normalized, so this index returns
 * the unit vector, and a shard serves the vector as given from LMDB instead
 * (shard-state-machine.ts, `search`).
 *
 * Determinism: hnswlib draws each new point's level from a generator seeded at creation and NOT
 * saved in its file; a graph read back from a file starts a fresh generator. Two indexes that
 * saw the same upserts and deletes in the same order, and that were {@link HnswIndex.checkpoint
 * checkpointed} (written and read back) at the same points of that sequence, hold the same
 * graph and answer every query identically.
 *
 * Labels: a deleted point's label is marked deleted in hnswlib and put on the table's free list;
 * the table hands it to a later new id, and `addPoint` on it moves the node to the new vector and
 * clears the mark (the addon's own move, native/hnsw-move.h: its in-linkers are relinked, which
 * hnswlib's updatePoint does not do; docs/operations.md, Updates, deletes and recall) (the index is created without hnswlib's `allowReplaceDeleted`, so hnswlib never reuses
 * a label by itself).
 *
 * Hidden points live in the table alone; hnswlib does not know of them. Their nodes are in the
 * graph like any other, so later inserts link to them as usual, and a graph search leaves them
 * out with the table's visible-label bitset as hnswlib's `searchKnn` filter (only while some point is hidden). NOT with
 * `markDelete`: hnswlib's inserts never pick a marked node as a neighbour, and an insert whose
 * search meets only marked nodes walks the whole graph and links to the entry point alone, so a
 * reshard target that imports into an empty shard would build a star (recall@10 0.03 after
 * unhiding 10,000 points of 16 dims, and a build 6 times slower). Hiding and unhiding therefore
 * change nothing in hnswlib: the graph is the one an index that never hid anything would have.
 * A hidden label is never free: only a delete frees a label. The table file lists the hidden labels.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { CorruptDataError, InvalidArgumentError } from '../runtime/errors.js';
import { asFloat32, sortScored, toHits, type Scored } from './exact-search.js';
import { bitsetOf, newHnswGraph, type GraphHits, type HnswGraph } from './native-graph.js';
import { PointTable, type PointTableState } from './point-table.js';
import type { Hit, HnswParams, IndexedFields, IndexPoint, Metric, SearchExplain, SearchPlan, SearchQuery, VectorIndex } from './types.js';
import { checkIndexOptions, checkPoints, checkQuery } from './validate.js';
import { checkSums, writeSums } from './file-sums.js';
import { matches } from './filter-match.js';
import { planFiltered, POSTFILTER_MAX_CANDIDATES, type FilteredPlan } from './search-planner.js';

/**
 * A search scores exactly (instead of walking the graph) when the points it must consider times
 * the dimension stay within this many multiply-adds (~80 µs of scan). Measured on Fashion-MNIST
 * (784 dims, m 16): the scan costs ~1 µs a point, an unfiltered graph search at ef 16-128 costs
 * 100-230 µs from 500 to 3,000 points with recall@10 ≥ 0.993 (1.000 at ef 64), so the scan only
 * wins below ~100 such points. (It was 2²¹: up to 2,675 points of 784 dims, ~3 ms a search.)
 */
export const DEFAULT_EXACT_BUDGET = 1 << 16;
/**
 * A filtered search scores its m matches exactly when m² ≤ this × ef × n (n visible points), and
 * otherwise walks the graph with the matches as a bitset (both in the addon, native-graph.ts). The
 * scan costs ~m distances; the bitset search expands ~ef·n/m nodes of layer 0 before it holds ef
 * matches. Measured by bench/filter-plans.ts on Fashion-MNIST 60k × 784 (M 16), random metadata
 * independent of the vectors, on a quiet machine (2026-12-02), in units of the same run's
 * unfiltered search at ef 64 (259 µs, recall 0.9977); recall@10 over the matches in brackets:
 *
 * | selectivity | m | exact scan | bitset ef 16 | bitset ef 64 | post-filter, k' = 2k/s |
 * |---|---|---|---|---|---|
 * | 50% | 30,000 | 53.9 (1) | 1.32 (0.9930) | 1.98 (0.9997) | 0.62 (0.9953) |
 * | 10% | 6,000 | 17.5 (1) | 2.84 (0.9987) | 5.77 (1) | 1.59 (0.9987) |
 * | 1% | 600 | 2.97 (1) | 14.1 (1) | 40.4 (1) | 17.4 (0.9990) |
 * | 0.1% | 60 | 0.39 (1) | 71.3 (0.9971) | 201 (0.9971) | - |
 *
 * So the scan costs ~0.002-0.006 units a match (more per match when m is small: a fixed cost per
 * query) and the bitset search ~0.4-0.6 units per n/m at ef 64 (less than linear in ef): they
 * cross where m² ≈ 150·n at ef 64, about 5% of the points; this constant is ~150 / 64. (With
 * hnswlib-node's JavaScript callback per candidate it was 32: the graph search cost ~30 times the
 * scan per unit.) Post-filtering an unfiltered search of k' = 2k/s beats the bitset search 2-3
 * times between 10% and 50% in these figures but is not a plan yet (bench/RESULTS.md, native section).
 * A filter correlated with the vectors moves the crossing: bench:index's class filter at 10% of
 * 20k points ran the exact scan 3 times faster than the bitset search this constant chose.
 */
export const DEFAULT_FILTERED_GRAPH_COST = 2.5;
/** hnswlib's own default seed. */
export const DEFAULT_SEED = 100;
export const DEFAULT_INITIAL_CAPACITY = 1024;

export const GRAPH_FILE = 'graph.hnsw';
export const TABLE_FILE = 'table.v8';
/**
 * Format 3: the table file carries no vectors (the graph file holds them). Format 2 listed hidden
 * labels and carried every vector, format 1 (before hiding existed) had no hidden labels; both
 * still read, their vectors ignored.
 */
const FORMAT = 3;
const READABLE_FORMATS: readonly number[] = [1, 2, 3];

export interface HnswIndexOptions {
  dim: number;
  metric: Metric;
  hnsw: HnswParams;
  /** Seed of hnswlib's level generator (default {@link DEFAULT_SEED}). */
  seed?: number | undefined;
  initialCapacity?: number | undefined;
  /** See {@link DEFAULT_EXACT_BUDGET}. */
  exactBudget?: number | undefined;
  /** See {@link DEFAULT_FILTERED_GRAPH_COST}. With `exactBudget` 0 too, every search with more than k candidates walks the graph. */
  filteredGraphCost?: number | undefined;
  /** See {@link POSTFILTER_MAX_CANDIDATES}; 0: never post-filter (tests use it to reach the bitset plan). */
  postfilterMaxCandidates?: number | undefined;
  /**
   * The collection's declared metadata indexes (PROTOCOL.md, collections.create `indexes`). Not
   * in the index's files: the table's field indexes are rebuilt from its metadata on load, so
   * every open must pass them.
   */
  indexes?: IndexedFields | undefined;
}

interface TableFile {
  format: number;
  metric: Metric;
  table: PointTableState;
}

function checkParams(p: HnswParams): void {
  for (const [name, v, min, max] of [['m', p.m, 2, 128], ['efConstruction', p.efConstruction, 1, 10_000], ['ef', p.ef, 1, 10_000]] as const) {
    if (!Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(`hnsw.${name} must be an integer from ${min} to ${max}, got ${v}`);
  }
}

function writeDurably(path: string, data: Uint8Array): void {
  writeFileSync(path, data);
  fsyncFile(path);
}

export function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** What {@link HnswIndex.choose} decided for a search. */
interface Choice {
  plan: SearchPlan;
  /** The matches, when counting them listed them. */
  labels: number[] | null;
  matches: number;
  indexed: boolean;
  /** Candidates of the `hnsw-postfilter` plan. */
  candidates: number;
  /** The `hnsw-postfilter` plan was tried first and found fewer than k matches (SearchExplain.fellBack). */
  fellBack?: true;
}

function scoredOf(hits: GraphHits): Scored[] {
  const out: Scored[] = new Array<Scored>(hits.labels.length);
  for (let i = 0; i < out.length; i++) out[i] = { label: hits.labels[i] as number, distance: hits.distances[i] as number };
  return out;
}

export class HnswIndex implements VectorIndex {
  readonly dim: number;
  readonly metric: Metric;
  readonly params: HnswParams;
  private readonly exactBudget: number;
  private readonly filteredGraphCost: number;
  private readonly postfilterMaxCandidates: number;
  private graph: HnswGraph;
  private table: PointTable;
  /** What the latest {@link search} chose (read by {@link searchExplained} right after it). */
  private lastChoice: Choice | undefined;

  private constructor(opts: HnswIndexOptions, graph: HnswGraph, table: PointTable) {
    this.dim = opts.dim;
    this.metric = opts.metric;
    this.params = { ...opts.hnsw };
    this.exactBudget = opts.exactBudget ?? DEFAULT_EXACT_BUDGET;
    this.filteredGraphCost = opts.filteredGraphCost ?? DEFAULT_FILTERED_GRAPH_COST;
    this.postfilterMaxCandidates = opts.postfilterMaxCandidates ?? POSTFILTER_MAX_CANDIDATES;
    this.graph = graph;
    this.table = table;
  }

  static create(opts: HnswIndexOptions): HnswIndex {
    checkIndexOptions(opts.dim, opts.metric);
    checkParams(opts.hnsw);
    const capacity = opts.initialCapacity ?? DEFAULT_INITIAL_CAPACITY;
    const graph = newHnswGraph(opts.metric, opts.dim);
    graph.initIndex(capacity, opts.hnsw.m, opts.hnsw.efConstruction, opts.seed ?? DEFAULT_SEED);
    return new HnswIndex(opts, graph, new PointTable(opts.dim, capacity, opts.indexes, false));
  }

  /**
   * Opens an index saved by {@link save} in `dir`. Its files are checked against their
   * checksums first (file-sums.ts; a checkpoint written before checksums existed is read
   * unchecked); a file that fails the check, or that does not read back, is a CorruptDataError
   * naming it.
   */
  static load(dir: string, opts: HnswIndexOptions): HnswIndex {
    checkIndexOptions(opts.dim, opts.metric);
    checkParams(opts.hnsw);
    checkSums(dir, [GRAPH_FILE, TABLE_FILE]);
    const tablePath = join(dir, TABLE_FILE);
    let file: TableFile;
    try {
      file = deserialize(readFileSync(tablePath)) as TableFile;
    } catch (err) {
      throw new CorruptDataError(tablePath, `${tablePath} does not read back: ${(err as Error).message}`, { cause: err });
    }
    if (!READABLE_FORMATS.includes(file.format) || file.metric !== opts.metric || file.table.dim !== opts.dim) {
      throw new InvalidArgumentError(`index in ${dir} is format ${file.format}, ${file.metric}, dim ${file.table.dim}; expected format ${FORMAT}, ${opts.metric}, dim ${opts.dim}`);
    }
    const graphPath = join(dir, GRAPH_FILE);
    const graph = newHnswGraph(opts.metric, opts.dim);
    try {
      graph.readIndex(graphPath);
    } catch (err) {
      throw new CorruptDataError(graphPath, `${graphPath} does not read back: ${(err as Error).message}`, { cause: err });
    }
    return new HnswIndex(opts, graph, PointTable.fromState(file.table, opts.indexes, false));
  }

  upsert(points: readonly IndexPoint[]): void {
    checkPoints(points, this.dim, this.metric);
    for (const p of points) {
      const label = this.table.upsert(p);
      this.ensureCapacity(this.table.labelSpan);
      // An existing label (live, or deleted and now reused): the addon moves its node (native/hnsw-move.h).
      this.graph.addPoint(asFloat32(p.vector), label);
    }
  }

  delete(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) {
      const label = this.table.remove(id);
      if (label === undefined) continue;
      this.graph.markDelete(label);
      n++;
    }
    return n;
  }

  hide(ids: readonly string[]): number {
    return this.table.setHidden(ids, true);
  }

  unhide(ids: readonly string[]): number {
    return this.table.setHidden(ids, false);
  }

  /** The point, its vector read from the graph (normalized for `cosine`: see the class comment). */
  get(id: string): IndexPoint | undefined {
    const label = this.table.visibleLabelOf(id);
    return label === undefined ? undefined : { id, vector: this.graph.getPoint(label), metadata: this.table.metadataOf(label) };
  }

  count(): number {
    return this.table.visible;
  }

  plan(query: SearchQuery): SearchPlan {
    return this.choose(query).plan;
  }

  searchExplained(query: SearchQuery): { hits: Hit[]; explain: SearchExplain } {
    this.lastChoice = undefined;
    const hits = this.search(query);
    const chosen = this.lastChoice ?? this.choose(query);
    return { hits, explain: { plan: chosen.plan, matches: chosen.matches, points: this.table.visible, indexed: chosen.indexed, ...(chosen.fellBack ? { fellBack: true } : {}) } };
  }

  search(query: SearchQuery): Hit[] {
    checkQuery(query, this.dim, this.metric);
    const chosen = this.choose(query);
    const visible = this.table.visible;
    if (visible === 0 || chosen.matches === 0) {
      this.lastChoice = chosen;
      return [];
    }
    const q = asFloat32(query.vector);
    const ef = this.efOf(query);
    let scored: Scored[] | undefined;
    if (chosen.plan === 'hnsw-postfilter') {
      scored = this.postfiltered(q, query, chosen.candidates, ef);
      if (!scored && query.filter) {
        // Fewer than k of the candidates matched (the matches lie far from the query, or a guess
        // was too high): list the matches and plan again on their true count, without post-filtering.
        const { labels, indexed } = this.table.selectIndexed(query.filter);
        Object.assign(chosen, { labels, matches: labels.length, indexed }, this.planFor(query, labels.length, 0), { fellBack: true });
      }
    }
    this.lastChoice = chosen;
    if (scored) return toHits(this.table, scored, query, this.vectorOf);
    const filter = query.filter && query.filter.op !== 'all' ? query.filter : undefined;
    const labels = chosen.labels ?? (filter ? this.table.select(filter) : null);
    if (labels && labels.length === 0) return [];
    const k = Math.min(query.k, labels ? labels.length : visible);
    switch (chosen.plan) {
      case 'exact':
        // Ties at the k-th distance come back too: the order among them is by id (sortScored).
        scored = sortScored(this.table, scoredOf(this.graph.exactKnn(q, k, labels ? Uint32Array.from(labels) : this.visibleLabels()))).slice(0, k);
        break;
      case 'hnsw':
      case 'hnsw-filtered': {
        this.graph.setEf(Math.max(ef, k));
        // Filtered labels are visible ones only; hidden points are left out by the table's bitset.
        const allowed = labels ? bitsetOf(labels, this.table.labelSpan) : this.table.hiddenSize > 0 ? this.table.visibleBitset : undefined;
        scored = sortScored(this.table, scoredOf(this.graph.searchKnn(q, k, allowed)));
        break;
      }
      case 'hnsw-postfilter':
        throw new Error('unreachable: the post-filter plan answered or fell back above');
      default: {
        const never: never = chosen.plan;
        throw new Error(`unknown plan ${String(never)}`);
      }
    }
    return toHits(this.table, scored, query, this.vectorOf);
  }

  /**
   * The `hnsw-postfilter` plan: an unfiltered search (hidden points left out) for `candidates`
   * points at ef ≥ candidates, keeping the first k that match; undefined when fewer than k match.
   */
  private postfiltered(q: Float32Array, query: SearchQuery, candidates: number, ef: number): Scored[] | undefined {
    const filter = query.filter;
    if (!filter) return undefined;
    this.graph.setEf(Math.max(ef, candidates));
    const hits = this.graph.searchKnn(q, candidates, this.table.hiddenSize > 0 ? this.table.visibleBitset : undefined);
    const all = sortScored(this.table, scoredOf(hits));
    const kept: Scored[] = [];
    for (const s of all) {
      if (!matches(filter, this.table.metadataOf(s.label))) continue;
      kept.push(s);
      if (kept.length === query.k) break;
    }
    return kept.length < query.k ? undefined : kept;
  }

  /**
   * The plan for `query` (search-planner.ts) and how many visible points match it. The table's
   * field indexes count the matches where they know the count exactly; elsewhere the matches are
   * listed to count them, and `labels` carries the list. `indexed`: the count did not read every
   * point's metadata.
   */
  private choose(query: SearchQuery): Choice {
    const filter = query.filter && query.filter.op !== 'all' ? query.filter : undefined;
    const visible = this.table.visible;
    if (!filter) return { plan: visible * this.dim <= this.exactBudget ? 'exact' : 'hnsw', labels: null, matches: visible, indexed: true, candidates: 0 };
    const estimate = this.table.estimate(filter);
    const plan = (m: number) => this.planFor(query, m, this.postfilterMaxCandidates);
    if (estimate.exact) return { ...plan(estimate.matches), labels: null, matches: estimate.matches, indexed: true };
    // Only a bound: a guess from the indexes may be enough for the post-filter plan, which
    // checks its candidates one by one and falls back when it guessed too many matches.
    const guessed = this.table.guess(filter);
    const byGuess = guessed === undefined ? undefined : plan(guessed);
    if (byGuess?.plan === 'hnsw-postfilter') return { ...byGuess, labels: null, matches: guessed as number, indexed: true };
    const { labels, indexed } = this.table.selectIndexed(filter);
    const m = labels.length;
    return { ...plan(m), labels, matches: m, indexed };
  }

  /** A hit's vector: the graph's copy (see the class comment). */
  private readonly vectorOf = (label: number): Float32Array => this.graph.getPoint(label);

  /** The search's ef: the query's or the index's, at least k. */
  private efOf(query: SearchQuery): number {
    return Math.max(query.ef ?? this.params.ef, query.k);
  }

  private planFor(query: SearchQuery, matches: number, postfilterMaxCandidates: number): FilteredPlan {
    return planFiltered({ matches, visible: this.table.visible, dim: this.dim, k: query.k, ef: this.efOf(query), exactBudget: this.exactBudget, filteredGraphCost: this.filteredGraphCost, postfilterMaxCandidates });
  }

  private visibleLabels(): Uint32Array {
    const out = new Uint32Array(this.table.visible);
    let j = 0;
    for (let label = 0; label < this.table.labelSpan; label++) if (this.table.isVisible(label)) out[j++] = label;
    return out;
  }

  private ensureCapacity(labels: number): void {
    const max = this.graph.getMaxElements();
    if (labels > max) this.graph.resizeIndex(Math.max(labels, max * 2));
  }

  /**
   * Writes the graph and the table (hidden labels included) into `dir` (which must exist), each
   * file flushed to disk, then their checksums (`sums.json`, file-sums.ts).
   * The caller makes the directory appear atomically (write elsewhere, then rename).
   */
  save(dir: string): void {
    const graphPath = join(dir, GRAPH_FILE);
    this.graph.writeIndex(graphPath);
    fsyncFile(graphPath);
    const file: TableFile = { format: FORMAT, metric: this.metric, table: this.table.toState() };
    writeDurably(join(dir, TABLE_FILE), serialize(file));
    writeSums(dir, [GRAPH_FILE, TABLE_FILE]);
  }

  /**
   * Saves into a new directory `dir`, made to appear atomically and durably (written as
   * `dir.tmp`, flushed, renamed, parent flushed), then reads the graph back from it, so that this
   * index continues exactly as an index loaded from `dir` would (hnswlib's level generator
   * restarts on read). Every replica checkpoints at the same log indexes; that keeps their graphs
   * identical. An existing `dir` is replaced. A save that fails (ENOSPC) removes its partial
   * `dir.tmp`, so that it neither holds the space nor is taken for a checkpoint; `dir` and the
   * checkpoints before it are untouched.
   */
  checkpoint(dir: string): void {
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      this.save(tmp);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    fsyncFile(dirname(dir));
    this.graph.readIndex(join(dir, GRAPH_FILE));
  }
}
