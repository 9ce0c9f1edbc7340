/**
 * Where a node keeps its Raft groups' logs, hard states and snapshot points: the interface, and
 * an in-memory version for tests. The LMDB version is lmdb-raft-log-store.ts.
 *
 * Durability rule: writes queued with `save` and `compact` during one turn of the event loop
 * are durable only once the promise `flushed()` returned — called in that same turn, after the
 * writes — resolves. The host sends a Ready's messages (votes, append acknowledgements) only then.
 */
import type { Entry, HardState, LogIndex, Ready, SnapshotMeta } from '../raft/types.js';

/** What a group's replica restarts from. */
export interface PersistedRaftState {
  hardState: HardState;
  snapshot: SnapshotMeta;
  /** Entries after the snapshot point, in order (checksums are checked by the core). */
  entries: Entry[];
}

/** The writes of one Ready. */
export type RaftWrites = Pick<Ready, 'hardState' | 'entries' | 'snapshot' | 'truncateFrom'>;

export interface RaftLogStore {
  /** The stored state of `group`, or undefined if it has none. */
  load(group: string): PersistedRaftState | undefined;
  /** Stores a group's initial state (a new replica). */
  init(group: string, state: PersistedRaftState): void;
  /**
   * Queues a Ready's writes: hard state; entries (replacing stored ones at their indexes and
   * dropping any after them); an installed snapshot (dropping the whole stored log); a truncation.
   */
  save(group: string, writes: RaftWrites): void;
  /** Queues dropping entries up to `meta.index`, which the state machine holds durably. */
  compact(group: string, meta: SnapshotMeta): void;
  /** Queues forgetting everything of `group`. */
  removeGroup(group: string): void;
  /** Resolves once every write queued so far is on disk. Call it in the turn of the writes. */
  flushed(): Promise<void>;
  /** Groups with stored state. */
  groups(): string[];
}

/** Keeps everything in memory (tests of the host logic); `flushed` resolves at once. */
export class MemoryRaftLogStore implements RaftLogStore {
  private readonly state = new Map<string, PersistedRaftState>();

  load(group: string): PersistedRaftState | undefined {
    const s = this.state.get(group);
    return s ? { hardState: s.hardState, snapshot: s.snapshot, entries: [...s.entries] } : undefined;
  }

  init(group: string, state: PersistedRaftState): void {
    this.state.set(group, { hardState: state.hardState, snapshot: state.snapshot, entries: [...state.entries] });
  }

  save(group: string, w: RaftWrites): void {
    const s = this.state.get(group);
    if (!s) throw new Error(`raft store: group ${group} was never initialised`);
    if (w.snapshot) {
      s.snapshot = w.snapshot;
      s.entries = [];
    }
    if (w.truncateFrom !== undefined) s.entries = s.entries.filter((e) => e.index < (w.truncateFrom as LogIndex));
    const first = w.entries[0];
    if (first) s.entries = s.entries.filter((e) => e.index < first.index).concat(w.entries);
    if (w.hardState) s.hardState = w.hardState;
  }

  compact(group: string, meta: SnapshotMeta): void {
    const s = this.state.get(group);
    if (!s || meta.index <= s.snapshot.index) return;
    s.snapshot = meta;
    s.entries = s.entries.filter((e) => e.index > meta.index);
  }

  removeGroup(group: string): void {
    this.state.delete(group);
  }

  flushed(): Promise<void> {
    return Promise.resolve();
  }

  groups(): string[] {
    return [...this.state.keys()];
  }
}
