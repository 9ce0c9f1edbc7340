/**
 * The index worker's view of a shard's points in LMDB (src/index/vector-reader.ts): an HNSW index
 * of a shard keeps no copy of its vectors and reads them here, from the memory map of the node's
 * environment, which the worker thread opens by its path (lmdb-js shares one environment per
 * process between threads; the reader only reads).
 *
 * Consistency: a shard commits a batch to LMDB, then applies it to its index, and stamps the index
 * with the applied log index. A read begins one LMDB read transaction and checks that the group's
 * meta record there is at the index's stamp (by the record's CRC-32 once it has been seen to be,
 * else by decoding it); when it is not (the store is a batch ahead), {@link PointsReader.begin} says
 * so and the caller retries after the index's next apply. Every vector of one read comes from
 * that one transaction.
 *
 * This module is loaded by URL in the index worker (the index folder does not import LMDB):
 * {@link createVectorReader} is its entry point, {@link pointsReaderSpec} names it.
 */
import zlib from 'node:zlib';
import type { Database, Key, RootDatabase, Transaction } from 'lmdb';
import { useNativeCrc32 } from '../raft/crc32.js';
import { CorruptDataError } from '../runtime/errors.js';
import { DB_NAMES, openNodeEnv } from './node-env.js';
import { checkPointValue } from './points-store.js';
import { decodeSealed } from './store-codec.js';

// The worker thread is an isolate of its own: give it node's CRC-32 too (a 784-dim value: ~8 µs in JavaScript).
useNativeCrc32((zlib as { crc32?: (data: Uint8Array, value: number) => number }).crc32);

/** The header's flag bits (points-store.ts); the rest of the first u32 is the dim. */
const FLAGS = 0xc000_0000;
const SEALED = 0xff;

interface Shared {
  env: RootDatabase;
  points: Database<Buffer, [string, string]>;
  meta: Database<Buffer, (string | number)[]>;
  users: number;
}

/** Environments this thread has open, by path, with how many readers use each. */
const open = new Map<string, Shared>();

/**
 * The value under `key` as of `transaction`, in lmdb-js's reused read buffer (valid until the next
 * read). getBinaryFast takes a transaction (read.js), which its types leave out. The buffer it
 * returns is one shared buffer whose `length` lmdb-js sets to the value's (its `byteLength` is the
 * whole buffer's): {@link exact} cuts it where a function needs the real bounds.
 */
function getIn<K extends Key>(db: Database<Buffer, K>, key: K, options: { transaction: Transaction }): Buffer | undefined {
  return (db.getBinaryFast as (key: K, options: { transaction: Transaction }) => Buffer | undefined).call(db, key, options);
}

function exact(b: Buffer): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.length);
}

function acquire(path: string): Shared {
  let s = open.get(path);
  if (!s) {
    const env = openNodeEnv({ path });
    s = {
      env,
      points: env.openDB<Buffer, [string, string]>({ name: DB_NAMES.points, encoding: 'binary' }),
      meta: env.openDB<Buffer, (string | number)[]>({ name: DB_NAMES.shardMeta, encoding: 'binary' }),
      users: 0,
    };
    open.set(path, s);
  }
  s.users++;
  return s;
}

function release(path: string): void {
  const s = open.get(path);
  if (!s || --s.users > 0) return;
  open.delete(path);
  void s.env.close();
}

export interface PointsReaderConfig {
  /** The node environment's directory. */
  path: string;
  group: string;
}

export class PointsReader {
  private readonly shared: Shared;
  private readonly scratch: Float32Array;
  private readonly scratchBytes: Uint8Array;
  private readonly file: string;
  /** A view of lmdb-js's read buffer where it puts a value's vector, and which buffer and offset it is of. */
  private view: Float32Array;
  private viewOf: ArrayBufferLike | undefined;
  private viewAt = -1;
  private txn: Transaction | undefined;
  /** The read's options, and one key reused by every read (lmdb-js encodes it before it returns). */
  private readOptions: { transaction: Transaction } | undefined;
  private readonly key: [string, string];
  /** The CRC-32 of the meta record last seen at the index's stamp, and that stamp. */
  private freshCrc = -1;
  private freshStamp = -1;
  private closed = false;

  constructor(
    private readonly config: PointsReaderConfig,
    private readonly dim: number,
  ) {
    this.shared = acquire(config.path);
    this.scratch = new Float32Array(dim);
    this.scratchBytes = new Uint8Array(this.scratch.buffer);
    this.view = this.scratch;
    this.key = [config.group, ''];
    this.file = `${config.path}/data.mdb`;
  }

  begin(stamp: number): boolean {
    const txn = this.shared.env.useReadTransaction();
    let fresh: boolean;
    try {
      fresh = this.at(stamp, txn);
    } catch (err) {
      txn.done();
      throw err;
    }
    if (!fresh) {
      txn.done();
      return false;
    }
    this.txn = txn;
    this.readOptions = { transaction: txn };
    return true;
  }

  private at(stamp: number, txn: Transaction): boolean {
    const bytes = getIn(this.shared.meta, [this.config.group, 'meta'], { transaction: txn });
    // no record: an empty (or wiped) group, whose index is at 0
    if (bytes === undefined) return stamp === 0;
    const crc = bytes.length >= 5 && bytes[0] === SEALED ? bytes.readUInt32LE(1) : -2;
    if (crc === this.freshCrc && stamp === this.freshStamp && crc >= 0) return true;
    let applied: number;
    try {
      applied = decodeSealed<{ appliedIndex: number }>(exact(bytes)).appliedIndex;
    } catch (err) {
      throw new CorruptDataError(this.file, `the meta record of ${this.config.group} in ${this.file} is damaged: ${(err as Error).message}`, { cause: err });
    }
    if (applied !== stamp) return false;
    this.freshCrc = crc;
    this.freshStamp = stamp;
    return true;
  }

  vector(id: string, verify: boolean): Float32Array {
    const options = this.readOptions;
    if (!options) throw new Error('PointsReader.vector outside begin/end');
    this.key[1] = id;
    const bytes = getIn(this.shared.points, this.key, options);
    const where = (): string => `point ${JSON.stringify(id)} of ${this.config.group} in ${this.file}`;
    if (bytes === undefined) throw new CorruptDataError(this.file, `${where()} is missing: the index holds it at the same applied index`);
    const n = this.dim * 4;
    if (bytes.length < 4 + n || ((bytes.readUInt32LE(0) & ~FLAGS) >>> 0) !== this.dim) {
      throw new CorruptDataError(this.file, `${where()} is damaged: its header does not hold a ${this.dim}-dimensional vector`);
    }
    if (verify) {
      try {
        checkPointValue(exact(bytes));
      } catch (err) {
        throw new CorruptDataError(this.file, `${where()} is damaged: ${(err as Error).message}`, { cause: err });
      }
    }
    // lmdb-js copies every value to the start of the same buffer: a view of it serves every read without a copy
    if (bytes.buffer === this.viewOf && bytes.byteOffset === this.viewAt) return this.view;
    if ((bytes.byteOffset & 3) === 0) {
      this.viewOf = bytes.buffer;
      this.viewAt = bytes.byteOffset;
      this.view = new Float32Array(bytes.buffer, bytes.byteOffset + 4, this.dim);
      return this.view;
    }
    this.scratchBytes.set(bytes.subarray(4, 4 + n));
    return this.scratch;
  }

  end(): void {
    this.txn?.done();
    this.txn = undefined;
    this.readOptions = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.end();
    release(this.config.path);
  }
}

/** The index worker's entry point (vector-reader.ts, VectorReaderSpec). */
export function createVectorReader(config: Record<string, unknown>, dim: number): PointsReader {
  const { path, group } = config;
  if (typeof path !== 'string' || typeof group !== 'string') throw new Error(`a points reader needs a path and a group, got ${JSON.stringify(config)}`);
  return new PointsReader({ path, group }, dim);
}

/** The spec an index is created with to read its vectors from `group`'s points in the environment at `path`. */
export function pointsReaderSpec(path: string, group: string): { module: string; config: Record<string, unknown> } {
  return { module: new URL('./points-reader.js', import.meta.url).href, config: { path, group } };
}
