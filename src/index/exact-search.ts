/**
 * Exact k-nearest search over a {@link PointTable}: the flat index's search. (The HNSW index scores
 * exactly in its addon, over the vectors its graph holds: native-graph.ts `exactKnn`.)
 */
import { distanceAt, norm } from './distance.js';
import type { PointTable } from './point-table.js';
import type { Hit, Metric, SearchQuery } from './types.js';
import { compareUtf8 } from './utf8.js';

export interface Scored {
  label: number;
  distance: number;
}

/** Sorts by ascending distance, ties by id in UTF-8 byte order (PROTOCOL.md). */
export function sortScored(table: PointTable, scored: Scored[]): Scored[] {
  return scored.sort((a, b) => a.distance - b.distance || compareUtf8(table.idOf(a.label), table.idOf(b.label)));
}

/** Keeps the k best scored seen so far, in order, without sorting everything. */
class TopK {
  readonly items: Scored[] = [];
  constructor(
    private readonly k: number,
    private readonly table: PointTable,
  ) {}

  private before(a: Scored, b: Scored): boolean {
    return a.distance < b.distance || (a.distance === b.distance && compareUtf8(this.table.idOf(a.label), this.table.idOf(b.label)) < 0);
  }

  offer(label: number, distance: number): void {
    const items = this.items;
    const s = { label, distance };
    if (items.length === this.k) {
      if (!this.before(s, items[items.length - 1] as Scored)) return;
      items.pop();
    }
    let i = items.length;
    while (i > 0 && this.before(s, items[i - 1] as Scored)) i--;
    items.splice(i, 0, s);
  }
}

/** Above this k, exact search sorts all candidates instead of keeping a running top k. */
const TOP_K_INSERTION_MAX = 64;

/** The k nearest of `labels` (all visible labels when null: hidden ones are skipped) to `q`, exactly; ties by id. */
export function exactTopK(table: PointTable, metric: Metric, q: Float32Array, k: number, labels: readonly number[] | null): Scored[] {
  const qNorm = norm(q);
  const data = table.vectors;
  const dim = table.dim;
  if (k <= TOP_K_INSERTION_MAX) {
    const top = new TopK(k, table);
    if (labels) for (const label of labels) top.offer(label, distanceAt(metric, q, qNorm, data, label * dim, table.normOf(label)));
    else for (let label = 0; label < table.labelSpan; label++) if (table.isVisible(label)) top.offer(label, distanceAt(metric, q, qNorm, data, label * dim, table.normOf(label)));
    return top.items;
  }
  const scored: Scored[] = [];
  const score = (label: number): void => {
    scored.push({ label, distance: distanceAt(metric, q, qNorm, data, label * dim, table.normOf(label)) });
  };
  if (labels) for (const label of labels) score(label);
  else for (let label = 0; label < table.labelSpan; label++) if (table.isVisible(label)) score(label);
  return sortScored(table, scored).slice(0, k);
}

/**
 * Builds the public hits for scored labels, with vector and metadata as asked. `vectorOf` gives a
 * label's vector, a copy the hit may keep (default: the table's, for a table that keeps vectors).
 */
export function toHits(table: PointTable, scored: readonly Scored[], query: SearchQuery, vectorOf: (label: number) => Float32Array = (label) => table.vectorOf(label).slice()): Hit[] {
  const withMetadata = query.withMetadata ?? true;
  return scored.map(({ label, distance }) => {
    const hit: Hit = { id: table.idOf(label), distance };
    if (query.withVector) hit.vector = vectorOf(label);
    if (withMetadata) {
      const m = table.metadataOf(label);
      if (m !== undefined) hit.metadata = m;
    }
    return hit;
  });
}

export function asFloat32(v: Float32Array | number[]): Float32Array {
  return v instanceof Float32Array ? v : Float32Array.from(v);
}
