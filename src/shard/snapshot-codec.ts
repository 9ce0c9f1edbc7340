/**
 * The byte stream of a shard snapshot: a sequence of frames, each `u32 length (LE) | CBOR value`.
 * A reader may get the stream cut anywhere ({@link FrameReader} reassembles frames across chunk
 * boundaries). Order: one header, the checkpoint's files, points, dedup entries, journal
 * entries, and an end frame with counts, so a truncated stream is detected.
 */
import { Decoder, Encoder } from 'cbor-x';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { Metric } from '../index/mod.js';

export const SNAPSHOT_FORMAT = 1;

export type SnapshotFrame =
  | { t: 'header'; format: number; dim: number; metric: Metric; appliedIndex: number; count: number; maxAt: number; checkpointIndex: number }
  | { t: 'file'; name: string; data: Uint8Array }
  | { t: 'points'; entries: [id: string, value: Uint8Array][] }
  | { t: 'dedup'; entries: [requestId: string, entry: { result: unknown; at: number }][] }
  | { t: 'journal'; entries: [index: number, value: Uint8Array][] }
  | { t: 'end'; points: number; dedup: number; journal: number; fileBytes: number };

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

export function encodeFrame(frame: SnapshotFrame): Uint8Array {
  const body = encoder.encode(frame);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Reassembles frames from chunks cut anywhere. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): SnapshotFrame[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const frames: SnapshotFrame[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (this.buf.length < 4 + len) break;
      let frame: SnapshotFrame;
      try {
        frame = decoder.decode(this.buf.subarray(4, 4 + len)) as SnapshotFrame;
      } catch (err) {
        throw new InvalidArgumentError(`snapshot frame does not decode: ${(err as Error).message}`, { cause: err });
      }
      frames.push(frame);
      this.buf = this.buf.subarray(4 + len);
    }
    return frames;
  }

  /** Throws unless the stream ended on a frame boundary. */
  finish(): void {
    if (this.buf.length > 0) throw new InvalidArgumentError(`snapshot stream ends inside a frame (${this.buf.length} bytes left over)`);
  }
}
