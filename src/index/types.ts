/**
 * The vector index's vocabulary: metrics, points, queries, hits, and the {@link VectorIndex}
 * interface that {@link HnswIndex} and {@link FlatIndex} implement.
 */
import type { Filter } from './filter-parse.js';

/** PROTOCOL.md's metrics: `cosine` → 1 − cosine similarity, `l2` → squared Euclidean, `ip` → 1 − dot. */
export type Metric = 'cosine' | 'l2' | 'ip';
export const METRICS: readonly Metric[] = ['cosine', 'l2', 'ip'];

/** Point metadata: a JSON object. */
export type Metadata = Record<string, unknown>;

export interface IndexPoint {
  id: string;
  vector: Float32Array;
  metadata?: Metadata | undefined;
}

export interface SearchQuery {
  vector: Float32Array | number[];
  /** How many hits; more than the index holds returns what exists. */
  k: number;
  /** Per-query HNSW ef (candidate list size); at least k is used. */
  ef?: number | undefined;
  /** A filter parsed by {@link parseFilter}: only matching points are returned. */
  filter?: Filter | undefined;
  withVector?: boolean | undefined;
  withMetadata?: boolean | undefined;
}

/** One search result. Hits are sorted by ascending distance, ties by id in UTF-8 byte order. */
export interface Hit {
  id: string;
  distance: number;
  vector?: Float32Array;
  metadata?: Metadata;
}

/** How a search is answered: the graph, the graph with a filter bitmap, or an exact scan. */
export type SearchPlan = 'hnsw' | 'hnsw-filtered' | 'hnsw-postfilter' | 'exact';

/** What an index chose for one search (the search option `explain`, docs/protocol.md). */
export interface SearchExplain {
  plan: SearchPlan;
  /** Visible points that match the filter (all visible points without one). */
  matches: number;
  /** Visible points in the index. */
  points: number;
  /** The index's field indexes counted the matches without reading every point (true without a filter). */
  indexed: boolean;
  /**
   * Present (true) when the search first tried `hnsw-postfilter`, found fewer than k matches among
   * its candidates, and planned again on the true count: `plan` is the plan it answered with.
   */
  fellBack?: true;
}

/** The types a metadata field can be declared with at create (PROTOCOL.md, collections.create `indexes`). */
export type IndexedFieldType = 'keyword' | 'integer' | 'float' | 'bool';
export const INDEXED_FIELD_TYPES: readonly IndexedFieldType[] = ['keyword', 'integer', 'float', 'bool'];
/** Declared metadata indexes: dotted field name → type. */
export type IndexedFields = Readonly<Record<string, IndexedFieldType>>;

export interface HnswParams {
  /** Graph degree (hnswlib's M). */
  m: number;
  /** Candidate list size while inserting. */
  efConstruction: number;
  /** Default candidate list size while searching. */
  ef: number;
}

/**
 * A vector index over string ids. Synchronous: it blocks the thread it runs on, so Shoal runs it
 * inside a worker thread ({@link IndexHost}); unit tests and the worker call it directly.
 *
 * A point can be **hidden** (docs/resharding.md: a reshard's target hides what it imports until
 * the switch, a source hides what moved away at the switch): it stays stored (in an HNSW index
 * its node stays in the graph, and inserts link to it) but {@link search} of any plan, {@link get} and
 * {@link count} leave it out until it is unhidden. Upserting a hidden id replaces it and it stays
 * hidden; deleting it deletes it (a later upsert of the id is visible). The hidden set is part of
 * the index's state: a checkpoint keeps it.
 */
export interface VectorIndex {
  readonly dim: number;
  readonly metric: Metric;
  /** Inserts or replaces points, in order (a repeated id: the last one wins). A hidden id stays hidden. */
  upsert(points: readonly IndexPoint[]): void;
  /** Deletes points; returns how many of the ids existed (hidden ones included). */
  delete(ids: readonly string[]): number;
  /** Hides points; returns how many were visible and are now hidden (unknown and hidden ids change nothing). */
  hide(ids: readonly string[]): number;
  /** Unhides points; returns how many were hidden and are now visible (unknown and visible ids change nothing). */
  unhide(ids: readonly string[]): number;
  /**
   * The point, or undefined when it does not exist or is hidden. Its vector is the one given, except
   * in an {@link HnswIndex} over `cosine`, whose graph holds (and which returns) the unit vector;
   * the same for a search's `withVector`.
   */
  get(id: string): IndexPoint | undefined;
  /** Visible points (deleted and hidden ones are not counted). */
  count(): number;
  /** The nearest visible points. */
  search(query: SearchQuery): Hit[];
  /** Which path {@link search} takes for this query. */
  plan(query: SearchQuery): SearchPlan;
  /** {@link search}, and what it chose: the plan and how many points matched. */
  searchExplained(query: SearchQuery): { hits: Hit[]; explain: SearchExplain };
}
