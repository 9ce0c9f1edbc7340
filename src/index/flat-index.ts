/**
 * The exact index: every search scores every (matching) point. For small collections, and the
 * oracle that tests hold {@link HnswIndex} to.
 */
import { asFloat32, exactTopK, toHits } from './exact-search.js';
import { PointTable } from './point-table.js';
import type { Hit, IndexedFields, IndexPoint, Metric, SearchExplain, SearchPlan, SearchQuery, VectorIndex } from './types.js';
import { checkIndexOptions, checkPoints, checkQuery } from './validate.js';

export class FlatIndex implements VectorIndex {
  readonly dim: number;
  readonly metric: Metric;
  private readonly table: PointTable;

  /** `indexes`: the declared metadata indexes (PROTOCOL.md, collections.create). */
  constructor(opts: { dim: number; metric: Metric; indexes?: IndexedFields | undefined }) {
    checkIndexOptions(opts.dim, opts.metric);
    this.dim = opts.dim;
    this.metric = opts.metric;
    this.table = new PointTable(opts.dim, 64, opts.indexes);
  }

  upsert(points: readonly IndexPoint[]): void {
    checkPoints(points, this.dim, this.metric);
    for (const p of points) this.table.upsert(p);
  }

  delete(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) if (this.table.remove(id) !== undefined) n++;
    return n;
  }

  hide(ids: readonly string[]): number {
    return this.table.setHidden(ids, true);
  }

  unhide(ids: readonly string[]): number {
    return this.table.setHidden(ids, false);
  }

  get(id: string): IndexPoint | undefined {
    return this.table.point(id);
  }

  count(): number {
    return this.table.visible;
  }

  plan(_query: SearchQuery): SearchPlan {
    return 'exact';
  }

  search(query: SearchQuery): Hit[] {
    return this.searchExplained(query).hits;
  }

  searchExplained(query: SearchQuery): { hits: Hit[]; explain: SearchExplain } {
    checkQuery(query, this.dim, this.metric);
    const filter = query.filter && query.filter.op !== 'all' ? query.filter : undefined;
    const selected = filter ? this.table.selectIndexed(filter) : null;
    const labels = selected ? selected.labels : null;
    const scored = exactTopK(this.table, this.metric, asFloat32(query.vector), query.k, labels);
    const points = this.table.visible;
    const indexed = selected ? selected.indexed : true;
    return { hits: toHits(this.table, scored, query), explain: { plan: 'exact', matches: labels ? labels.length : points, points, indexed } };
  }
}
