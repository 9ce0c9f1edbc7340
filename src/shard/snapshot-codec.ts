/**
 * The byte stream of a shard snapshot: a sequence of frames, each `u32 length (LE) | CBOR value`.
 * A reader may get the stream cut anywhere ({@link FrameReader} reassembles frames across chunk
 * boundaries). Order: one header, the checkpoint's files, points, dedup entries, journal
 * entries, reshard moves, change-stream outbox records, and an end frame with counts, so a
 * truncated stream is detected. Frames added later (`moves`, `changes`) are counted in the end
 * frame under optional fields: a snapshot taken before they existed reads as having none.
 */
import { Decoder, Encoder } from 'cbor-x';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { Metric } from '../index/mod.js';
import type { ReshardState } from './reshard-state.js';

export const SNAPSHOT_FORMAT = 1;

export type SnapshotFrame =
  /** `reshard` and `hidden`: the shard's part in a reshard (absent in snapshots taken before resharding existed). */
  | { t: 'header'; format: number; dim: number; metric: Metric; appliedIndex: number; count: number; maxAt: number; checkpointIndex: number; reshard?: ReshardState | null; hidden?: number }
  | { t: 'file'; name: string; data: Uint8Array }
  | { t: 'points'; entries: [id: string, value: Uint8Array][] }
  | { t: 'dedup'; entries: [requestId: string, entry: { result: unknown; at: number }][] }
  | { t: 'journal'; entries: [index: number, value: Uint8Array][] }
  /** The reshard journal (a source's writes of moving keys, docs/resharding.md). */
  | { t: 'moves'; entries: [index: number, value: Uint8Array][] }
  /** The change-stream outbox (docs/changes.md): sealed records not yet published and pruned. */
  | { t: 'changes'; entries: [index: number, value: Uint8Array][] }
  | { t: 'end'; points: number; dedup: number; journal: number; fileBytes: number; moves?: number; changes?: number };

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

export function encodeFrame(frame: SnapshotFrame): Uint8Array {
  const body = encoder.encode(frame);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Reassembles frames from chunks cut anywhere, copying each byte about once. */
export class FrameReader {
  private parts: Buffer[] = [];
  private length = 0;

  push(chunk: Uint8Array): SnapshotFrame[] {
    this.parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.length += chunk.byteLength;
    const frames: SnapshotFrame[] = [];
    for (;;) {
      if (this.length < 4) break;
      const head = this.contiguous(4);
      const len = head.readUInt32LE(0);
      if (this.length < 4 + len) break;
      const buf = this.contiguous(4 + len);
      try {
        frames.push(decoder.decode(buf.subarray(4, 4 + len)) as SnapshotFrame);
      } catch (err) {
        throw new InvalidArgumentError(`snapshot frame does not decode: ${(err as Error).message}`, { cause: err });
      }
      this.consume(4 + len);
    }
    return frames;
  }

  /** Throws unless the stream ended on a frame boundary. */
  finish(): void {
    if (this.length > 0) throw new InvalidArgumentError(`snapshot stream ends inside a frame (${this.length} bytes left over)`);
  }

  /** The first part, made to hold at least `n` bytes (joining parts only when a frame spans them). */
  private contiguous(n: number): Buffer {
    const first = this.parts[0] as Buffer;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.parts);
    this.parts = [joined];
    return joined;
  }

  private consume(n: number): void {
    const first = this.parts[0] as Buffer;
    this.length -= n;
    if (first.length === n) this.parts.shift();
    else this.parts[0] = first.subarray(n);
  }
}
