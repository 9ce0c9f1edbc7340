/**
 * A sorted multiset of (number, label) pairs in blocks of a few hundred: insert and remove cost
 * O(log n + block), a range answers in O(log n + matches) and counts in O(log n + blocks). Used
 * for the metadata fields a collection declares `integer` or `float` (PROTOCOL.md, `indexes`).
 * Pairs are ordered by value, then label; a value is never NaN, and -0 is stored as 0.
 */
import type { CompareOp } from './filter-parse.js';

/** One side of an interval: `gt`/`gte` a lower bound, `lt`/`lte` an upper one. */
export interface Bound {
  op: CompareOp;
  value: number;
}

/** A block splits in two above this many pairs. */
const BLOCK_MAX = 512;

interface Block {
  values: number[];
  labels: number[];
}

/** A half-open run [from, to) of pairs, as (block, index) positions. */
type Span = [{ block: number; index: number }, { block: number; index: number }];

/** (a, la) before (b, lb)? */
function before(a: number, la: number, b: number, lb: number): boolean {
  return a < b || (a === b && la < lb);
}

export class SortedNumbers {
  private blocks: Block[] = [];
  private size = 0;

  /** Pairs stored. */
  get entries(): number {
    return this.size;
  }

  add(value: number, label: number): void {
    this.size++;
    if (this.blocks.length === 0) {
      this.blocks.push({ values: [value], labels: [label] });
      return;
    }
    let b = this.blockAtOrAfter(value, label);
    if (b === this.blocks.length) b--;
    const blk = this.blocks[b] as Block;
    const i = this.pairIndex(blk, value, label);
    blk.values.splice(i, 0, value);
    blk.labels.splice(i, 0, label);
    if (blk.values.length > BLOCK_MAX) {
      const half = blk.values.length >> 1;
      this.blocks.splice(b + 1, 0, { values: blk.values.splice(half), labels: blk.labels.splice(half) });
    }
  }

  /** Removes the pair; false when it was not stored. */
  remove(value: number, label: number): boolean {
    const b = this.blockAtOrAfter(value, label);
    const blk = this.blocks[b];
    if (!blk) return false;
    const i = this.pairIndex(blk, value, label);
    if (blk.values[i] !== value || blk.labels[i] !== label) return false;
    blk.values.splice(i, 1);
    blk.labels.splice(i, 1);
    if (blk.values.length === 0) this.blocks.splice(b, 1);
    this.size--;
    return true;
  }

  /** Pairs whose value satisfies `op value` (a label with several matching values counts once per value). */
  count(op: CompareOp, value: number): number {
    return this.countSpan(this.span(op, value));
  }

  /** Pairs whose value lies between the bounds (`lower` a `gt`/`gte`, `upper` a `lt`/`lte`). */
  countBetween(lower: Bound, upper: Bound): number {
    return this.countSpan(this.between(lower, upper));
  }

  /** Calls `fn` with the label of every pair whose value lies between the bounds, in value order. */
  forEachBetween(lower: Bound, upper: Bound, fn: (label: number) => void): void {
    this.forEachIn(this.between(lower, upper), fn);
  }

  /** The span of pairs between two bounds; empty (from after to) when the bounds cross. */
  private between(lower: Bound, upper: Bound): Span {
    const [from] = this.span(lower.op, lower.value);
    const [, to] = this.span(upper.op, upper.value);
    const crossed = to.block < from.block || (to.block === from.block && to.index < from.index);
    return crossed ? [from, from] : [from, to];
  }

  /** Calls `fn` with the label of every pair whose value satisfies `op value`, in value order. */
  forEach(op: CompareOp, value: number, fn: (label: number) => void): void {
    this.forEachIn(this.span(op, value), fn);
  }

  private countSpan([from, to]: Span): number {
    let n = 0;
    for (let b = from.block; b <= to.block && b < this.blocks.length; b++) {
      const len = (this.blocks[b] as Block).values.length;
      n += (b === to.block ? to.index : len) - (b === from.block ? from.index : 0);
    }
    return n;
  }

  private forEachIn([from, to]: Span, fn: (label: number) => void): void {
    for (let b = from.block; b <= to.block && b < this.blocks.length; b++) {
      const labels = (this.blocks[b] as Block).labels;
      const end = b === to.block ? to.index : labels.length;
      for (let i = b === from.block ? from.index : 0; i < end; i++) fn(labels[i] as number);
    }
  }

  /** The half-open span [from, to) of pairs satisfying `op value`, as (block, index) positions. */
  private span(op: CompareOp, value: number): Span {
    const start = { block: 0, index: 0 };
    const end = { block: this.blocks.length, index: 0 };
    switch (op) {
      case 'gt':
        return [this.firstWhere((v) => v > value), end];
      case 'gte':
        return [this.firstWhere((v) => v >= value), end];
      case 'lt':
        return [start, this.firstWhere((v) => v >= value)];
      case 'lte':
        return [start, this.firstWhere((v) => v > value)];
    }
  }

  /** The first position whose value satisfies `pred`, which must be monotone (false, then true). */
  private firstWhere(pred: (v: number) => boolean): { block: number; index: number } {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const blk = this.blocks[mid] as Block;
      if (pred(blk.values[blk.values.length - 1] as number)) hi = mid;
      else lo = mid + 1;
    }
    const blk = this.blocks[lo];
    if (!blk) return { block: this.blocks.length, index: 0 };
    let a = 0;
    let z = blk.values.length;
    while (a < z) {
      const mid = (a + z) >> 1;
      if (pred(blk.values[mid] as number)) z = mid;
      else a = mid + 1;
    }
    return { block: lo, index: a };
  }

  /** The first block whose last pair is at or after (value, label); the block count when none is. */
  private blockAtOrAfter(value: number, label: number): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const blk = this.blocks[mid] as Block;
      const last = blk.values.length - 1;
      if (before(blk.values[last] as number, blk.labels[last] as number, value, label)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Where (value, label) is or would go in `blk`. */
  private pairIndex(blk: Block, value: number, label: number): number {
    let a = 0;
    let z = blk.values.length;
    while (a < z) {
      const mid = (a + z) >> 1;
      if (before(blk.values[mid] as number, blk.labels[mid] as number, value, label)) a = mid + 1;
      else z = mid;
    }
    return a;
  }
}
