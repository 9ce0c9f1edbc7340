/**
 * InstallSnapshot, streamed. When a follower needs entries the leader has compacted away, the
 * leader's core emits a `snap` message; the host answers it by streaming the state machine's
 * current image in chunks (each a NATS request under the max payload, acknowledged once the
 * follower's state machine has used it, and only then followed by the next) and describes the image by the Raft metadata at its applied index. The
 * follower feeds the chunks to its state machine's `restore` as they arrive; once the image is
 * complete it steps the `snap` message into its core, which drops its log and persists the
 * snapshot point (before acknowledging, like any append).
 */
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { describeError } from '../runtime/errors.js';
import type { Message, NodeId } from '../raft/types.js';
import type { GroupReplica } from './raft-group.js';
import { ChunkQueue } from './raft-state-machine.js';
import type { RaftTransport, SnapshotChunk } from './raft-transport.js';

type SnapMessage = Extract<Message, { type: 'snap' }>;

export class SnapshotStreams {
  /** Counters for tests and status. */
  readonly stats = { sent: 0, received: 0, failed: 0 };

  constructor(
    private readonly transport: RaftTransport,
    private readonly node: string,
    private readonly chunkBytes: number,
    /** A chunk not answered (or not followed by the next) within this is a failed stream. */
    private readonly stallMs: number,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

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
    const sendOne = (data: Uint8Array, cont: boolean, last: boolean): Promise<boolean> => {
      const chunk: SnapshotChunk = { k: 'chunk', from: this.node, group: g.id, msg, seq: seq++, data, cont, last };
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
      g.restoring = { queue, done, timer: undefined, next: 1, parts: [] };
      this.armStall(g);
    } else {
      const r = g.restoring;
      if (!r || r.next !== chunk.seq) return false;
      r.next++;
      this.armStall(g);
    }
    const r = g.restoring;
    if (!r) return false;
    if (!chunk.last) {
      r.parts.push(chunk.data);
      if (!chunk.cont) {
        const piece = r.parts.length === 1 ? (r.parts[0] as Uint8Array) : Buffer.concat(r.parts);
        r.parts = [];
        // Acknowledged once the state machine has used the piece, not on arrival: the leader
        // sends the next one only then, so a slow restore never buffers the whole image here.
        return r.queue.push(piece);
      }
      return true;
    }
    r.queue.end();
    r.timer?.cancel();
    try {
      await r.done;
    } catch (err) {
      g.restoring = null;
      this.log.warn('snapshot restore failed', { group: g.id, error: describeError(err) });
      return false;
    }
    g.restoring = null;
    this.stats.received++;
    g.core.step({ ...chunk.msg, from: chunk.msg.from as NodeId });
    g.core.appliedTo(g.sm.appliedIndex);
    wake();
    return true;
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
