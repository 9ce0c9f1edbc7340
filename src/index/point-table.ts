/**
 * The points of one index by uint32 label: id ↔ label, metadata, optionally the vectors (as given,
 * float32) and their norms, and field indexes (field-indexes.ts: postings, and sorted numbers for declared
 * numeric fields) so that a selective filter finds and counts its points without scanning. Labels of deleted points are reused, newest freed first, so memory follows
 * the live count. Everything here is deterministic: the same upserts and deletes in the same
 * order give the same labels on every replica.
 *
 * A stored point can be hidden (a reshard's imports before the switch, and what moved away after
 * it: docs/resharding.md): it keeps its label, vector, metadata and index entries, but {@link select},
 * {@link point}, {@link isVisible} and {@link visible} leave it out. Only {@link remove} frees a
 * label, and it unhides it first, so a hidden point's label is never in the free list.
 */
import type { Filter } from './filter-parse.js';
import { matches } from './filter-match.js';
import { norm } from './distance.js';
import { FieldIndexes, type Estimate } from './field-indexes.js';
import type { IndexedFields, IndexPoint, Metadata } from './types.js';

/** The serialisable state of a table (see {@link PointTable.toState}). */
export interface PointTableState {
  dim: number;
  next: number;
  ids: (string | null)[];
  free: Uint32Array;
  /**
   * The vectors of labels `0 .. next`, in a table that keeps them (a {@link FlatIndex}'s). Absent
   * in an HNSW index's table since format 3: the graph holds its vectors (issue 21); older table
   * files carry them, and a table without vectors ignores them.
   */
  vectors?: Float32Array | undefined;
  metadata: (Metadata | null)[];
  /** Labels of hidden points, ascending. Absent in states written before hiding existed: none. */
  hidden?: Uint32Array | undefined;
}

export class PointTable {
  readonly dim: number;
  private ids: (string | null)[] = [];
  private readonly byId = new Map<string, number>();
  private free: number[] = [];
  private next = 0;
  /** The vectors (empty when the table keeps none: {@link keepsVectors}). */
  private data: Float32Array;
  private norms: Float64Array;
  /** Whether {@link vectors}, {@link vectorOf} and {@link normOf} are kept. */
  readonly keepsVectors: boolean;
  private meta: (Metadata | null)[] = [];
  private readonly fields: FieldIndexes;
  private live = 0;
  /** 1 at the label of every hidden point. */
  private hiddenAt: Uint8Array;
  private hiddenCount = 0;
  /** Bit (label & 7) of byte (label >> 3) set iff the label is stored and visible: the graph search's filter while some point is hidden. */
  private visibleBits: Uint8Array;

  /**
   * `indexes`: the metadata fields the collection declares (PROTOCOL.md, collections.create).
   * `keepVectors`: keep a float32 copy of every vector and its norm (a flat index scores them);
   * false for an index whose graph holds the vectors: then {@link point} has no vector and
   * {@link vectors}, {@link vectorOf} and {@link normOf} throw.
   */
  constructor(dim: number, initialCapacity = 1024, indexes: IndexedFields = {}, keepVectors = true) {
    this.dim = dim;
    this.keepsVectors = keepVectors;
    this.fields = new FieldIndexes(this, indexes);
    this.data = new Float32Array(keepVectors ? initialCapacity * dim : 0);
    this.norms = new Float64Array(keepVectors ? initialCapacity : 0);
    this.hiddenAt = new Uint8Array(initialCapacity);
    this.visibleBits = new Uint8Array((initialCapacity + 7) >>> 3);
  }

  /** One past the highest label ever used: the capacity a graph over these labels needs. */
  get labelSpan(): number {
    return this.next;
  }

  /** Stored points, hidden ones included. */
  get stored(): number {
    return this.live;
  }

  /** Stored points that are not hidden: what searches and counts see. */
  get visible(): number {
    return this.live - this.hiddenCount;
  }

  get hiddenSize(): number {
    return this.hiddenCount;
  }

  /** The raw vector store; the vector of `label` starts at `label * dim`. */
  get vectors(): Float32Array {
    this.checkKeeps('vectors');
    return this.data;
  }

  normOf(label: number): number {
    this.checkKeeps('normOf');
    return this.norms[label] as number;
  }

  private checkKeeps(what: string): void {
    if (!this.keepsVectors) throw new Error(`${what}: this point table keeps no vectors (its index's graph holds them)`);
  }

  labelOf(id: string): number | undefined {
    return this.byId.get(id);
  }

  idOf(label: number): string {
    const id = this.ids[label];
    if (id === null || id === undefined) throw new Error(`label ${label} is not live`);
    return id;
  }

  isLive(label: number): boolean {
    return this.ids[label] !== null && this.ids[label] !== undefined;
  }

  /** Stored and not hidden. */
  isVisible(label: number): boolean {
    return this.hiddenAt[label] !== 1 && this.isLive(label);
  }

  isHidden(label: number): boolean {
    return this.hiddenAt[label] === 1;
  }

  /**
   * The visible labels as a bitset (label l is bit l & 7 of byte l >> 3), at least
   * `ceil(labelSpan / 8)` bytes. The table's own array, kept up to date: read it, never write it,
   * and do not keep it across a change (growing the table replaces it).
   */
  get visibleBitset(): Uint8Array {
    return this.visibleBits;
  }

  private setVisibleBit(label: number, on: boolean): void {
    const i = label >>> 3;
    const bit = 1 << (label & 7);
    const bits = this.visibleBits;
    bits[i] = on ? (bits[i] as number) | bit : (bits[i] as number) & ~bit;
  }

  metadataOf(label: number): Metadata | undefined {
    return this.meta[label] ?? undefined;
  }

  /** The visible point stored under `id` (its vector a copy), or undefined (also when hidden). Only in a table that keeps vectors. */
  point(id: string): IndexPoint | undefined {
    const label = this.visibleLabelOf(id);
    return label === undefined ? undefined : { id, vector: this.vectorOf(label).slice(), metadata: this.metadataOf(label) };
  }

  /** The label of the visible point `id`, or undefined (no such point, or hidden). */
  visibleLabelOf(id: string): number | undefined {
    const label = this.byId.get(id);
    return label === undefined || this.hiddenAt[label] === 1 ? undefined : label;
  }

  vectorOf(label: number): Float32Array {
    this.checkKeeps('vectorOf');
    return this.data.subarray(label * this.dim, (label + 1) * this.dim);
  }

  /**
   * Stores `p`; returns its label (its old one when the id exists, else a freed or a new one).
   * A hidden id stays hidden.
   */
  upsert(p: IndexPoint): number {
    let label = this.byId.get(p.id);
    if (label !== undefined) {
      this.unpost(label);
    } else {
      label = this.free.pop() ?? this.next++;
      this.byId.set(p.id, label);
      this.ids[label] = p.id;
      this.live++;
      this.ensureCapacity(label + 1);
      this.setVisibleBit(label, true);
    }
    if (this.keepsVectors) {
      this.data.set(p.vector, label * this.dim);
      this.norms[label] = norm(p.vector);
    }
    this.meta[label] = p.metadata ?? null;
    this.post(label);
    return label;
  }

  /** Removes `id`; returns the label it had, or undefined when it did not exist. */
  remove(id: string): number | undefined {
    const label = this.byId.get(id);
    if (label === undefined) return undefined;
    if (this.hiddenAt[label] === 1) {
      this.hiddenAt[label] = 0;
      this.hiddenCount--;
    }
    this.unpost(label);
    this.setVisibleBit(label, false);
    this.byId.delete(id);
    this.ids[label] = null;
    this.meta[label] = null;
    this.free.push(label);
    this.live--;
    return label;
  }

  /** Hides `id`; returns its label, or undefined when it is not stored or already hidden. */
  hide(id: string): number | undefined {
    const label = this.byId.get(id);
    if (label === undefined || this.hiddenAt[label] === 1) return undefined;
    this.hiddenAt[label] = 1;
    this.hiddenCount++;
    this.setVisibleBit(label, false);
    return label;
  }

  /** Hides (`on`) or unhides each of `ids`; returns how many changed state. */
  setHidden(ids: readonly string[], on: boolean): number {
    let n = 0;
    for (const id of ids) if ((on ? this.hide(id) : this.unhide(id)) !== undefined) n++;
    return n;
  }

  /** Unhides `id`; returns its label, or undefined when it is not stored or not hidden. */
  unhide(id: string): number | undefined {
    const label = this.byId.get(id);
    if (label === undefined || this.hiddenAt[label] !== 1) return undefined;
    this.hiddenAt[label] = 0;
    this.hiddenCount--;
    this.setVisibleBit(label, true);
    return label;
  }

  /**
   * The visible labels that match `filter`, in no particular order. Uses the field indexes where
   * they narrow the search (field-indexes.ts: postings for equality and `$in`, the numeric index of
   * a declared `integer` or `float` field for ranges, the smallest such part of an `$and`), checks
   * the candidates against the whole filter unless the indexes answered it exactly, and scans
   * every label only when no index narrows the search.
   */
  select(filter: Filter): number[] {
    return this.selectIndexed(filter).labels;
  }

  /** {@link select}, and whether the field indexes narrowed it (false: every point's metadata was read). */
  selectIndexed(filter: Filter): { labels: number[]; indexed: boolean } {
    const found = this.fields.candidates(filter);
    const hidden = this.hiddenAt;
    if (found?.exact) {
      if (this.hiddenCount === 0) return { labels: Array.isArray(found.labels) ? (found.labels as number[]) : Array.from(found.labels), indexed: true };
      const out: number[] = [];
      for (const label of found.labels) if (hidden[label] !== 1) out.push(label);
      return { labels: out, indexed: true };
    }
    const out: number[] = [];
    if (found?.check) {
      const check = found.check;
      for (const label of found.labels) if (hidden[label] !== 1 && check(label)) out.push(label);
      return { labels: out, indexed: true };
    }
    if (found) {
      for (const label of found.labels) if (hidden[label] !== 1 && matches(filter, this.meta[label] ?? undefined)) out.push(label);
      return { labels: out, indexed: true };
    }
    for (let label = 0; label < this.next; label++) {
      if (this.ids[label] !== null && hidden[label] !== 1 && matches(filter, this.meta[label] ?? undefined)) out.push(label);
    }
    return { labels: out, indexed: false };
  }

  /**
   * How many visible points match `filter`, without listing them where the field indexes answer:
   * never below the true count, exactly it when `exact` (field-indexes.ts, FieldIndexes.estimate).
   */
  estimate(filter: Filter): Estimate {
    return this.fields.estimate(filter);
  }

  /** A guess of the matches for planning, where {@link estimate} is only a bound (FieldIndexes.guess). */
  guess(filter: Filter): number | undefined {
    return this.fields.guess(filter);
  }

  private post(label: number): void {
    this.fields.add(label, this.meta[label] ?? undefined);
  }

  private unpost(label: number): void {
    this.fields.remove(label, this.meta[label] ?? undefined);
  }

  private ensureCapacity(labels: number): void {
    if (labels <= this.hiddenAt.length) return;
    const cap = Math.max(labels, Math.ceil(this.hiddenAt.length * 1.5), 16);
    if (this.keepsVectors) {
      const data = new Float32Array(cap * this.dim);
      data.set(this.data);
      this.data = data;
      const norms = new Float64Array(cap);
      norms.set(this.norms);
      this.norms = norms;
    }
    const hiddenAt = new Uint8Array(cap);
    hiddenAt.set(this.hiddenAt);
    this.hiddenAt = hiddenAt;
    const visibleBits = new Uint8Array((cap + 7) >>> 3);
    visibleBits.set(this.visibleBits);
    this.visibleBits = visibleBits;
  }

  /**
   * Everything needed to rebuild this table exactly (postings are derived). Fresh packed arrays
   * and typed arrays: V8 serialises an array by its internal elements kind, which depends on its
   * history, and equal tables must serialise to equal bytes.
   */
  toState(): PointTableState {
    return {
      dim: this.dim,
      next: this.next,
      ids: Array.from({ length: this.next }, (_, i) => this.ids[i] ?? null),
      free: Uint32Array.from(this.free),
      ...(this.keepsVectors ? { vectors: this.data.slice(0, this.next * this.dim) } : {}),
      metadata: Array.from({ length: this.next }, (_, i) => this.meta[i] ?? null),
      hidden: this.hiddenLabels(),
    };
  }

  /** Labels of hidden points, ascending. */
  hiddenLabels(): Uint32Array {
    const out = new Uint32Array(this.hiddenCount);
    let j = 0;
    for (let label = 0; label < this.next && j < out.length; label++) if (this.hiddenAt[label] === 1) out[j++] = label;
    return out;
  }

  /**
   * The table `s` describes; `indexes` and `keepVectors` as given to the constructor (the field
   * indexes are rebuilt from the metadata). A table that keeps no vectors ignores those of `s`
   * (a table file written before format 3); one that keeps them needs them.
   */
  static fromState(s: PointTableState, indexes: IndexedFields = {}, keepVectors = true): PointTable {
    const t = new PointTable(s.dim, Math.max(s.next, 16), indexes, keepVectors);
    t.next = s.next;
    t.free = Array.from(s.free);
    if (keepVectors) {
      if (!s.vectors || s.vectors.length < s.next * s.dim) throw new Error(`the table's state holds ${s.vectors?.length ?? 0} vector components, ${s.next * s.dim} expected`);
      t.data.set(s.vectors.subarray(0, s.next * s.dim));
    }
    for (let label = 0; label < s.next; label++) {
      const id = s.ids[label] ?? null;
      t.ids[label] = id;
      t.meta[label] = s.metadata[label] ?? null;
      if (id === null) continue;
      t.byId.set(id, label);
      t.live++;
      t.setVisibleBit(label, true);
      if (keepVectors) t.norms[label] = norm(t.vectorOf(label));
      t.post(label);
    }
    for (const label of s.hidden ?? []) {
      if (!t.isLive(label) || t.hiddenAt[label] === 1) throw new Error(`hidden label ${label} is not a stored point, or is listed twice`);
      t.hiddenAt[label] = 1;
      t.hiddenCount++;
      t.setVisibleBit(label, false);
    }
    return t;
  }
}
