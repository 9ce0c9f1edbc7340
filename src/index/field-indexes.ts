/**
 * What a {@link PointTable} knows about its points' metadata, to find and count the points a
 * filter matches without reading every point:
 *
 * - **postings** (field value → labels) of every scalar at a path of at most
 *   {@link POSTING_MAX_DEPTH} fields (array elements included; strings of at most
 *   {@link POSTING_MAX_STRING} UTF-16 units), declared or not: `$eq` and `$in` with such values;
 * - a **sorted numeric index** ({@link SortedNumbers}) of each field the collection declares
 *   `integer` or `float` (PROTOCOL.md, collections.create `indexes`): `$gt`, `$gte`, `$lt`, `$lte`
 *   with a number.
 *
 * Both hold hidden points too (the table leaves them out). Their answers are exactly those of
 * {@link matches} (filter-match.ts): equality with a non-null scalar holds when the field is that
 * scalar or an array containing it, which is what the postings of the field hold; a comparison
 * with a number holds when the field is a number or an array with a number that satisfies it
 * (comparisons across types match nothing), which is what the numeric index holds.
 */
import type { CompareOp, Filter, Scalar } from './filter-parse.js';
import { matches, resolvePath } from './filter-match.js';
import { SortedNumbers, type Bound } from './sorted-numbers.js';
import type { IndexedFields, Metadata } from './types.js';

/** Paths deeper than this, and strings longer than this, are not put in postings (filters still match them by scan). */
export const POSTING_MAX_DEPTH = 4;
export const POSTING_MAX_STRING = 256;
/**
 * {@link FieldIndexes.estimate} of an `$and` counts its matches exactly (checking each candidate
 * of its smallest indexed part against the whole filter) when that part has at most this many.
 */
export const ESTIMATE_INTERSECT_MAX = 4096;
/**
 * Checking the candidates of an `$and`'s smallest part against another part: by that part's
 * index (a posting set's `has`; a bitset of its labels for any other exact part whose labels
 * number at most this many times the candidates) rather than by reading each candidate's
 * metadata, which costs ~100-200 ns a candidate and part against a few ns a label.
 */
export const AND_BITSET_MAX_RATIO = 8;

/** A count of matching visible points: never below the true count, and equal to it when `exact`. */
export interface Estimate {
  matches: number;
  exact: boolean;
}

/** What the indexes need of the table: its visible points and their metadata. */
export interface TableView {
  readonly visible: number;
  readonly hiddenSize: number;
  /** Labels are below this. */
  readonly labelSpan: number;
  isVisible(label: number): boolean;
  metadataOf(label: number): Metadata | undefined;
}

export function postingKey(v: Scalar): string | undefined {
  switch (typeof v) {
    case 'string':
      return v.length <= POSTING_MAX_STRING ? `s${v}` : undefined;
    case 'number':
      return `n${v === 0 ? 0 : v}`;
    case 'boolean':
      return v ? 'b1' : 'b0';
    default:
      return undefined;
  }
}

/**
 * Calls `fn(field, key)` for every posted (dotted field, scalar) pair of `metadata`, array
 * elements included, and `multi(field)` for each array with two distinct posted keys or more.
 */
function eachPosting(metadata: Metadata | undefined, fn: (field: string, key: string) => void, multi: (field: string) => void, prefix = '', depth = 1): void {
  if (!metadata) return;
  for (const [k, v] of Object.entries(metadata)) {
    // A key with a dot in it cannot be named by a filter (dots reach into nested objects).
    if (k.includes('.')) continue;
    // By depth, not by the prefix: an empty key ('') at the top is a prefix too (no filter can
    // name it, but its children must not be posted as top-level fields).
    const field = depth === 1 ? k : `${prefix}.${k}`;
    if (Array.isArray(v)) {
      let first: string | undefined;
      let several = false;
      for (const e of v) {
        const key = postingKey(e as Scalar);
        if (key === undefined) continue;
        fn(field, key);
        if (first === undefined) first = key;
        else if (key !== first) several = true;
      }
      if (several) multi(field);
    } else if (typeof v === 'object' && v !== null) {
      if (depth < POSTING_MAX_DEPTH) eachPosting(v as Metadata, fn, multi, field, depth + 1);
    } else {
      const key = postingKey(v as Scalar);
      if (key !== undefined) fn(field, key);
    }
  }
}

/** The distinct numbers (not NaN; -0 as 0) at `path`: the field itself, or the elements of an array there. */
function numbersAt(metadata: Metadata | undefined, path: readonly string[]): number[] {
  const v = resolvePath(metadata, path);
  if (typeof v === 'number') return Number.isNaN(v) ? [] : [v === 0 ? 0 : v];
  if (!Array.isArray(v)) return [];
  const out: number[] = [];
  for (const e of v) {
    if (typeof e !== 'number' || Number.isNaN(e)) continue;
    const n = e === 0 ? 0 : e;
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** A part of an `$and` (FieldIndexes.andParts): what it counts, its candidates, and the children of the `$and` it stands for. */
interface AndPart {
  e: Estimate;
  candidates: () => Candidates | null;
  filters: Filter[];
}

/** Of two bounds on one side, the one that admits less (`dir` 1: lower bounds, -1: upper). */
function tighter(a: Bound | undefined, b: Bound, dir: 1 | -1): Bound {
  if (!a) return b;
  if (a.value !== b.value) return (b.value - a.value) * dir > 0 ? b : a;
  // equal values: the strict one admits less
  return a.op === 'gt' || a.op === 'lt' ? a : b;
}

/** How many labels candidates hold (an iterable of another kind is not read: taken as many). */
function sizeOf(labels: Iterable<number>): number {
  if (labels instanceof Set) return labels.size;
  if (Array.isArray(labels)) return labels.length;
  return Infinity;
}

interface NumericField {
  path: string[];
  sorted: SortedNumbers;
  /** Labels with more than one number in the field: the index's pair count then overcounts labels. */
  multi: number;
}

/** Candidate labels of a filter: a superset of its matches among stored points, or exactly them when `exact`. */
export interface Candidates {
  labels: Iterable<number>;
  exact: boolean;
  /**
   * When not `exact`: whether a candidate matches the filter (hidden ones aside), told from the
   * indexes where they can; absent, read each candidate's metadata against the whole filter.
   */
  check?: (label: number) => boolean;
}

export class FieldIndexes {
  private readonly postings = new Map<string, Map<string, Set<number>>>();
  /** Per field: labels whose array there holds two distinct posted keys or more. */
  private readonly multiPosted = new Map<string, number>();
  private readonly numeric = new Map<string, NumericField>();

  constructor(
    private readonly table: TableView,
    declared: IndexedFields = {},
  ) {
    for (const [field, type] of Object.entries(declared)) {
      if (type === 'integer' || type === 'float') this.numeric.set(field, { path: field.split('.'), sorted: new SortedNumbers(), multi: 0 });
    }
  }

  /** Indexes the metadata of `label`. */
  add(label: number, metadata: Metadata | undefined): void {
    eachPosting(
      metadata,
      (field, key) => {
        let byValue = this.postings.get(field);
        if (!byValue) this.postings.set(field, (byValue = new Map()));
        let set = byValue.get(key);
        if (!set) byValue.set(key, (set = new Set()));
        set.add(label);
      },
      (field) => this.multiPosted.set(field, (this.multiPosted.get(field) ?? 0) + 1),
    );
    for (const f of this.numeric.values()) {
      const values = numbersAt(metadata, f.path);
      for (const v of values) f.sorted.add(v, label);
      if (values.length > 1) f.multi++;
    }
  }

  /** Forgets `label`, indexed with `metadata` (the metadata it was added with). */
  remove(label: number, metadata: Metadata | undefined): void {
    eachPosting(
      metadata,
      (field, key) => {
        const byValue = this.postings.get(field);
        const set = byValue?.get(key);
        if (!set) return;
        set.delete(label);
        if (set.size === 0) byValue?.delete(key);
        if (byValue?.size === 0) this.postings.delete(field);
      },
      (field) => {
        const n = (this.multiPosted.get(field) ?? 0) - 1;
        if (n > 0) this.multiPosted.set(field, n);
        else this.multiPosted.delete(field);
      },
    );
    for (const f of this.numeric.values()) {
      const values = numbersAt(metadata, f.path);
      for (const v of values) f.sorted.remove(v, label);
      if (values.length > 1) f.multi--;
    }
  }

  /**
   * How many visible points match `filter`, from the indexes alone where they answer (an `$and`
   * is at most its smallest part, and counted exactly when that part is indexed and small), else
   * all visible points, not exact. Never below the true count.
   */
  estimate(filter: Filter): Estimate {
    const visible = this.table.visible;
    const e = this.estimateOf(filter);
    return e.matches >= visible ? { matches: visible, exact: e.exact && e.matches === visible } : e;
  }

  /**
   * How many visible points probably match: the estimate where it is exact; for an `$and`, the
   * visible points times the product of its parts' shares (as if they were independent), never
   * above the estimate; undefined when the indexes know nothing of it (the bound is every point).
   * For planning only: the post-filter plan falls back when it guessed wrong.
   */
  guess(filter: Filter): number | undefined {
    const e = this.estimate(filter);
    const visible = this.table.visible;
    if (e.exact || visible === 0) return e.matches;
    if (filter.op !== 'and') return e.matches < visible ? e.matches : undefined;
    let share = 1;
    let known = false;
    for (const part of this.andParts(filter)) {
      if (part.e.matches >= visible && !part.e.exact) continue;
      known = true;
      share *= Math.min(1, part.e.matches / visible);
    }
    return known ? Math.min(e.matches, Math.ceil(share * visible)) : undefined;
  }

  private estimateOf(filter: Filter): Estimate {
    const visible = this.table.visible;
    const unknown: Estimate = { matches: visible, exact: false };
    // Posted and numeric indexes count hidden points too: exact only while none is hidden.
    const noneHidden = this.table.hiddenSize === 0;
    switch (filter.op) {
      case 'all':
        return { matches: visible, exact: true };
      case 'eq': {
        const set = this.posting(filter.field, filter.path, filter.value);
        if (set === null) return unknown;
        return { matches: set.size, exact: noneHidden || set.size === 0 };
      }
      case 'in': {
        let sum = 0;
        const seen = new Set<ReadonlySet<number>>();
        for (const v of filter.values) {
          const set = this.posting(filter.field, filter.path, v);
          if (set === null) return unknown;
          // The same value twice (or 0 and -0) is one set.
          if (seen.has(set)) continue;
          seen.add(set);
          sum += set.size;
        }
        // A point is in two of the sets only when its array holds two of the values.
        const disjoint = seen.size <= 1 || !this.multiPosted.has(filter.field);
        return { matches: sum, exact: sum === 0 || (noneHidden && disjoint) };
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte': {
        const f = this.numericOf(filter);
        if (!f) return unknown;
        const n = f.sorted.count(filter.op, filter.value as number);
        return { matches: n, exact: n === 0 || (noneHidden && f.multi === 0) };
      }
      case 'ne':
        return this.complement(this.estimateOf({ op: 'eq', field: filter.field, path: filter.path, value: filter.value }));
      case 'nin':
        return this.complement(this.estimateOf({ op: 'in', field: filter.field, path: filter.path, values: filter.values }));
      case 'not':
        return this.complement(this.estimateOf(filter.child));
      case 'or': {
        let sum = 0;
        let nonzero = 0;
        let exact = true;
        for (const c of filter.children) {
          const e = this.estimateOf(c);
          sum += e.matches;
          exact &&= e.exact;
          if (e.matches > 0) nonzero++;
        }
        return { matches: Math.min(sum, visible), exact: exact && nonzero <= 1 };
      }
      case 'and':
        return this.estimateAnd(filter);
      case 'exists':
        return unknown;
      default: {
        const never: never = filter;
        throw new Error(`unknown filter op ${JSON.stringify(never)}`);
      }
    }
  }

  private complement(e: Estimate): Estimate {
    const visible = this.table.visible;
    return e.exact ? { matches: Math.max(0, visible - e.matches), exact: true } : { matches: visible, exact: false };
  }

  private estimateAnd(filter: Filter & { op: 'and' }): Estimate {
    const parts = this.andParts(filter);
    const smallest = parts[0];
    if (!smallest) return { matches: this.table.visible, exact: true };
    if (parts.length === 1 || (smallest.e.exact && smallest.e.matches === 0)) return smallest.e;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as AndPart;
      if (part.e.matches > ESTIMATE_INTERSECT_MAX) break;
      const cands = part.candidates();
      if (!cands) continue;
      const check = this.andCheck(parts, i, cands);
      let n = 0;
      for (const label of cands.labels) if (this.table.isVisible(label) && check(label)) n++;
      return { matches: n, exact: true };
    }
    return { matches: smallest.e.matches, exact: false };
  }

  /**
   * The parts of an `$and`, smallest estimate first: its children, except that comparisons
   * (`$gt`, `$gte`, `$lt`, `$lte` with a number) on one declared numeric field holding one number
   * a point become one interval, counted and listed from the sorted index at once (without it,
   * `{"year": {"$gte": a, "$lt": b}}` would read the larger of its two half-lines point by point).
   */
  private andParts(filter: Filter & { op: 'and' }): AndPart[] {
    const noneHidden = this.table.hiddenSize === 0;
    const bounds = new Map<string, { f: NumericField; lower: Bound | undefined; upper: Bound | undefined; children: Filter[] }>();
    const rest: Filter[] = [];
    for (const c of filter.children) {
      const f = this.numericOf(c);
      if (!f || f.multi !== 0 || (c.op !== 'gt' && c.op !== 'gte' && c.op !== 'lt' && c.op !== 'lte')) {
        rest.push(c);
        continue;
      }
      const b = bounds.get(c.field) ?? { f, lower: undefined, upper: undefined, children: [] };
      b.children.push(c);
      const bound: Bound = { op: c.op, value: c.value as number };
      if (c.op === 'gt' || c.op === 'gte') b.lower = tighter(b.lower, bound, 1);
      else b.upper = tighter(b.upper, bound, -1);
      bounds.set(c.field, b);
    }
    const parts: AndPart[] = rest.map((c) => ({ e: this.estimateOf(c), candidates: () => this.candidates(c), filters: [c] }));
    for (const { f, lower, upper, children } of bounds.values()) {
      const lo: Bound = lower ?? { op: 'gte', value: -Infinity };
      const hi: Bound = upper ?? { op: 'lte', value: Infinity };
      const n = f.sorted.countBetween(lo, hi);
      parts.push({
        e: { matches: n, exact: n === 0 || noneHidden },
        candidates: () => {
          const labels: number[] = [];
          f.sorted.forEachBetween(lo, hi, (l) => labels.push(l));
          return { labels, exact: true };
        },
        filters: children,
      });
    }
    return parts.sort((a, b) => a.e.matches - b.e.matches);
  }

  /**
   * Labels (hidden ones included) that may match `filter` — exactly its matches among stored
   * points when `exact` — or null when the indexes cannot narrow it. An `$and` takes the
   * candidates of its part with the smallest {@link estimate} that has any, so a broad part is
   * never read; the caller checks those against the whole filter.
   */
  candidates(filter: Filter): Candidates | null {
    switch (filter.op) {
      case 'eq': {
        const set = this.posting(filter.field, filter.path, filter.value);
        return set === null ? null : { labels: set, exact: true };
      }
      case 'in': {
        const sets: ReadonlySet<number>[] = [];
        for (const v of filter.values) {
          const set = this.posting(filter.field, filter.path, v);
          if (set === null) return null;
          sets.push(set);
        }
        if (sets.length === 1) return { labels: sets[0] as ReadonlySet<number>, exact: true };
        const labels = new Set<number>();
        for (const s of sets) for (const l of s) labels.add(l);
        return { labels, exact: true };
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte': {
        const f = this.numericOf(filter);
        if (!f) return null;
        return { labels: this.range(f, filter.op, filter.value as number), exact: true };
      }
      case 'and': {
        const parts = this.andParts(filter);
        for (let i = 0; i < parts.length; i++) {
          const found = (parts[i] as AndPart).candidates();
          if (!found) continue;
          if (parts.length === 1) return found;
          return { labels: found.labels, exact: false, check: this.andCheck(parts, i, found) };
        }
        return null;
      }
      case 'or': {
        const labels = new Set<number>();
        let exact = true;
        for (const c of filter.children) {
          const s = this.candidates(c);
          if (s === null) return null;
          for (const l of s.labels) labels.add(l);
          exact &&= s.exact;
        }
        return { labels, exact };
      }
      default:
        return null;
    }
  }

  /**
   * Whether a candidate of `parts[chosen]` (`found`) matches the whole `$and`: the other parts
   * tested by their indexes where that is cheap ({@link AND_BITSET_MAX_RATIO}), then the rest
   * (and the chosen part itself when its candidates are a superset) on the candidate's metadata.
   */
  private andCheck(parts: readonly AndPart[], chosen: number, found: Candidates): (label: number) => boolean {
    const tests: ((label: number) => boolean)[] = [];
    const byMetadata: Filter[] = [];
    const own = parts[chosen] as AndPart;
    if (!found.exact) {
      if (found.check) tests.push(found.check);
      else byMetadata.push(...own.filters);
    }
    const size = sizeOf(found.labels);
    for (let i = 0; i < parts.length; i++) {
      if (i === chosen) continue;
      const part = parts[i] as AndPart;
      const test = this.membership(part, size);
      if (test) tests.push(test);
      else byMetadata.push(...part.filters);
    }
    const table = this.table;
    const m = byMetadata.length;
    return (label) => {
      for (const t of tests) if (!t(label)) return false;
      if (m === 0) return true;
      const md = table.metadataOf(label);
      for (let k = 0; k < m; k++) if (!matches(byMetadata[k] as Filter, md)) return false;
      return true;
    };
  }

  /** A test of membership in `part`'s matches from its index, or undefined when its labels are not exact or too many to gather for `candidates()` candidates. */
  private membership(part: AndPart, candidates: number): ((label: number) => boolean) | undefined {
    if (part.e.matches > AND_BITSET_MAX_RATIO * candidates) {
      // Too many to gather; a posting set still answers at once.
      if (part.filters.length !== 1 || (part.filters[0] as Filter).op !== 'eq') return undefined;
    }
    const found = part.candidates();
    if (!found || !found.exact) return undefined;
    const labels = found.labels;
    if (labels instanceof Set) return (label) => labels.has(label);
    const bits = new Uint32Array((this.table.labelSpan + 31) >>> 5);
    for (const l of labels) bits[l >>> 5] = (bits[l >>> 5] as number) | (1 << (l & 31));
    return (label) => (((bits[label >>> 5] as number) >>> (label & 31)) & 1) === 1;
  }

  /** The declared numeric index a comparison with a number reads, if any. */
  private numericOf(filter: Filter): NumericField | undefined {
    const compare = filter.op === 'gt' || filter.op === 'gte' || filter.op === 'lt' || filter.op === 'lte';
    return compare && typeof filter.value === 'number' ? this.numeric.get(filter.field) : undefined;
  }

  /** The posting set of `field` = `value` (empty when none), or null when postings do not answer it. */
  private posting(field: string, path: readonly string[], value: Scalar): ReadonlySet<number> | null {
    const key = postingKey(value);
    if (key === undefined || path.length > POSTING_MAX_DEPTH) return null;
    return this.postings.get(field)?.get(key) ?? EMPTY;
  }

  private range(f: NumericField, op: CompareOp, value: number): Iterable<number> {
    if (f.multi === 0) {
      const out: number[] = [];
      f.sorted.forEach(op, value, (l) => out.push(l));
      return out;
    }
    const out = new Set<number>();
    f.sorted.forEach(op, value, (l) => out.add(l));
    return out;
  }
}

const EMPTY: ReadonlySet<number> = new Set<number>();
