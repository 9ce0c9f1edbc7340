/** Exact k-nearest search over a {@link PointTable}: the flat index, and the selective-filter path of the HNSW index. */
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

/** `labels` ordered by their ids (UTF-16 code units: close to the store's byte order, which is all it needs). */
function byId(table: PointTable, labels: readonly number[]): number[] {
  const pairs = labels.map((l) => [table.idOf(l), l] as const);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return pairs.map((p) => p[1]);
}

/** Above this k, exact search sorts all candidates instead of keeping a running top k. */
const TOP_K_INSERTION_MAX = 64;

/**
 * The k nearest of `labels` (all visible labels when null: hidden ones are skipped) to `q`, exactly; ties by id.
 * A table that reads its vectors from a store must be inside {@link PointTable.beginRead}; the k
 * it returns have their stored values' checksums checked (the others are scanned unchecked: a
 * checksum per candidate would double the scan; the shard checks every value when it opens).
 */
export function exactTopK(table: PointTable, metric: Metric, q: Float32Array, k: number, labels: readonly number[] | null): Scored[] {
  const qNorm = norm(q);
  const own = table.vectors;
  // read from a store in key (id) order: consecutive reads then share the b-tree pages of their
  // path, and the scan costs about half (measured); the result does not depend on the order
  if (!own && labels && labels.length > 1) labels = byId(table, labels);
  const dim = table.dim;
  const dist = own
    ? (label: number): number => distanceAt(metric, q, qNorm, own, label * dim, table.normOf(label))
    : (label: number): number => distanceAt(metric, q, qNorm, table.vectorOf(label), 0, table.normOf(label));
  let out: Scored[];
  if (k <= TOP_K_INSERTION_MAX) {
    const top = new TopK(k, table);
    if (labels) for (const label of labels) top.offer(label, dist(label));
    else for (let label = 0; label < table.labelSpan; label++) if (table.isVisible(label)) top.offer(label, dist(label));
    out = top.items;
  } else {
    const scored: Scored[] = [];
    const score = (label: number): void => {
      scored.push({ label, distance: dist(label) });
    };
    if (labels) for (const label of labels) score(label);
    else for (let label = 0; label < table.labelSpan; label++) if (table.isVisible(label)) score(label);
    out = sortScored(table, scored).slice(0, k);
  }
  if (!own) for (const s of out) table.vectorOf(s.label, true);
  return out;
}

/**
 * Builds the public hits for scored labels, with vector and metadata as asked. With `withVector`,
 * a table that reads its vectors from a store must be inside {@link PointTable.beginRead}.
 */
export function toHits(table: PointTable, scored: readonly Scored[], query: SearchQuery): Hit[] {
  const withMetadata = query.withMetadata ?? true;
  return scored.map(({ label, distance }) => {
    const hit: Hit = { id: table.idOf(label), distance };
    if (query.withVector) hit.vector = table.vectorOf(label, true).slice();
    if (withMetadata) {
      const m = table.metadataOf(label);
      if (m !== undefined) hit.metadata = m;
    }
    return hit;
  });
}

/**
 * A plain number array for hnswlib-node (which takes nothing else). A counted loop: ten times
 * faster than `Array.from` on a typed array, which goes through the iterator protocol.
 */
export function toNumberArray(v: ArrayLike<number>): number[] {
  const n = v.length;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = v[i] as number;
  return out;
}

export function asFloat32(v: Float32Array | number[]): Float32Array {
  return v instanceof Float32Array ? v : Float32Array.from(v);
}
