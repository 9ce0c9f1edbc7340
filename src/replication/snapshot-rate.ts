/**
 * The host-wide limit on the bytes per second of snapshot chunks a node receives
 * (`RaftHost.setSnapshotRate`): a token bucket on the host's clock, shared by all its groups.
 * The receiver paces its senders by answering a chunk only once the bucket allows its bytes: a
 * leader sends a stream's next chunk only after the answer to the previous one.
 *
 * Each wait is capped at `maxWaitMs` (half the stall timeout: a stream whose next chunk does not
 * come within `snapshotStallMs` is aborted by both ends, and the sender counts the state
 * machine's time to consume the chunk in that too). Debt the cap does not cover is forgiven, so
 * the limit holds exactly only while one wait covers a chunk: at rates of at least
 * `chunkBytes / maxWaitMs` for one stream at a time (`streams × chunkBytes / maxWaitMs` for
 * several at once; with the defaults, 256 KiB chunks and a 3 s stall, about 175 KB/s per
 * stream). Below that, each chunk waits `maxWaitMs` and the rate is `chunkBytes / maxWaitMs` per
 * stream.
 */
import type { Clock } from '../runtime/clock.js';
import { InvalidArgumentError } from '../runtime/errors.js';

/** Milliseconds of bytes the bucket holds when full: a stream after a pause gets this much at once, and no more. */
const BURST_MS = 50;

export class SnapshotRateLimiter {
  /** Bytes per second; 0 = unlimited. */
  private rate = 0;
  /** Bytes that may arrive now without waiting; negative: bytes that arrived ahead of the rate. */
  private tokens = 0;
  private last: number;

  constructor(
    private readonly clock: Clock,
    private readonly maxWaitMs: number,
  ) {
    this.last = clock.now();
  }

  get bytesPerSec(): number {
    return this.rate;
  }

  /** Sets the rate (0 = unlimited). Starts the bucket empty: no burst right after a change. */
  setRate(bytesPerSec: number): void {
    if (typeof bytesPerSec !== 'number' || !Number.isFinite(bytesPerSec) || bytesPerSec < 0) throw new InvalidArgumentError(`bytesPerSec must be a number ≥ 0 (0: unlimited), got ${String(bytesPerSec)}`);
    this.rate = bytesPerSec;
    this.tokens = 0;
    this.last = this.clock.now();
  }

  /**
   * Counts `bytes` that just arrived; returns when (on the clock) their chunk may be answered:
   * now when under the rate, else once the bucket has refilled to cover them (at most
   * `maxWaitMs` from now).
   */
  take(bytes: number): number {
    const now = this.clock.now();
    if (this.rate <= 0) return now;
    this.tokens = Math.min(this.tokens + ((now - this.last) * this.rate) / 1000, (BURST_MS * this.rate) / 1000);
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens >= 0) return now;
    const waitMs = (-this.tokens * 1000) / this.rate;
    if (waitMs <= this.maxWaitMs) return now + waitMs;
    this.tokens = -(this.maxWaitMs * this.rate) / 1000;
    return now + this.maxWaitMs;
  }
}
