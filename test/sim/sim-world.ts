/**
 * The simulation's world around the real Raft host: a clock that moves only when the simulation
 * says, a log store whose writes become durable only when the simulation flushes it (and whose
 * unflushed suffix a crash loses), and a state machine that checks, as it applies, that every
 * replica applies the same entry at each index, in order.
 */
import { crc32, crc32Number } from '../../src/raft/crc32.js';
import type { Entry, LogIndex, SnapshotMeta } from '../../src/raft/types.js';
import type { AppliedEntry, StateMachine } from '../../src/replication/raft-state-machine.js';
import type { Clock, Timer } from '../../src/runtime/clock.js';
import type { PersistedRaftState, RaftLogStore, RaftWrites } from '../../src/storage/raft-log-store.js';
import { chunked } from '../helpers/memory-hosts.js';

// ------------------------------------------------------------------ clock

interface TimerEntry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Time in simulation steps. Timers fire in order of due time, then of creation, when {@link fireDue} is called. */
export class SimClock implements Clock {
  private time = 0;
  private seq = 0;
  private heap: TimerEntry[] = [];

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    const e: TimerEntry = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.push(e);
    return { cancel: () => void (e.cancelled = true) };
  }

  /** Moves to `time` and fires every timer due by then (including ones those timers set for now). */
  fireDue(time: number): void {
    this.time = time;
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > time) return;
      this.pop();
      if (!top.cancelled) top.fn();
    }
  }

  private less(a: TimerEntry, b: TimerEntry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: TimerEntry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as TimerEntry, h[p] as TimerEntry)) break;
      [h[i], h[p]] = [h[p] as TimerEntry, h[i] as TimerEntry];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as TimerEntry;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l] as TimerEntry, h[m] as TimerEntry)) m = l;
      if (r < h.length && this.less(h[r] as TimerEntry, h[m] as TimerEntry)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m] as TimerEntry, h[i] as TimerEntry];
      i = m;
    }
  }
}

// ------------------------------------------------------------------ disk

/** What a node's disk holds: its group's Raft state and its state machine's. */
export interface Disk {
  raft: PersistedRaftState | undefined;
  smApplied: number;
  /** The state machine: each applied entry's fingerprint, by index. */
  smLog: Map<number, number>;
}

type Write = (d: Disk) => void;

/**
 * A node's disk. Writes queue in transactions (one ends at each `flushed()` call, as the host's
 * turns end theirs); {@link flush} makes all of them durable and resolves the waiting flushes; a
 * {@link crash} keeps a prefix of the queued transactions (those the disk happened to write) and
 * loses the rest. Each incarnation of a node writes through its own {@link SimStore}: writes of
 * a crashed incarnation are ignored.
 */
export class SimDisk {
  readonly durable: Disk;
  private txns: Write[][] = [[]];
  private waiting: (() => void)[] = [];
  incarnation = 0;

  constructor(raft: PersistedRaftState | undefined) {
    this.durable = { raft, smApplied: 0, smLog: new Map() };
  }

  write(incarnation: number, w: Write): void {
    if (incarnation === this.incarnation) (this.txns[this.txns.length - 1] as Write[]).push(w);
  }

  flushed(incarnation: number): Promise<void> {
    if (incarnation !== this.incarnation) return new Promise(() => undefined);
    if ((this.txns[this.txns.length - 1] as Write[]).length > 0) this.txns.push([]);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  flush(): void {
    for (const t of this.txns) for (const w of t) w(this.durable);
    this.txns = [[]];
    const waiting = this.waiting;
    this.waiting = [];
    for (const r of waiting) r();
  }

  /** Loses the transactions after the first `kept`; waiting flushes never resolve. */
  crash(kept: number): void {
    for (const t of this.txns.slice(0, kept)) for (const w of t) w(this.durable);
    this.txns = [[]];
    this.waiting = [];
    this.incarnation++;
  }

  /** How many transactions are queued (a crash keeps some prefix of them). */
  queued(): number {
    return this.txns.filter((t) => t.length > 0).length;
  }
}

/** One incarnation's view of its node's disk, as the host's log store. */
export class SimStore implements RaftLogStore {
  constructor(
    private readonly disk: SimDisk,
    readonly incarnation: number,
  ) {}

  load(group: string): PersistedRaftState | undefined {
    const s = this.disk.durable.raft;
    return group === 'g' && s ? { hardState: s.hardState, snapshot: s.snapshot, entries: [...s.entries] } : undefined;
  }

  init(_group: string, state: PersistedRaftState): void {
    this.disk.write(this.incarnation, (d) => (d.raft = { hardState: state.hardState, snapshot: state.snapshot, entries: [...state.entries] }));
  }

  save(_group: string, w: RaftWrites): void {
    const entries = [...w.entries];
    this.disk.write(this.incarnation, (d) => {
      const s = d.raft;
      if (!s) throw new Error('sim store: save before init');
      if (w.snapshot) {
        s.snapshot = w.snapshot;
        s.entries = [];
      }
      if (w.truncateFrom !== undefined) s.entries = s.entries.filter((e) => e.index < (w.truncateFrom as LogIndex));
      const first = entries[0];
      if (first) s.entries = s.entries.filter((e) => e.index < first.index).concat(entries);
      if (w.hardState) s.hardState = w.hardState;
    });
  }

  compact(_group: string, meta: SnapshotMeta): void {
    this.disk.write(this.incarnation, (d) => {
      const s = d.raft;
      if (!s || meta.index <= s.snapshot.index) return;
      s.snapshot = meta;
      s.entries = s.entries.filter((e) => e.index > meta.index);
    });
  }

  removeGroup(): void {
    this.disk.write(this.incarnation, (d) => (d.raft = undefined));
  }

  flushed(): Promise<void> {
    return this.disk.flushed(this.incarnation);
  }

  groups(): string[] {
    return this.disk.durable.raft ? ['g'] : [];
  }
}

/** Flips the last byte of one stored entry's data (its checksum stays): a disk returning a bad byte. */
export function corruptEntry(disk: SimDisk, k: number): void {
  const s = disk.durable.raft;
  if (!s) return;
  const e = s.entries[k] as Entry;
  const data = new Uint8Array(e.data.length + 1);
  data.set(e.data);
  data[data.length - 1] = 0xff;
  s.entries[k] = { ...e, data };
}

// ------------------------------------------------------------------ state machine

/** What identifies an applied entry across replicas: its term, type and data. */
export function fingerprint(e: Pick<AppliedEntry, 'term' | 'type' | 'data'>): number {
  return crc32(e.data, crc32Number(e.term * 4 + (e.type === 'normal' ? 1 : e.type === 'noop' ? 2 : 3)));
}

export interface SmChecks {
  /** An entry was applied at `index` with fingerprint `fp` (checks it against every other replica). */
  applied(node: string, index: number, fp: number): void;
  /** Something the state machine found wrong. */
  fail(message: string): never;
  snapshotTaken(): void;
}

/**
 * The replicated state machine of the simulation: it remembers each applied entry's fingerprint,
 * is durable through its node's disk (its writes share the host's transactions), streams its image
 * as a snapshot, and answers each normal entry with its data as text (so that a proposal can check
 * it was answered with the result of its own entry).
 */
export class SimStateMachine implements StateMachine {
  appliedIndex: number;
  readonly log: Map<number, number>;
  /** Its replica was deleted: it writes nothing more to the disk. */
  private dropped = false;

  constructor(
    private readonly node: string,
    private readonly disk: SimDisk,
    private readonly incarnation: number,
    private readonly checks: SmChecks,
    private readonly chunkBytes: number,
  ) {
    this.appliedIndex = disk.durable.smApplied;
    this.log = new Map(disk.durable.smLog);
  }

  apply(entries: AppliedEntry[]): Promise<unknown[]> {
    const results: unknown[] = [];
    for (const e of entries) {
      if (e.index !== this.appliedIndex + 1) this.checks.fail(`${this.node} applies ${e.index} after ${this.appliedIndex}`);
      const fp = fingerprint(e);
      this.checks.applied(this.node, e.index, fp);
      this.log.set(e.index, fp);
      this.appliedIndex = e.index;
      results.push(e.type === 'normal' ? new TextDecoder().decode(e.data) : undefined);
    }
    const applied = this.appliedIndex;
    const added = entries.map((e) => [e.index, this.log.get(e.index) as number] as const);
    if (!this.dropped) this.disk.write(this.incarnation, (d) => {
      for (const [i, fp] of added) d.smLog.set(i, fp);
      d.smApplied = applied;
    });
    return Promise.resolve(results);
  }

  /**
   * Deletes the state machine's data with its replica's (in the disk's current transaction, so
   * that a crash keeps both or neither); nothing this instance does afterwards reaches the disk.
   */
  drop(): void {
    this.dropped = true;
    this.disk.write(this.incarnation, (d) => {
      d.smApplied = 0;
      d.smLog = new Map();
    });
  }

  snapshot(): Promise<{ appliedIndex: number; chunks: AsyncIterable<Uint8Array>; bytes: number }> {
    this.checks.snapshotTaken();
    const image = new TextEncoder().encode(JSON.stringify([this.appliedIndex, [...this.log]]));
    return Promise.resolve({ appliedIndex: this.appliedIndex, chunks: chunked(image, this.chunkBytes), bytes: image.length });
  }

  async restore(appliedIndex: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    const [applied, log] = JSON.parse(new TextDecoder().decode(Buffer.concat(parts))) as [number, [number, number][]];
    if (applied !== appliedIndex) this.checks.fail(`${this.node} was sent an image of index ${applied} described as ${appliedIndex}`);
    for (const [i, fp] of log) this.checks.applied(this.node, i, fp);
    this.log.clear();
    for (const [i, fp] of log) this.log.set(i, fp);
    this.appliedIndex = applied;
    const copy = new Map(this.log);
    if (!this.dropped) this.disk.write(this.incarnation, (d) => {
      d.smLog = copy;
      d.smApplied = applied;
    });
  }
}
