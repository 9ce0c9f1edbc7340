/**
 * Raft logs, hard states and snapshot points of all a node's groups in the node's one LMDB
 * environment (node-env.ts): entries in `raft-log` keyed by [group, index], hard state in
 * `raft-state` and the snapshot point in `raft-snapshot`, keyed by group. lmdb-js puts every
 * write queued in one event-loop turn into one transaction, so all groups' writes of a turn
 * commit together and one flush makes them durable.
 *
 * An entry longer than one page (an upsert batch: 300-800 KB) is stored as pieces
 * `[group, index, piece]` of one page each (pieces.ts), so that it never needs a run of
 * contiguous free pages; the entry's CRC covers the joined value. Entries written whole (before
 * pieces, or short) read as they are.
 */
import type { Database } from 'lmdb';
import { DB_NAMES, type NodeEnv } from './node-env.js';
import { joinPieces, pieceCount, pieceKeys, piecesOf, type Key } from './pieces.js';
import { ENTRY_TYPE_CODES } from '../raft/entry.js';
import type { ConfState, Entry, EntryType, HardState, LogIndex, NodeId, SnapshotMeta, Term } from '../raft/types.js';
import type { PersistedRaftState, RaftLogStore, RaftWrites } from './raft-log-store.js';

const TYPES = new Map(Object.entries(ENTRY_TYPE_CODES).map(([type, code]) => [code, type as EntryType]));
const HEADER = 13; // term f64, type u8, crc u32

/** An entry's stored value: term, type, checksum, data. The index is in the key. */
export function encodeEntryValue(e: Entry): Uint8Array {
  const out = new Uint8Array(HEADER + e.data.length);
  const dv = new DataView(out.buffer);
  dv.setFloat64(0, e.term, true);
  dv.setUint8(8, ENTRY_TYPE_CODES[e.type]);
  dv.setUint32(9, e.crc, true);
  out.set(e.data, HEADER);
  return out;
}

export function decodeEntryValue(index: number, v: Uint8Array): Entry {
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  // An unreadable type decodes as 'normal': the checksum then fails and the core treats the entry as corrupt.
  const type = TYPES.get(v.byteLength >= HEADER ? dv.getUint8(8) : 0) ?? 'normal';
  return {
    index: index as LogIndex,
    term: (v.byteLength >= HEADER ? dv.getFloat64(0, true) : 0) as Term,
    type,
    crc: v.byteLength >= HEADER ? dv.getUint32(9, true) : 0,
    data: Uint8Array.prototype.slice.call(v, HEADER),
  };
}

interface StoredHardState {
  term: number;
  vote: string | null;
  commit: number;
  repairing?: boolean;
}

interface StoredSnapshot {
  index: number;
  term: number;
  voters: string[];
  learners: string[];
}

const MAX_INDEX = Number.MAX_SAFE_INTEGER;

export class LmdbRaftLogStore implements RaftLogStore {
  private readonly log: Database<Buffer, Key>;
  private readonly hard: Database<StoredHardState, string>;
  private readonly snaps: Database<StoredSnapshot, string>;
  /** Stored first and last index per group, to delete ranges without reading them. */
  private readonly bounds = new Map<string, { first: number; last: number }>();
  /** Per group, the pieces of each stored entry (0: one record), to delete them without reading. */
  private readonly pieces = new Map<string, Map<number, number>>();

  constructor(private readonly env: NodeEnv) {
    this.log = env.openDB<Buffer, Key>(DB_NAMES.raftLog, { encoding: 'binary' });
    this.hard = env.openDB<StoredHardState, string>(DB_NAMES.raftState, {});
    this.snaps = env.openDB<StoredSnapshot, string>(DB_NAMES.raftSnapshot, {});
  }

  groups(): string[] {
    return [...this.hard.getKeys()];
  }

  load(group: string): PersistedRaftState | undefined {
    const hs = this.hard.get(group);
    if (!hs) return undefined;
    const sn = this.snaps.get(group);
    const snapshot: SnapshotMeta = sn
      ? { index: sn.index as LogIndex, term: sn.term as Term, conf: { voters: sn.voters as NodeId[], learners: sn.learners as NodeId[] } }
      : { index: 0 as LogIndex, term: 0 as Term, conf: { voters: [], learners: [] } };
    const entries: Entry[] = [];
    const pieces = this.piecesOf(group);
    for (const { base, value, pieces: n } of joinPieces(this.log.getRange({ start: [group, snapshot.index + 1], end: [group, MAX_INDEX] }), 2)) {
      const index = base[1] as number;
      entries.push(decodeEntryValue(index, value));
      pieces.set(index, n);
    }
    const first = entries[0]?.index ?? snapshot.index + 1;
    this.bounds.set(group, { first, last: snapshot.index + entries.length });
    return {
      hardState: { term: hs.term as Term, vote: hs.vote as NodeId | null, commit: hs.commit as LogIndex, repairing: hs.repairing === true },
      snapshot,
      entries,
    };
  }

  init(group: string, state: PersistedRaftState): void {
    this.putHard(group, state.hardState);
    this.putSnap(group, state.snapshot);
    for (const e of state.entries) this.putEntry(group, e);
    const last = state.entries[state.entries.length - 1]?.index ?? state.snapshot.index;
    this.bounds.set(group, { first: state.snapshot.index + 1, last });
  }

  save(group: string, w: RaftWrites): void {
    const b = this.bounds.get(group) ?? { first: 1, last: 0 };
    if (w.snapshot) {
      this.deleteRange(group, b.first, b.last);
      this.putSnap(group, w.snapshot);
      b.first = w.snapshot.index + 1;
      b.last = w.snapshot.index;
    }
    if (w.truncateFrom !== undefined) {
      this.deleteRange(group, w.truncateFrom, b.last);
      b.last = Math.min(b.last, w.truncateFrom - 1);
    }
    const first = w.entries[0];
    if (first) {
      for (const e of w.entries) this.putEntry(group, e);
      const newLast = (w.entries[w.entries.length - 1] as Entry).index;
      this.deleteRange(group, newLast + 1, b.last);
      b.last = newLast;
    }
    if (w.hardState) this.putHard(group, w.hardState);
    this.bounds.set(group, b);
  }

  compact(group: string, meta: SnapshotMeta): void {
    const b = this.bounds.get(group);
    if (!b || meta.index < b.first) return;
    this.deleteRange(group, b.first, meta.index);
    this.putSnap(group, meta);
    b.first = meta.index + 1;
  }

  removeGroup(group: string): void {
    const b = this.bounds.get(group);
    if (b) this.deleteRange(group, b.first, b.last);
    else for (const key of this.log.getKeys({ start: [group, 0], end: [group, MAX_INDEX] })) void this.log.remove(key);
    void this.hard.remove(group);
    void this.snaps.remove(group);
    this.bounds.delete(group);
    this.pieces.delete(group);
  }

  flushed(): Promise<void> {
    // `env.flushed` is a thenable read when `then` is called: it covers every write queued so far.
    return new Promise((resolve, reject) => {
      this.env.flushed.then(() => resolve(), reject);
    });
  }

  private piecesOf(group: string): Map<number, number> {
    let m = this.pieces.get(group);
    if (!m) this.pieces.set(group, (m = new Map()));
    return m;
  }

  /** Queues the entry's records in place of any entry stored at its index (whose pieces go first: writes apply in order). */
  private putEntry(group: string, e: Entry): void {
    const value = encodeEntryValue(e);
    const pieces = this.piecesOf(group);
    const old = pieces.get(e.index);
    if (old !== undefined && old !== pieceCount(value.length)) this.deleteEntry(group, e.index, old);
    for (const [key, bytes] of piecesOf([group, e.index], value)) void this.log.put(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    pieces.set(e.index, pieceCount(value.length));
  }

  private deleteEntry(group: string, index: number, pieces: number): void {
    for (const key of pieceKeys([group, index], pieces)) void this.log.remove(key);
  }

  private deleteRange(group: string, from: number, to: number): void {
    const pieces = this.piecesOf(group);
    for (let i = from; i <= to; i++) {
      // an index this store never saw stored is removed as one record (what every entry was before pieces)
      this.deleteEntry(group, i, pieces.get(i) ?? 0);
      pieces.delete(i);
    }
  }

  private putHard(group: string, hs: HardState): void {
    void this.hard.put(group, { term: hs.term, vote: hs.vote, commit: hs.commit, repairing: hs.repairing });
  }

  private putSnap(group: string, s: SnapshotMeta): void {
    const conf: ConfState = s.conf;
    void this.snaps.put(group, { index: s.index, term: s.term, voters: [...conf.voters], learners: [...conf.learners] });
  }
}
