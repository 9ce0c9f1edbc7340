/**
 * The filtered-search workload of bench:index (issue 22): metadata drawn from a fixed seed,
 * independent of the vectors (a class label would correlate with them and flatter graph search),
 * and rows of filters at fixed selectivities in three shapes.
 *
 * - `tag`, a keyword: `p50`, `p10`, `p1`, `p01` on exactly 50%, 10%, 1% and 0.1% of the points
 *   (rounded), `rest` on the others, shuffled.
 * - `num`, an integer: a shuffled permutation of 0 … n−1 (uniform, each value once), so that a
 *   range `[lo, lo + w)` matches exactly w points wherever it starts.
 *
 * Each query of a range row takes its own `lo`, so no two queries share an answer by luck; an
 * `$and` of an equality (selectivity a) and a range (b) matches about a·b·n points, its exact
 * count varying from query to query (the fields are independent): the report gives the mean.
 */
import { seededRandom } from '../../src/raft/config.js';

export const TAGS = ['p50', 'p10', 'p1', 'p01', 'rest'] as const;
export type Tag = (typeof TAGS)[number];
const TAG_SHARE: Readonly<Record<Exclude<Tag, 'rest'>, number>> = { p50: 0.5, p10: 0.1, p1: 0.01, p01: 0.001 };

export interface FilterMetadata {
  n: number;
  /** Index into {@link TAGS}, per base row. */
  tag: Uint8Array;
  num: Int32Array;
}

function shuffle(xs: Uint8Array | Int32Array, rand: () => number): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = xs[i] as number;
    xs[i] = xs[j] as number;
    xs[j] = t;
  }
}

export function makeMetadata(n: number, seed: number): FilterMetadata {
  const rand = seededRandom(seed);
  const tag = new Uint8Array(n).fill(TAGS.indexOf('rest'));
  let at = 0;
  for (const [t, share] of Object.entries(TAG_SHARE)) {
    const count = Math.round(share * n);
    tag.fill(TAGS.indexOf(t as Tag), at, at + count);
    at += count;
  }
  shuffle(tag, rand);
  const num = Int32Array.from({ length: n }, (_, i) => i);
  shuffle(num, rand);
  return { n, tag, num };
}

/** The metadata object of base row i, as Shoal stores it. */
export function metadataOf(meta: FilterMetadata, i: number): { tag: Tag; num: number } {
  return { tag: TAGS[meta.tag[i] as number] as Tag, num: meta.num[i] as number };
}

export type Shape = 'equality' | 'range' | 'and';

export interface FilterRow {
  /** Short name, also the ground-truth cache name. */
  id: string;
  shape: Shape;
  /** The target share of points a filter of this row matches. */
  selectivity: number;
  /** How the row's filters are built, for the report. */
  describe: string;
  /** The filter of query q, in PROTOCOL.md's language. */
  filter(q: number): Record<string, unknown>;
  /** Whether base row i matches query q's filter: the bench's own predicate, for ground truth and hnswlib's callback. */
  match(q: number, i: number): boolean;
}

export const SELECTIVITIES = [0.5, 0.1, 0.01, 0.001] as const;
const TAG_OF: Readonly<Record<number, Tag>> = { 0.5: 'p50', 0.1: 'p10', 0.01: 'p1', 0.001: 'p01' };
/**
 * The `$and` rows: (equality share, range share) with product the row's selectivity, a broad
 * field beside a narrower one. At 50% no pair of shares below 1 exists among the tag's values,
 * so the range there spans the whole field: an `$and` whose second condition excludes nothing.
 */
const AND_PAIRS: Readonly<Record<number, readonly [number, number]>> = { 0.5: [0.5, 1], 0.1: [0.5, 0.2], 0.01: [0.1, 0.1], 0.001: [0.01, 0.1] };

export const pctLabel = (s: number): string => `${+(s * 100).toPrecision(3)}%`;

/** The 12 rows (3 shapes × 4 selectivities) for `queries` queries; range starts are drawn from `seed`. */
export function filterRows(meta: FilterMetadata, queries: number, seed: number): FilterRow[] {
  const { n, tag, num } = meta;
  const rand = seededRandom(seed);
  const ranges = (share: number): { lo: Int32Array; w: number } => {
    const w = Math.round(share * n);
    return { w, lo: Int32Array.from({ length: queries }, () => Math.floor(rand() * (n - w + 1))) };
  };
  const rows: FilterRow[] = [];
  for (const s of SELECTIVITIES) {
    const t = TAG_OF[s] as Tag;
    const code = TAGS.indexOf(t);
    rows.push({
      id: `eq-${t}`,
      shape: 'equality',
      selectivity: s,
      describe: `{tag: "${t}"}`,
      filter: () => ({ tag: t }),
      match: (_q, i) => tag[i] === code,
    });
    const r = ranges(s);
    rows.push({
      id: `range-${t}`,
      shape: 'range',
      selectivity: s,
      describe: `{num: {$gte: lo, $lt: lo + ${r.w}}}, lo per query`,
      filter: (q) => ({ num: { $gte: r.lo[q], $lt: (r.lo[q] as number) + r.w } }),
      match: (q, i) => (num[i] as number) >= (r.lo[q] as number) && (num[i] as number) < (r.lo[q] as number) + r.w,
    });
    const [a, b] = AND_PAIRS[s] as readonly [number, number];
    const at = TAG_OF[a] as Tag;
    const acode = TAGS.indexOf(at);
    const ar = ranges(b);
    rows.push({
      id: `and-${at}-range${Math.round(b * 1000)}pm`,
      shape: 'and',
      selectivity: s,
      describe: `{$and: [{tag: "${at}"}, {num: {$gte: lo, $lt: lo + ${ar.w}}}]} (${pctLabel(a)} × ${pctLabel(b)})`,
      filter: (q) => ({ $and: [{ tag: at }, { num: { $gte: ar.lo[q], $lt: (ar.lo[q] as number) + ar.w } }] }),
      match: (q, i) => tag[i] === acode && (num[i] as number) >= (ar.lo[q] as number) && (num[i] as number) < (ar.lo[q] as number) + ar.w,
    });
  }
  return rows;
}
