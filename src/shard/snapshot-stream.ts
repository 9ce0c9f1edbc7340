/**
 * A snapshot's chunks, produced lazily from a pinned LMDB read transaction and open checkpoint
 * files. Reading to the end, an error, or `return()` (a `for await` that breaks) releases them.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Transaction } from 'lmdb';
import type { DedupStore } from '../storage/dedup-store.js';
import type { PointsStore } from '../storage/points-store.js';
import type { ShardMetaStore } from '../storage/shard-meta-store.js';
import type { ChangeOutbox } from '../storage/change-outbox.js';
import type { NodeEnv } from '../storage/node-env.js';
import { InternalError } from '../runtime/errors.js';
import type { ApplyContext } from './apply-command.js';
import { checkpointDirName } from './index-checkpoints.js';
import type { ShardMeta } from './shard-meta.js';
import { encodeFrame, SNAPSHOT_FORMAT, type SnapshotFrame } from './snapshot-codec.js';

/** Roughly how many bytes of payload go in one frame (= one chunk). */
export const SNAPSHOT_FRAME_BYTES = 1 << 20;
/** Points, and journal entries, whose sizes {@link estimateSnapshotBytes} averages. */
const SAMPLE = 64;
/** Bytes a frame adds to its payload (length prefix, CBOR map and keys), and a record to its key and value (CBOR array and headers). */
const FRAME_OVERHEAD = 32;
const RECORD_OVERHEAD = 8;

export interface SnapshotSource {
  group: string;
  meta: ShardMeta;
  txn: Transaction;
  files: { name: string; fd: number }[];
  points: PointsStore;
  dedup: DedupStore;
  shardMeta: ShardMetaStore<ShardMeta>;
  outbox: ChangeOutbox;
}

function* frames(src: SnapshotSource): Generator<SnapshotFrame> {
  const { meta, group, txn } = src;
  yield { t: 'header', format: SNAPSHOT_FORMAT, dim: meta.dim, metric: meta.metric, appliedIndex: meta.appliedIndex, count: meta.count, maxAt: meta.maxAt, checkpointIndex: meta.checkpointIndex, reshard: meta.reshard ?? null, hidden: meta.hidden ?? 0 };
  let fileBytes = 0;
  for (const f of src.files) {
    for (;;) {
      const buf = Buffer.allocUnsafe(SNAPSHOT_FRAME_BYTES);
      const n = readSync(f.fd, buf, 0, buf.length, null);
      if (n === 0) break;
      fileBytes += n;
      yield { t: 'file', name: f.name, data: buf.subarray(0, n) };
    }
  }
  const counts = { points: 0, dedup: 0, journal: 0 };
  let batch: [string, Uint8Array][] = [];
  let bytes = 0;
  for (const [id, value] of src.points.entries(group, txn)) {
    src.points.check(group, id, value); // a damaged value is not sent on
    batch.push([id, value]);
    counts.points++;
    bytes += value.length + id.length;
    if (bytes >= SNAPSHOT_FRAME_BYTES) {
      yield { t: 'points', entries: batch };
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield { t: 'points', entries: batch };
  const dedup = Array.from(src.dedup.entries(group, txn));
  counts.dedup = dedup.length;
  for (let i = 0; i < dedup.length; i += 4096) yield { t: 'dedup', entries: dedup.slice(i, i + 4096) };
  let journal: [number, Uint8Array][] = [];
  bytes = 0;
  for (const [index, value] of src.shardMeta.journalRaw(group, meta.checkpointIndex, txn)) {
    if (index > meta.appliedIndex) break;
    journal.push([index, value]);
    counts.journal++;
    bytes += value.length;
    if (bytes >= SNAPSHOT_FRAME_BYTES) {
      yield { t: 'journal', entries: journal };
      journal = [];
      bytes = 0;
    }
  }
  if (journal.length > 0) yield { t: 'journal', entries: journal };
  let moves: [number, Uint8Array][] = [];
  let movesCount = 0;
  bytes = 0;
  for (const [index, value] of src.shardMeta.movesRaw(group, 0, txn)) {
    if (index > meta.appliedIndex) break;
    moves.push([index, value]);
    movesCount++;
    bytes += value.length;
    if (bytes >= SNAPSHOT_FRAME_BYTES) {
      yield { t: 'moves', entries: moves };
      moves = [];
      bytes = 0;
    }
  }
  if (moves.length > 0) yield { t: 'moves', entries: moves };
  let changes: [number, Uint8Array][] = [];
  let changesCount = 0;
  bytes = 0;
  for (const [index, value] of src.outbox.raw(group, 0, txn)) {
    if (index > meta.appliedIndex) break;
    changes.push([index, value]);
    changesCount++;
    bytes += value.length;
    if (bytes >= SNAPSHOT_FRAME_BYTES) {
      yield { t: 'changes', entries: changes };
      changes = [];
      bytes = 0;
    }
  }
  if (changes.length > 0) yield { t: 'changes', entries: changes };
  yield { t: 'end', ...counts, fileBytes, moves: movesCount, changes: changesCount };
}

/**
 * An estimate of the bytes {@link SnapshotStream} yields for `src` (what the shard state machine
 * reports as its image's size, for a receiver's progress): the checkpoint files' sizes, the
 * point count times the average size of the first {@link SAMPLE} points in id order (id,
 * vector, metadata), the journal's entry count times the average of its first ones, and the
 * framing. The dedup table is left out (recent requests' small results, next to vectors). It is
 * an estimate, not a promise: ids and metadata vary from point to point, and a sample in id
 * order need not be typical. Cheap: one fstat per file and at most 2 × SAMPLE values read.
 */
export function estimateSnapshotBytes(src: SnapshotSource): number {
  let bytes = FRAME_OVERHEAD * 2;
  for (const f of src.files) {
    const size = fstatSync(f.fd).size;
    bytes += size + FRAME_OVERHEAD * Math.max(1, Math.ceil(size / SNAPSHOT_FRAME_BYTES));
  }
  const average = (items: Iterable<[string | number, Uint8Array]>): number => {
    let n = 0;
    let sum = 0;
    for (const [key, value] of items) {
      sum += (typeof key === 'string' ? Buffer.byteLength(key) : 9) + value.length + RECORD_OVERHEAD;
      if (++n >= SAMPLE) break;
    }
    return n === 0 ? 0 : sum / n;
  };
  const pointBytes = src.meta.count * average(src.points.entries(src.group, src.txn));
  bytes += pointBytes + FRAME_OVERHEAD * Math.ceil(pointBytes / SNAPSHOT_FRAME_BYTES);
  const journal = src.shardMeta.journalIndexes(src.group, src.meta.checkpointIndex).filter((i) => i <= src.meta.appliedIndex).length;
  if (journal > 0) {
    const journalBytes = journal * average(src.shardMeta.journalRaw(src.group, src.meta.checkpointIndex, src.txn));
    bytes += journalBytes + FRAME_OVERHEAD * Math.ceil(journalBytes / SNAPSHOT_FRAME_BYTES);
  }
  return Math.round(bytes);
}

export class SnapshotStream implements AsyncIterableIterator<Uint8Array> {
  private readonly it: Generator<SnapshotFrame>;
  private released = false;

  constructor(private readonly src: SnapshotSource) {
    this.it = frames(src);
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.released) return { done: true, value: undefined };
    try {
      const r = this.it.next();
      if (r.done) {
        this.release();
        return { done: true, value: undefined };
      }
      return { done: false, value: encodeFrame(r.value) };
    } catch (err) {
      this.release();
      throw err;
    }
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    this.release();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this;
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.src.txn.done();
    for (const f of this.src.files) closeSync(f.fd);
  }
}

/**
 * The shard state machine's snapshot of `meta` (its own, at its applied index) as of one LMDB
 * read transaction, which must hold that same meta: the group's records, and the files of
 * checkpoint `meta.checkpointIndex` or, with `saved`, of the index saved for a backup there
 * (the image then says checkpoint = applied index). On an error the transaction and the files
 * are released.
 */
export function openSnapshot(o: { env: NodeEnv; dir: string; ctx: ApplyContext; meta: ShardMeta; saved: string | undefined }): { stream: SnapshotStream; bytes: number } {
  const { meta, saved } = o;
  const txn = o.env.useReadTransaction();
  const files: { name: string; fd: number }[] = [];
  try {
    const stored = o.ctx.meta.getMeta(o.ctx.group, txn);
    if ((stored?.appliedIndex ?? 0) !== meta.appliedIndex || (stored?.checkpointIndex ?? 0) !== meta.checkpointIndex) {
      throw new Error(`the read transaction is at applied index ${stored?.appliedIndex ?? 0}, the state machine at ${meta.appliedIndex}`);
    }
    const image = saved ? { ...meta, checkpointIndex: meta.appliedIndex } : meta;
    const d = saved ?? join(o.dir, checkpointDirName(meta.checkpointIndex));
    if (image.checkpointIndex > 0) {
      for (const name of readdirSync(d).sort()) files.push({ name, fd: openSync(join(d, name), 'r') });
    }
    const source = { group: o.ctx.group, meta: image, txn, files, points: o.ctx.points, dedup: o.ctx.dedup, shardMeta: o.ctx.meta, outbox: o.ctx.outbox };
    const bytes = estimateSnapshotBytes(source);
    return { stream: new SnapshotStream(source), bytes };
  } catch (err) {
    txn.done();
    for (const f of files) closeSync(f.fd);
    throw new InternalError(`snapshot at ${meta.appliedIndex} failed: ${(err as Error).message}`, { cause: err });
  }
}
