/**
 * Points in LMDB: the node env's `points` sub-database, keyed by `[group, pointId]`. A value is
 * `u32 dim (LE) | dim float32 (LE) | CBOR metadata (absent when none)`, so a vector is stored as
 * its float32 bytes and read back without parsing.
 *
 * Writes (`put`, `remove`) are synchronous and meant to run inside an `env.transaction()`
 * callback, so that a batch commits atomically with whatever else that callback writes.
 */
import { endianness } from 'node:os';
import type { Database, Transaction } from 'lmdb';
import { DB_NAMES, type NodeEnv } from './node-env.js';
import { decodeValue, encodeValue, groupEnd } from './store-codec.js';

if (endianness() !== 'LE') throw new Error('the points store stores float32 little-endian and runs only on little-endian machines');

export interface StoredPoint {
  vector: Float32Array;
  metadata?: Record<string, unknown>;
}

type Key = [string, string];

export function encodePoint(vector: Float32Array, metadata: Record<string, unknown> | undefined): Buffer {
  const meta = metadata === undefined ? undefined : encodeValue(metadata);
  const out = Buffer.allocUnsafe(4 + vector.byteLength + (meta?.length ?? 0));
  out.writeUInt32LE(vector.length, 0);
  Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).copy(out, 4);
  meta?.copy(out, 4 + vector.byteLength);
  return out;
}

export function decodePoint(bytes: Uint8Array, withVector = true, withMetadata = true): Partial<StoredPoint> {
  const dim = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(0);
  const out: Partial<StoredPoint> = {};
  if (withVector) {
    const vector = new Float32Array(dim);
    new Uint8Array(vector.buffer).set(bytes.subarray(4, 4 + dim * 4));
    out.vector = vector;
  }
  const end = 4 + dim * 4;
  if (withMetadata && bytes.length > end) out.metadata = decodeValue<Record<string, unknown>>(bytes.subarray(end));
  return out;
}

export class PointsStore {
  private readonly db: Database<Buffer, Key>;

  constructor(env: NodeEnv) {
    this.db = env.openDB<Buffer, Key>({ name: DB_NAMES.points, encoding: 'binary' });
  }

  has(group: string, id: string): boolean {
    return this.db.doesExist([group, id]);
  }

  get(group: string, id: string, opts: { withVector: boolean; withMetadata: boolean }): Partial<StoredPoint> | undefined {
    const bytes = this.db.get([group, id]);
    return bytes === undefined ? undefined : decodePoint(bytes, opts.withVector, opts.withMetadata);
  }

  /** Inside a write transaction. */
  /** The stored value of a point, still encoded (what {@link putRaw} takes). */
  getRaw(group: string, id: string): Buffer | undefined {
    return this.db.get([group, id]);
  }

  put(group: string, id: string, vector: Float32Array, metadata: Record<string, unknown> | undefined): void {
    this.db.putSync([group, id], encodePoint(vector, metadata));
  }

  /** Inside a write transaction. Writes an already-encoded value (a snapshot's). */
  putRaw(group: string, id: string, value: Uint8Array): void {
    this.db.putSync([group, id], Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  /** Inside a write transaction. Returns whether the point existed. */
  remove(group: string, id: string): boolean {
    return this.db.removeSync([group, id]);
  }

  /** The group's points in id order, as raw values; with `transaction`, as of that read transaction. */
  *entries(group: string, transaction?: Transaction, after?: string): Iterable<[string, Buffer]> {
    const start = after === undefined ? { start: [group] as Key | [string] } : { start: [group, after] as Key, exclusiveStart: true };
    for (const { key, value } of this.db.getRange({ ...start, end: [groupEnd(group)], ...(transaction ? { transaction } : {}) })) {
      yield [key[1], value];
    }
  }

  /** The group's point ids in id order. */
  *ids(group: string): Iterable<string> {
    for (const key of this.db.getKeys({ start: [group], end: [groupEnd(group)] })) yield (key as Key)[1];
  }

  /** Inside a write transaction: removes all of the group's points. */
  clear(group: string): void {
    for (const key of Array.from(this.db.getKeys({ start: [group], end: [groupEnd(group)] }))) this.db.removeSync(key);
  }
}
