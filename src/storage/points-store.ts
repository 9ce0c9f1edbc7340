/**
 * Points in LMDB: the node env's `points` sub-database, keyed by `[group, pointId]`. A value is
 * `u32 head (LE) | dim float32 (LE) | CBOR metadata (absent when none) | u32 CRC-32 (LE)`, where
 * the head is the dim with flag bits, so a vector is stored as its float32 bytes and read back
 * without parsing. A point of a `custom`-sharded collection also keeps its shard key (which shard
 * owns it, after a reshard too): flag {@link HAS_KEY}, and `u16 length (LE) | shard key (UTF-8)`
 * follows the vector. Flag {@link HAS_CRC}: the value ends with the CRC-32 of every byte before
 * it, checked on every read ({@link decodePoint}, {@link checkPointValue}); LMDB keeps no
 * checksum of its own, so without it a flipped bit in a vector would be served as it is. Values
 * written before the checksum existed have no such flag and are read unchecked.
 *
 * Writes (`put`, `remove`) are synchronous and meant to run inside an `env.transaction()`
 * callback, so that a batch commits atomically with whatever else that callback writes.
 */
import { endianness } from 'node:os';
import type { Database, Transaction } from 'lmdb';
import { crc32 } from '../raft/crc32.js';
import { CorruptDataError } from '../runtime/errors.js';
import { DB_NAMES, dataFileOf, type NodeEnv } from './node-env.js';
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
const HAS_CRC = 0x4000_0000;
const FLAGS = (HAS_KEY | HAS_CRC) >>> 0;
/** The largest dim a value may claim (the protocol's limit is 4096). */
const MAX_DIM = 65_536;

export function encodePoint(vector: Float32Array, metadata: Record<string, unknown> | undefined, shardKey?: string): Buffer {
  const meta = metadata === undefined ? undefined : encodeValue(metadata);
  const key = shardKey === undefined ? undefined : Buffer.from(shardKey, 'utf8');
  const keyBytes = key ? 2 + key.length : 0;
  const body = 4 + vector.byteLength + keyBytes + (meta?.length ?? 0);
  const out = Buffer.allocUnsafe(body + 4);
  out.writeUInt32LE((vector.length | HAS_CRC | (key ? HAS_KEY : 0)) >>> 0, 0);
  Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).copy(out, 4);
  if (key) {
    out.writeUInt16LE(key.length, 4 + vector.byteLength);
    key.copy(out, 6 + vector.byteLength);
  }
  meta?.copy(out, 4 + vector.byteLength + keyBytes);
  out.writeUInt32LE(crc32(out.subarray(0, body)), body);
  return out;
}

/** A stored value that fails its checks: thrown by the decoders, named by the store (see {@link PointsStore}). */
export class DamagedValue extends Error {}

/** Where a value's parts are; throws DamagedValue when its checksum or its lengths do not hold. */
function layout(bytes: Uint8Array): { dim: number; key: [number, number] | null; meta: number; end: number } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 4) throw new DamagedValue(`a value of ${b.length} bytes is shorter than its header`);
  const head = b.readUInt32LE(0);
  let end = b.length;
  if (head & HAS_CRC) {
    if (b.length < 8) throw new DamagedValue(`a value of ${b.length} bytes is too short for its checksum`);
    end -= 4;
    const want = b.readUInt32LE(end);
    const got = crc32(b.subarray(0, end));
    if (got !== want) throw new DamagedValue(`its CRC-32 is ${got.toString(16).padStart(8, '0')}, stored as ${want.toString(16).padStart(8, '0')}`);
  }
  const dim = (head & ~FLAGS) >>> 0;
  const vecEnd = 4 + dim * 4;
  if (dim < 1 || dim > MAX_DIM || vecEnd > end) throw new DamagedValue(`its header claims ${dim} dimensions, which do not fit its ${end} bytes`);
  if ((head & HAS_KEY) === 0) return { dim, key: null, meta: vecEnd, end };
  if (vecEnd + 2 > end) throw new DamagedValue(`its shard key's length is past its ${end} bytes`);
  const len = b.readUInt16LE(vecEnd);
  if (vecEnd + 2 + len > end) throw new DamagedValue(`its shard key of ${len} bytes is past its ${end} bytes`);
  return { dim, key: [vecEnd + 2, vecEnd + 2 + len], meta: vecEnd + 2 + len, end };
}

/** Throws DamagedValue unless `bytes` is a well-formed value whose checksum (if it has one) holds. */
export function checkPointValue(bytes: Uint8Array): void {
  layout(bytes);
}

export function decodePoint(bytes: Uint8Array, withVector = true, withMetadata = true): Partial<StoredPoint> {
  const { dim, key, meta, end } = layout(bytes);
  const out: Partial<StoredPoint> = {};
  if (withVector) {
    const vector = new Float32Array(dim);
    new Uint8Array(vector.buffer).set(bytes.subarray(4, 4 + dim * 4));
    out.vector = vector;
  }
  if (withMetadata && end > meta) {
    try {
      out.metadata = decodeValue<Record<string, unknown>>(bytes.subarray(meta, end));
    } catch (err) {
      throw new DamagedValue(`its metadata does not decode: ${(err as Error).message}`);
    }
  }
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

  private readonly file: string;

  constructor(env: NodeEnv) {
    this.db = env.openDB<Buffer, Key>({ name: DB_NAMES.points, encoding: 'binary' });
    this.file = dataFileOf(env);
  }

  /** A CorruptDataError naming the LMDB file, the group and the point. */
  damaged(group: string, id: string, err: unknown): Error {
    if (!(err instanceof DamagedValue)) return err as Error;
    return new CorruptDataError(this.file, `point ${JSON.stringify(id)} of ${group} in ${this.file} is damaged: ${err.message}`, { cause: err });
  }

  /** Throws CorruptDataError naming the point unless `value` is well formed and its checksum holds. */
  check(group: string, id: string, value: Uint8Array): void {
    try {
      layout(value);
    } catch (err) {
      throw this.damaged(group, id, err);
    }
  }

  /**
   * Checks every value of the group (its checksum, its lengths); throws CorruptDataError at the
   * first damaged one, or when LMDB fails to read the range. Returns how many values it read.
   * Yields to the event loop every `every` values.
   */
  async verify(group: string, every = 4096): Promise<number> {
    let n = 0;
    let last = '';
    try {
      // keys, then each value through lmdb-js's reused read buffer: a range of values would copy
      // every one into a new Buffer (measured by the earlier issue 21 attempt: ~20 MB of malloc
      // arena that a reopen kept for 20k points of 784 dims, ~1 KB a point)
      for (const key of this.db.getKeys({ start: [group], end: [groupEnd(group)] })) {
        const k = key as Key;
        last = k[1];
        const fast = this.db.getBinaryFast(k);
        if (fast === undefined) continue;
        try {
          // lmdb-js's reused buffer: `length` is the value's, `byteLength` the whole buffer's
          layout(Buffer.from(fast.buffer, fast.byteOffset, fast.length));
        } catch (err) {
          throw this.damaged(group, k[1], err);
        }
        if (++n % every === 0) await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      // LMDB's own structure (a b-tree page) damaged: measured, a page overwritten in its header is MDB_PAGE_NOTFOUND
      if (err instanceof Error && err.message.startsWith('MDB_')) {
        throw new CorruptDataError(this.file, `the points of ${group} in ${this.file} cannot be read past ${JSON.stringify(last)}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    return n;
  }

  has(group: string, id: string): boolean {
    return this.db.doesExist([group, id]);
  }

  get(group: string, id: string, opts: { withVector: boolean; withMetadata: boolean }): Partial<StoredPoint> | undefined {
    const bytes = this.db.get([group, id]);
    try {
      return bytes === undefined ? undefined : decodePoint(bytes, opts.withVector, opts.withMetadata);
    } catch (err) {
      throw this.damaged(group, id, err);
    }
  }

  /** Inside a write transaction. */
  /** The shard key stored with a point (custom sharding), or undefined (none, or no such point). */
  routeOf(group: string, id: string): string | undefined {
    const bytes = this.db.get([group, id]);
    try {
      return bytes === undefined ? undefined : shardKeyOf(bytes);
    } catch (err) {
      throw this.damaged(group, id, err);
    }
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
