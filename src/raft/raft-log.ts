/**
 * The replica's log as the core sees it: every entry after the last snapshot (or compaction)
 * point, in memory. Storage is written behind it from each Ready; the log here is the truth the
 * core reasons with. Tracks what was handed to the host for persistence and for application.
 */
import type { Entry, LogIndex, Term } from './types.js';

/** A log, to read: what the core shows the host and tests (the core alone changes its log). */
export type RaftLogView = Readonly<Pick<RaftLog, 'committed' | 'applied' | 'stable' | 'snapIndex' | 'snapTerm' | 'firstIndex' | 'lastIndex' | 'lastTerm' | 'termAt' | 'entry' | 'all'>>;

export class RaftLog {
  /** The index and term of the last entry covered by the snapshot (0, 0 for none). */
  snapIndex: number;
  snapTerm: number;
  /** entries[i].index === snapIndex + 1 + i */
  private entries: Entry[];
  committed: number;
  /** Highest index handed to the host to apply. */
  applyHanded: number;
  /** Highest index the host has applied. */
  applied: number;
  /** Entries up to here were handed to the host for persistence. */
  persistHanded: number;
  /** Entries up to here are durable (the host said so through `advance`). */
  stable: number;

  constructor(snapIndex: number, snapTerm: number, entries: Entry[], committed: number, applied: number) {
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.entries = entries;
    this.committed = committed;
    this.applied = Math.max(applied, snapIndex);
    this.applyHanded = this.applied;
    this.persistHanded = this.lastIndex();
    this.stable = this.lastIndex();
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.termAt(this.lastIndex()) ?? 0;
  }

  /** The term at `i`, or undefined when compacted away or beyond the end. */
  termAt(i: number): number | undefined {
    if (i === this.snapIndex) return this.snapTerm;
    if (i < this.snapIndex || i > this.lastIndex()) return undefined;
    return (this.entries[i - this.snapIndex - 1] as Entry).term;
  }

  entry(i: number): Entry | undefined {
    if (i <= this.snapIndex) return undefined;
    return this.entries[i - this.snapIndex - 1];
  }

  matchTerm(i: number, t: number): boolean {
    return this.termAt(i) === t;
  }

  /** Entries in [lo, hi], stopping once `maxBytes` is passed (always at least one). */
  slice(lo: number, hi: number, maxBytes = Infinity, sizeOf: (e: Entry) => number = () => 0): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = Math.max(lo, this.firstIndex()); i <= Math.min(hi, this.lastIndex()); i++) {
      const e = this.entries[i - this.snapIndex - 1] as Entry;
      bytes += sizeOf(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** §5.4.1: is (index, term) at least as up-to-date as this log's last entry? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Appends on the leader (no conflicts possible). */
  append(es: readonly Entry[]): void {
    for (const e of es) this.entries.push(e);
  }

  /**
   * A follower's append after its (prevIndex, prevTerm) check passed: skips entries it already
   * has, truncates at the first conflict (§5.3), appends the rest. Returns the last new index.
   */
  maybeAppend(prevIndex: number, entries: readonly Entry[]): number {
    let k = 0;
    for (; k < entries.length; k++) {
      const e = entries[k] as Entry;
      if (e.index <= this.snapIndex) continue;
      const t = this.termAt(e.index);
      if (t === undefined) break;
      if (t !== e.term) {
        if (e.index <= this.committed) throw new Error(`raft: conflict at committed index ${e.index}`);
        this.truncateFrom(e.index);
        break;
      }
    }
    for (; k < entries.length; k++) {
      const e = entries[k] as Entry;
      if (e.index > this.snapIndex) this.entries.push(e);
    }
    return prevIndex + entries.length;
  }

  /** Drops entries from `i` on. */
  truncateFrom(i: number): void {
    this.entries.length = Math.max(0, i - this.snapIndex - 1);
    if (this.persistHanded >= i) this.persistHanded = i - 1;
    if (this.stable >= i) this.stable = i - 1;
  }

  commitTo(i: number): boolean {
    if (i <= this.committed) return false;
    this.committed = Math.min(i, this.lastIndex());
    return true;
  }

  /** Entries not yet handed for persistence; marks them handed. */
  takeUnpersisted(): Entry[] {
    if (this.persistHanded >= this.lastIndex()) return [];
    const out = this.slice(this.persistHanded + 1, this.lastIndex());
    this.persistHanded = this.lastIndex();
    return out;
  }

  /** Committed entries not yet handed for application; marks them handed. */
  takeCommitted(): Entry[] {
    const hi = Math.min(this.committed, this.lastIndex());
    if (this.applyHanded >= hi) return [];
    const out = this.slice(this.applyHanded + 1, hi);
    this.applyHanded = hi;
    return out;
  }

  /** Forgets entries up to `i` (≤ applied), which a snapshot now covers. */
  compact(i: number): void {
    if (i <= this.snapIndex) return;
    const t = this.termAt(i);
    if (t === undefined) throw new Error(`raft: cannot compact to ${i}: not in the log`);
    this.entries = this.entries.slice(i - this.snapIndex);
    this.snapIndex = i;
    this.snapTerm = t;
  }

  /** Replaces the whole log by a snapshot point. */
  restore(index: number, t: number): void {
    this.entries = [];
    this.snapIndex = index;
    this.snapTerm = t;
    this.committed = index;
    this.applied = index;
    this.applyHanded = index;
    this.persistHanded = index;
    this.stable = index;
  }

  /**
   * For fast backtracking: the largest index ≤ `index` whose term is ≤ `t` (or the snapshot
   * index when everything left is newer).
   */
  findConflictByTerm(index: number, t: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapIndex; i--) {
      const ti = this.termAt(i) as number;
      if (ti <= t) return { index: i, term: ti };
    }
    return { index: this.snapIndex, term: this.snapTerm };
  }

  all(): readonly Entry[] {
    return this.entries;
  }
}

export type { LogIndex, Term };
