/**
 * Points in LMDB: the node env's `points` sub-database, keyed by `[group, pointId]`. A value is
 * `u32 dim (LE) | dim float32 (LE) | CBOR metadata (absent when none)`, so a vector is stored as
 * its float32 bytes and read back without parsing. A point of a `custom`-sharded collection also
 * keeps its shard key (which shard owns it, after a reshard too): its dim has the top bit set and
 * `u16 length (LE) | shard key (UTF-8)` follows the vector.
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
  /** The point's shard key (custom sharding only). */
  shardKey?: string;
}

type Key = [string, string];

const HAS_KEY = 0x8000_0000;

export function encodePoint(vector: Float32Array, metadata: Record<string, unknown> | undefined, shardKey?: string): Buffer {
  const meta = metadata === undefined ? undefined : encodeValue(metadata);
  const key = shardKey === undefined ? undefined : Buffer.from(shardKey, 'utf8');
  const keyBytes = key ? 2 + key.length : 0;
  const out = Buffer.allocUnsafe(4 + vector.byteLength + keyBytes + (meta?.length ?? 0));
  out.writeUInt32LE(key ? (vector.length | HAS_KEY) >>> 0 : vector.length, 0);
  Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).copy(out, 4);
  if (key) {
    out.writeUInt16LE(key.length, 4 + vector.byteLength);
    key.copy(out, 6 + vector.byteLength);
  }
  meta?.copy(out, 4 + vector.byteLength + keyBytes);
  return out;
}

/** Where a value's parts are. */
function layout(bytes: Uint8Array): { dim: number; key: [number, number] | null; meta: number } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = b.readUInt32LE(0);
  const dim = (head & ~HAS_KEY) >>> 0;
  const end = 4 + dim * 4;
  if ((head & HAS_KEY) === 0) return { dim, key: null, meta: end };
  const len = b.readUInt16LE(end);
  return { dim, key: [end + 2, end + 2 + len], meta: end + 2 + len };
}

export function decodePoint(bytes: Uint8Array, withVector = true, withMetadata = true): Partial<StoredPoint> {
  const { dim, key, meta } = layout(bytes);
  const out: Partial<StoredPoint> = {};
  if (withVector) {
    const vector = new Float32Array(dim);
    new Uint8Array(vector.buffer).set(bytes.subarray(4, 4 + dim * 4));
    out.vector = vector;
  }
  if (withMetadata && bytes.length > meta) out.metadata = decodeValue<Record<string, unknown>>(bytes.subarray(meta));
  if (key) out.shardKey = Buffer.from(bytes.buffer, bytes.byteOffset + key[0], key[1] - key[0]).toString('utf8');
  return out;
}

/** A stored value's shard key, or undefined (no vector or metadata decoded). */
export function shardKeyOf(bytes: Uint8Array): string | undefined {
  const { key } = layout(bytes);
  return key ? Buffer.from(bytes.buffer, bytes.byteOffset + key[0], key[1] - key[0]).toString('utf8') : undefined;
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
  /** The shard key stored with a point (custom sharding), or undefined (none, or no such point). */
  routeOf(group: string, id: string): string | undefined {
    const bytes = this.db.get([group, id]);
    return bytes === undefined ? undefined : shardKeyOf(bytes);
  }

  /** The stored value of a point, still encoded (what {@link putRaw} takes). */
  getRaw(group: string, id: string): Buffer | undefined {
    return this.db.get([group, id]);
  }

  put(group: string, id: string, vector: Float32Array, metadata: Record<string, unknown> | undefined, shardKey?: string): void {
    this.db.putSync([group, id], encodePoint(vector, metadata, shardKey));
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
