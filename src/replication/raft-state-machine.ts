/** What a Raft group replicates into: implemented by the shard state machine (issue 3) and by test fixtures. */
import type { EntryType } from '../raft/types.js';

/** A committed entry as the state machine sees it. */
export interface AppliedEntry {
  index: number;
  term: number;
  /** `noop` (a new leader's first entry) and `config` (membership) are not the application's, but advance `appliedIndex`. */
  type: EntryType;
  data: Uint8Array;
}

/**
 * A replicated state machine that is durable by itself (it writes to the node's LMDB
 * environment). Its `appliedIndex` after a restart is what it had flushed; the host replays the
 * log after it, so `apply` must accept, once more, entries it applied but lost in a crash.
 */
export interface StateMachine {
  readonly appliedIndex: number;
  /** Every committed entry, in order, exactly once per index and per incarnation. One result per entry. */
  apply(entries: AppliedEntry[]): Promise<unknown[]>;
  /**
   * A consistent point-in-time image, streamed (InstallSnapshot to a follower too far behind, or
   * to a new member). `bytes`, if given, estimates the bytes `chunks` will yield: the receiver
   * shows it as the total of its progress (RaftHost.snapshotProgress), nothing relies on it.
   */
  snapshot(): Promise<{ appliedIndex: number; chunks: AsyncIterable<Uint8Array>; bytes?: number }>;
  /** Replaces everything by the image; afterwards `appliedIndex` is `appliedIndex`. */
  restore(appliedIndex: number, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** Concern of a write: when `propose` resolves. */
export type WriteConcern = 'majority' | 'all' | 'leader';

export type ReplicaRole = 'leader' | 'follower' | 'candidate' | 'learner';

export interface RoleChange {
  role: ReplicaRole;
  term: number;
  leader: string | null;
  /** Leader only: its first entry of the term committed; it may serve reads and writes. */
  ready: boolean;
}

export interface GroupStatus {
  role: ReplicaRole;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  firstIndex: number;
  lastIndex: number;
  quiesced: boolean;
  damaged: boolean;
  /** Why this replica stopped applying (it then hands leadership over and does not lead until restarted), or why its host stopped; null when healthy. */
  failed: string | null;
  voters: string[];
  learners: string[];
  /**
   * Read indexes this replica gave as leader: its own `leased` reads answered from its lease
   * (`leaseHits`), and every other (its reads that took a heartbeat round, and followers' read
   * indexes). `leases`: on the leader, followers holding a read lease; on a follower, 1 while it
   * holds one. `rounds`: heartbeat rounds it started as leader to confirm read indexes.
   */
  reads: { leaseHits: number; others: number; leases: number; rounds: number };
  /**
   * The snapshot this replica is receiving: bytes so far and the sender's estimate of the total
   * (null when it gave none; an estimate, so `bytes` may pass it). Null when none is.
   */
  snapshot?: { bytes: number; totalBytes: number | null } | null;
  /** Leader only. */
  progress: { node: string; matchIndex: number; appliedIndex: number; /** Null when nothing ever arrived from that node. */ lastContactMs: number | null; role: 'voter' | 'learner' }[];
}

/** A snapshot being received (RaftHost.snapshotProgress): see GroupStatus.snapshot; `startedAt` is when its first chunk arrived, on the host's clock. */
export interface SnapshotProgress {
  bytes: number;
  totalBytes: number | null;
  startedAt: number;
}

/**
 * An async iterable fed by pushes, for a snapshot arriving in chunks. A push resolves once the
 * consumer is done with that chunk (it asked for the next one), so a sender that waits for it
 * keeps at most one chunk buffered however slow the consumer is.
 */
export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private items: { chunk: Uint8Array; used: (ok: boolean) => void }[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  /** Queues a chunk; resolves true once the consumer is done with it, false if the queue failed or the consumer stopped first. */
  push(chunk: Uint8Array): Promise<boolean> {
    if (this.failure) return Promise.resolve(false);
    return new Promise((used) => {
      this.items.push({ chunk, used });
      this.wake?.();
    });
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  fail(err: Error): void {
    this.failure = err;
    this.drop();
    this.wake?.();
  }

  private drop(): void {
    for (const it of this.items) it.used(false);
    this.items = [];
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        const next = this.items.shift();
        if (next) {
          try {
            yield next.chunk;
          } finally {
            next.used(this.failure === undefined);
          }
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
      }
    } finally {
      this.drop();
    }
  }
}
