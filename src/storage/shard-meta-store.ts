/**
 * A shard state machine's own records in the node env's `shard-meta` sub-database:
 * `[group, 'meta']` (applied index, count, checkpoint, ...) and the index journal
 * `[group, 'journal', logIndex]`: the index changes of each applied entry after the newest
 * checkpoint, so that a restart rebuilds the in-memory index to the applied index without the
 * Raft log.
 *
 * Writes are synchronous and run inside an `env.transaction()` callback. The meta record and the
 * journal are sealed with a CRC-32 (store-codec.ts, encodeSealed): a damaged one is a
 * CorruptDataError naming the LMDB file and the record, never a wrong index. A journal entry
 * longer than one page is stored as pieces `[group, 'journal', logIndex, piece]` (pieces.ts), so
 * that it never needs a run of contiguous free pages; entries written whole (before pieces) read
 * as they are.
 */
import type { Database, Transaction } from 'lmdb';
import { DB_NAMES, dataFileOf, type NodeEnv } from './node-env.js';
import { CorruptDataError } from '../runtime/errors.js';
import { decodeSealed, encodeSealed, groupEnd } from './store-codec.js';
import { afterRange, getPieced, joinPieces, putPiecedSync, throughRange } from './pieces.js';

/** The index changes one log entry made: upserts (after last-wins) then deletes of ids that existed. */
export interface JournalEntry {
  upserts: [id: string, vector: Float32Array, metadata: Record<string, unknown> | null][];
  deletes: string[];
  /** Ids hidden from searches after the upserts and deletes (a reshard's imports, or what moved away), then ids shown again. */
  hide?: string[];
  unhide?: string[];
  /** The group's points after the entry (absent in entries written before issue 21): what the checkpoint rule reads on replay (src/shard/index-checkpoints.ts). */
  count?: number;
}

type Key = (string | number)[];

export class ShardMetaStore<M> {
  private readonly db: Database<Buffer, Key>;
  private readonly file: string;

  constructor(env: NodeEnv) {
    this.db = env.openDB<Buffer, Key>({ name: DB_NAMES.shardMeta, encoding: 'binary' });
    this.file = dataFileOf(env);
  }

  private open<T>(group: string, what: string, bytes: Uint8Array): T {
    try {
      return decodeSealed<T>(bytes);
    } catch (err) {
      throw new CorruptDataError(this.file, `the ${what} of ${group} in ${this.file} is damaged: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The meta record; with `transaction`, as of that read transaction. */
  getMeta(group: string, transaction?: Transaction): M | undefined {
    if (!transaction) {
      const bytes = this.db.get([group, 'meta']);
      return bytes === undefined ? undefined : this.open<M>(group, 'meta record', bytes);
    }
    for (const { value } of this.db.getRange({ start: [group, 'meta'], end: [group, 'meta'], inclusiveEnd: true, transaction })) return this.open<M>(group, 'meta record', value);
    return undefined;
  }

  /** Every group that has a meta record (read at startup; walks the keys once). */
  groups(): string[] {
    const out: string[] = [];
    for (const key of this.db.getKeys()) {
      if (key[1] === 'meta' && typeof key[0] === 'string') out.push(key[0]);
    }
    return out;
  }

  /** Inside a write transaction. */
  putMeta(group: string, meta: M): void {
    this.db.putSync([group, 'meta'], encodeSealed(meta));
  }

  /** Inside a write transaction. */
  putJournal(group: string, index: number, entry: JournalEntry): void {
    putPiecedSync(this.db, [group, 'journal', index], encodeSealed(entry));
  }

  /** Inside a write transaction. Writes an already-encoded journal entry (a snapshot's). */
  putJournalRaw(group: string, index: number, value: Uint8Array): void {
    putPiecedSync(this.db, [group, 'journal', index], value);
  }

  /** Journal entries with `after < index` (log indexes are integers), in index order, still encoded (pieces joined). */
  *journalRaw(group: string, after: number, transaction?: Transaction): Iterable<[number, Buffer]> {
    const range = afterRange([group, 'journal'], after);
    for (const { base, value } of joinPieces(this.db.getRange({ ...range, ...(transaction ? { transaction } : {}) }), 3)) {
      yield [base[2] as number, value];
    }
  }

  /** Log indexes of the journal entries with `after < index`, ascending. */
  journalIndexes(group: string, after: number): number[] {
    const out: number[] = [];
    for (const key of this.db.getKeys(afterRange([group, 'journal'], after))) if (out[out.length - 1] !== key[2]) out.push(key[2] as number);
    return out;
  }

  getJournal(group: string, index: number): JournalEntry | undefined {
    const bytes = getPieced(this.db, [group, 'journal', index]);
    return bytes === undefined ? undefined : this.open<JournalEntry>(group, `index journal entry ${index}`, bytes);
  }

  /** Inside a write transaction: a reshard's journal entry (a write's moving keys, docs/resharding.md), already encoded. */
  putMoves(group: string, index: number, value: Uint8Array): void {
    this.db.putSync([group, 'moves', index], Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  /** The reshard journal's entries with `after < index`, in index order, still encoded. */
  *movesRaw(group: string, after: number, transaction?: Transaction): Iterable<[number, Buffer]> {
    const range = { start: [group, 'moves', after], end: [group, 'moves', Number.MAX_SAFE_INTEGER], exclusiveStart: true };
    for (const { key, value } of this.db.getRange({ ...range, ...(transaction ? { transaction } : {}) })) yield [key[2] as number, value];
  }

  /** Inside a write transaction: drops the reshard journal (the reshard ended). */
  clearMoves(group: string): void {
    for (const key of Array.from(this.db.getKeys({ start: [group, 'moves', 0], end: [group, 'moves', Number.MAX_SAFE_INTEGER] }))) this.db.removeSync(key);
  }

  /** Inside a write transaction: drops journal entries up to and including `upTo`. */
  truncateJournal(group: string, upTo: number): void {
    for (const key of Array.from(this.db.getKeys(throughRange([group, 'journal'], upTo)))) this.db.removeSync(key);
  }

  /** Inside a write transaction: removes every record of the group. */
  clear(group: string): void {
    for (const key of Array.from(this.db.getKeys({ start: [group], end: [groupEnd(group)] }))) this.db.removeSync(key);
  }
}
