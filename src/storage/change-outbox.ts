/**
 * A shard's change-stream outbox (docs/changes.md): `[group, 'changes', logIndex]` in the node
 * env's `shard-meta` sub-database, one record per applied write that changed something, written
 * in the apply's own LMDB transaction on every replica alike. The leader publishes the records to
 * the collection's JetStream stream in index order; a `changes-published` entry prunes them.
 *
 * Records are sealed with a CRC-32 (store-codec.ts): a damaged one is a CorruptDataError. The
 * group's records are removed with the rest of its `shard-meta` records (ShardMetaStore.clear).
 * A record longer than one page (an upsert's vectors) is stored as pieces
 * `[group, 'changes', logIndex, piece]` (pieces.ts); records written whole before read as they are.
 */
import type { Database, Transaction } from 'lmdb';
import { CorruptDataError } from '../runtime/errors.js';
import { DB_NAMES, dataFileOf, type NodeEnv } from './node-env.js';
import { decodeSealed, encodeSealed } from './store-codec.js';
import { afterRange, isFirstRecord, joinPieces, putPiecedSync, throughRange } from './pieces.js';

/** A point as an upsert stored it (the record's content is the same on every replica). */
export interface ChangePoint {
  id: string;
  vector: Float32Array;
  metadata?: Record<string, unknown>;
  shardKey?: string;
}

/**
 * One applied write. `time`: milliseconds since the epoch, the highest leader timestamp (`at`)
 * the shard had applied with this entry: the leader's clock when it took the write, never
 * decreasing within a shard, and carried by the log so every replica (and a new leader) has it.
 */
export type ChangeRecord = { op: 'upsert'; time: number; points: ChangePoint[] } | { op: 'delete'; time: number; ids: string[] };

type Key = (string | number)[];

export class ChangeOutbox {
  private readonly db: Database<Buffer, Key>;
  private readonly file: string;

  constructor(env: NodeEnv) {
    this.db = env.openDB<Buffer, Key>({ name: DB_NAMES.shardMeta, encoding: 'binary' });
    this.file = dataFileOf(env);
  }

  /** Inside a write transaction. */
  put(group: string, index: number, record: ChangeRecord): void {
    putPiecedSync(this.db, [group, 'changes', index], encodeSealed(record));
  }

  /** Inside a write transaction: a record as a snapshot carries it (already sealed; checked first). */
  putRaw(group: string, index: number, value: Uint8Array): void {
    this.open(group, index, value);
    putPiecedSync(this.db, [group, 'changes', index], value);
  }

  /** Inside a write transaction: drops the records up to and including `upTo` (published). Returns how many. */
  prune(group: string, upTo: number): number {
    const keys = Array.from(this.db.getKeys(throughRange([group, 'changes'], upTo)));
    for (const key of keys) this.db.removeSync(key);
    return keys.filter((key) => isFirstRecord(key, 3)).length;
  }

  /** At most `limit` records with `after < index`, in index order, decoded. */
  read(group: string, after: number, limit: number): [number, ChangeRecord][] {
    const out: [number, ChangeRecord][] = [];
    for (const [index, value] of this.raw(group, after)) {
      out.push([index, this.open(group, index, value)]);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Records with `after < index`, in index order, still encoded. */
  *raw(group: string, after: number, transaction?: Transaction): Iterable<[number, Buffer]> {
    const range = afterRange([group, 'changes'], after);
    for (const { base, value } of joinPieces(this.db.getRange({ ...range, ...(transaction ? { transaction } : {}) }), 3)) yield [base[2] as number, value];
  }

  /**
   * What the group's outbox holds (records not yet published and pruned): how many, and the
   * first, which is the oldest (records are in index order, and their `time` never decreases
   * within a shard). A point-in-time restore asks the leader this (docs/backups.md).
   */
  head(group: string): { count: number; oldest: { index: number; time: number } | null } {
    let oldest: { index: number; time: number } | null = null;
    for (const [index, value] of this.raw(group, -1)) {
      oldest = { index, time: this.open(group, index, value).time };
      break;
    }
    return { count: oldest === null ? 0 : this.count(group), oldest };
  }

  /** How many records the group holds (not yet published and pruned). */
  count(group: string): number {
    let n = 0;
    for (const key of this.db.getKeys(afterRange([group, 'changes'], -1))) if (isFirstRecord(key, 3)) n++;
    return n;
  }

  private open(group: string, index: number, bytes: Uint8Array): ChangeRecord {
    try {
      return decodeSealed<ChangeRecord>(bytes);
    } catch (err) {
      throw new CorruptDataError(this.file, `change-stream outbox record ${index} of ${group} in ${this.file} is damaged: ${(err as Error).message}`, { cause: err });
    }
  }
}
