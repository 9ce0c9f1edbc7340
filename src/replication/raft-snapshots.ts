/**
 * InstallSnapshot, streamed. When a follower needs entries the leader has compacted away, the
 * leader's core emits a `snap` message; the host answers it by streaming the state machine's
 * current image in chunks (each a NATS request under the max payload, acknowledged once the
 * follower's state machine has used it, and only then followed by the next) and describes the image by the Raft metadata at its applied index. The
 * follower feeds the chunks to its state machine's `restore` as they arrive; once the image is
 * complete it steps the `snap` message into its core, which drops its log and persists the
 * snapshot point (before acknowledging, like any append).
 *
 * The receiving side counts the bytes each group received, shows the stream under way
 * ({@link GroupReplica.restoring}: bytes so far, the sender's estimate of the total, when it
 * began), and paces its senders to the node's snapshot rate ({@link SnapshotRateLimiter}) by
 * answering a chunk only once the rate allows its bytes.
 */
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { describeError } from '../runtime/errors.js';
import type { Message, NodeId } from '../raft/types.js';
import type { GroupReplica } from './raft-group.js';
import { ChunkQueue } from './raft-state-machine.js';
import type { RaftTransport, SnapshotChunk } from './raft-transport.js';
import { SnapshotRateLimiter } from './snapshot-rate.js';

type SnapMessage = Extract<Message, { type: 'snap' }>;

export class SnapshotStreams {
  /** Counters for tests and status. */
  readonly stats = { sent: 0, received: 0, failed: 0, bytesReceived: 0 };
  /** Paces the chunks this node receives, over all its groups. */
  readonly rate: SnapshotRateLimiter;

  constructor(
    private readonly transport: RaftTransport,
    private readonly node: string,
    private readonly chunkBytes: number,
    /** A chunk not answered (or not followed by the next) within this is a failed stream. */
    private readonly stallMs: number,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.rate = new SnapshotRateLimiter(clock, stallMs / 2);
  }

  /** Leader side: streams `g`'s state machine image to `m.to`, then reports the outcome to the core. */
  send(g: GroupReplica, m: SnapMessage, wake: () => void): void {
    if (g.streaming.has(m.to)) return;
    g.streaming.add(m.to);
    void this.stream(g, m).then(
      (ok) => {
        if (ok) this.stats.sent++;
        else this.stats.failed++;
        g.core.reportSnapshot(m.to, ok);
      },
      (err: unknown) => {
        this.stats.failed++;
        this.log.warn('snapshot stream failed', { group: g.id, to: m.to, error: describeError(err) });
        g.core.reportSnapshot(m.to, false);
      },
    ).finally(() => {
      g.streaming.delete(m.to);
      wake();
    });
  }

  private async stream(g: GroupReplica, m: SnapMessage): Promise<boolean> {
    const image = await g.sm.snapshot();
    const msg: SnapMessage = { ...m, snapshot: g.core.snapshotMetaAt(image.appliedIndex) };
    const limit = Math.max(1, Math.min(this.chunkBytes, Math.floor(this.transport.maxPayload / 2)));
    let seq = 0;
    const total = image.bytes !== undefined && Number.isFinite(image.bytes) && image.bytes >= 0 ? { total: Math.round(image.bytes) } : {};
    const sendOne = (data: Uint8Array, cont: boolean, last: boolean): Promise<boolean> => {
      const chunk: SnapshotChunk = { k: 'chunk', from: this.node, group: g.id, msg, seq, data, cont, last, ...(seq === 0 ? total : {}) };
      seq++;
      return this.transport.sendChunk(m.to, chunk, this.stallMs);
    };
    for await (const piece of image.chunks) {
      let off = 0;
      do {
        const end = Math.min(piece.length, off + limit);
        if (!(await sendOne(piece.subarray(off, end), end < piece.length, false))) return false;
        off = end;
      } while (off < piece.length);
    }
    return sendOne(new Uint8Array(0), false, true);
  }

  /** Follower side: one chunk. Resolves true to ask for the next one, false to stop the stream. */
  async receive(g: GroupReplica, chunk: SnapshotChunk, wake: () => void): Promise<boolean> {
    if (chunk.seq === 0) {
      // A restore that has all its chunks is loading them: the new stream waits for it to end.
      if (g.restoring?.finishing) return false;
      if (g.restoring) this.abort(g, new Error('a new snapshot stream replaced this one'));
      const meta = chunk.msg.snapshot;
      if (chunk.msg.term < g.core.term) return false;
      if (!g.core.wantsSnapshot(meta)) {
        // Nothing to restore: this replica already holds the image's last entry (or has it
        // committed). The core still answers the leader with how far its log reaches, or the
        // leader would send the same snapshot again and again.
        g.core.step({ ...chunk.msg, from: chunk.msg.from as NodeId });
        wake();
        return false;
      }
      const queue = new ChunkQueue();
      const done = g.sm.restore(meta.index, queue);
      done.catch(() => undefined);
      const total = typeof chunk.total === 'number' && Number.isFinite(chunk.total) && chunk.total >= 0 ? chunk.total : null;
      g.restoring = { queue, done, timer: undefined, next: 1, parts: [], bytes: 0, totalBytes: total, startedAt: this.clock.now() };
      this.armStall(g);
    } else {
      const r = g.restoring;
      if (!r || r.next !== chunk.seq) return false;
      r.next++;
      this.armStall(g);
    }
    const r = g.restoring;
    if (!r) return false;
    r.bytes += chunk.data.length;
    g.snapshotBytesIn += chunk.data.length;
    this.stats.bytesReceived += chunk.data.length;
    const answerAt = this.rate.take(chunk.data.length);
    if (!chunk.last) {
      r.parts.push(chunk.data);
      if (!chunk.cont) {
        const piece = r.parts.length === 1 ? (r.parts[0] as Uint8Array) : Buffer.concat(r.parts);
        r.parts = [];
        // Acknowledged once the state machine has used the piece, not on arrival: the leader
        // sends the next one only then, so a slow restore never buffers the whole image here.
        return this.paced(g, r, r.queue.push(piece), answerAt);
      }
      return this.paced(g, r, Promise.resolve(true), answerAt);
    }
    r.queue.end();
    r.timer?.cancel();
    r.finishing = true;
    // The whole image is here: answered at once. Loading it (the index, the journal) can take
    // longer than the sender waits for an answer; the core answers the leader once it is loaded,
    // as it answers any append. Until then the group's log waits (onBatch drops appends), and a
    // new stream is refused, so that two restores never overlap.
    void r.done.then(
      () => {
        if (g.restoring !== r) return;
        g.restoring = null;
        this.stats.received++;
        g.core.step({ ...chunk.msg, from: chunk.msg.from as NodeId });
        g.core.appliedTo(g.sm.appliedIndex);
        wake();
      },
      (err: unknown) => {
        if (g.restoring === r) g.restoring = null;
        this.stats.failed++;
        this.log.warn('snapshot restore failed', { group: g.id, error: describeError(err) });
        wake();
      },
    );
    return true;
  }

  /** The answer `ok`, given no earlier than `at` (the node's snapshot rate), and only while the stream is still `r`. */
  private async paced(g: GroupReplica, r: NonNullable<GroupReplica['restoring']>, ok: Promise<boolean>, at: number): Promise<boolean> {
    if (!(await ok)) return false;
    const waitMs = at - this.clock.now();
    if (waitMs <= 0) return true;
    await new Promise<void>((resolve) => this.clock.setTimer(resolve, waitMs));
    return g.restoring === r;
  }

  private armStall(g: GroupReplica): void {
    const r = g.restoring;
    if (!r) return;
    r.timer?.cancel();
    r.timer = this.clock.setTimer(() => this.abort(g, new Error(`snapshot stream stalled for ${this.stallMs} ms`)), this.stallMs);
  }

  private abort(g: GroupReplica, err: Error): void {
    const r = g.restoring;
    if (!r) return;
    r.timer?.cancel();
    r.queue.fail(err);
    g.restoring = null;
  }
}
