/**
 * Linearizable reads on the leader (Raft §8, diss. §6.4). A ReadIndex read records the commit
 * index when it arrives and is confirmed once a quorum acknowledges a heartbeat round sent after
 * it: then no other leader can have committed anything the read would miss. A leased read skips
 * the round while a quorum acknowledged a round sent less than (election timeout - 2) ticks
 * ago: those followers refuse to vote for anyone else for an election timeout after hearing
 * from this leader (leader stickiness), so no other leader can exist yet.
 *
 * The margin, in real time, when each node's tick count is the whole ticks its clock has run (the
 * host keeps it so whenever a message is stepped or a lease used: src/replication/raft-host-loop.ts,
 * catchUp): a lease that holds rests on a round sent less than `electionTicks - 2` ticks ago; a
 * follower that heard that round votes for no one else until `electionTicks` of its ticks have
 * begun, more than `electionTicks - 1` ticks later. A tick in `electionTicks - 2` is left for
 * clocks that run at different rates: one in four with the host's 6, about 10% either way.
 */
import type { Progress } from './progress.js';
import type { LogIndex, NodeId, ReadFailure, ReadState } from './types.js';

/** A lease ends this many ticks short of an election timeout after the round it rests on. */
const LEASE_MARGIN_TICKS = 2;

/** A read confirmed or failed by the leader: a local caller's (its id), or a follower's request (`peer`, and the request's ctx as `id`). */
export interface LeaderRead {
  id: number;
  peer?: NodeId;
}

interface PendingRead extends LeaderRead {
  /** The commit index when the read entered a round; -1 until then. */
  index: number;
  seq: number;
}

export class ReadTracker {
  private seq = 0;
  private now = 0;
  /** Tick at which each recent round was sent. */
  private sentAt = new Map<number, number>();
  /** Acks of rounds up to here do not count toward a lease (quiescence, new term). */
  private leaseFloor = 0;
  private reads: PendingRead[] = [];
  /** Rounds started that carried reads waiting for one. */
  roundsForReads = 0;

  constructor(private readonly electionTicks: number) {}

  tick(): void {
    this.now++;
    for (const [s, at] of this.sentAt) if (at < this.now - this.electionTicks) this.sentAt.delete(s);
  }

  /** A read waiting for the next round: a local caller's `id`, or a follower's request `id` from `peer`. */
  add(id: number, peer?: NodeId): void {
    this.reads.push(peer === undefined ? { id, index: -1, seq: 0 } : { id, peer, index: -1, seq: 0 });
  }

  pending(): number {
    return this.reads.length;
  }

  needsRound(): boolean {
    return this.reads.some((r) => r.index < 0);
  }

  /** Starts a heartbeat round; reads waiting for one join it with `commit` as their index when `assign`. */
  startRound(commit: number, assign = true): number {
    this.seq++;
    this.sentAt.set(this.seq, this.now);
    if (assign) {
      let carries = false;
      for (const r of this.reads) {
        if (r.index < 0) {
          r.index = commit;
          r.seq = this.seq;
          carries = true;
        }
      }
      if (carries) this.roundsForReads++;
    }
    return this.seq;
  }

  /** The highest round that `needed` of `peers` acknowledged. */
  private quorumSeq(peers: readonly NodeId[], prs: ReadonlyMap<NodeId, Progress>, needed: number): number {
    if (needed <= 0) return this.seq;
    const acks = peers.map((n) => prs.get(n)?.ackedSeq ?? 0).sort((a, b) => b - a);
    return acks[needed - 1] ?? 0;
  }

  /** Reads whose round a quorum has acknowledged. */
  confirm(peers: readonly NodeId[], prs: ReadonlyMap<NodeId, Progress>, needed: number): (ReadState & LeaderRead)[] {
    const q = this.quorumSeq(peers, prs, needed);
    const done: (ReadState & LeaderRead)[] = [];
    this.reads = this.reads.filter((r) => {
      if (r.index >= 0 && r.seq <= q) {
        done.push(r.peer === undefined ? { id: r.id, index: r.index as LogIndex } : { id: r.id, peer: r.peer, index: r.index as LogIndex });
        return false;
      }
      return true;
    });
    return done;
  }

  confirmAll(commit: number): (ReadState & LeaderRead)[] {
    const done = this.reads.map((r) => ({ id: r.id, ...(r.peer === undefined ? {} : { peer: r.peer }), index: (r.index >= 0 ? r.index : commit) as LogIndex }));
    this.reads = [];
    return done;
  }

  leaseValid(peers: readonly NodeId[], prs: ReadonlyMap<NodeId, Progress>, needed: number): boolean {
    if (needed <= 0) return true;
    const q = this.quorumSeq(peers, prs, needed);
    if (q <= this.leaseFloor) return false;
    const at = this.sentAt.get(q);
    return at !== undefined && this.now < at + this.electionTicks - LEASE_MARGIN_TICKS;
  }

  /** Ticks left in the lease (0 when it does not hold): it ends `electionTicks - 2` ticks after its round was sent. */
  leaseTicksLeft(peers: readonly NodeId[], prs: ReadonlyMap<NodeId, Progress>, needed: number): number {
    if (!this.leaseValid(peers, prs, needed)) return 0;
    if (needed <= 0) return Math.max(0, this.electionTicks - LEASE_MARGIN_TICKS);
    const at = this.sentAt.get(this.quorumSeq(peers, prs, needed)) as number;
    return at + this.electionTicks - LEASE_MARGIN_TICKS - this.now;
  }

  /** Forgets every acknowledgement so far as a basis for a lease. */
  resetLease(): void {
    this.leaseFloor = this.seq;
  }

  failAll(reason: ReadFailure['reason']): (ReadFailure & LeaderRead)[] {
    const out = this.reads.map((r) => ({ id: r.id, ...(r.peer === undefined ? {} : { peer: r.peer }), reason }));
    this.reads = [];
    return out;
  }
}

/**
 * A follower's reads waiting for a read index from its leader (Raft §8 on a follower; etcd's
 * MsgReadIndex). Reads that arrive before the next Ready share one request (`readReq`): each of
 * them began before it left, so the index the leader confirms on receiving it covers every write
 * acknowledged before any of them. A read arriving after a request left waits for the next one.
 * A request unanswered for `expireTicks` ticks counts as lost, and its reads fail.
 */
export class LeaderAsks {
  private queued: number[] = [];
  /** Whether every queued read is `leased` (one `strong` read makes the request strong). */
  private queuedLeased = true;
  private seq: number;
  private readonly out = new Map<number, { ids: number[]; tick: number }>();
  /** Requests sent (each carried every read queued when it left). */
  get sent(): number {
    return this.seq - this.firstCtx;
  }

  constructor(
    private readonly expireTicks: number,
    /** The deliberate bug `readJoinsSentRequest` (config.ts): for the simulation's checks only. */
    private readonly joinSentBug = false,
    /**
     * Where this replica's request ctxs start. A leader's answer to a request of a replica that
     * has since restarted (in the same term) can still arrive, in a frame of its own rather than on
     * a reply; were ctxs counted from 0 in every life, it would answer the new life's request of
     * that ctx with an older index. Drawn at random per life (RaftState), far apart.
     */
    private readonly firstCtx = 0,
  ) {
    this.seq = firstCtx;
  }

  add(id: number, leased: boolean): void {
    const last = this.joinSentBug ? this.out.get(this.seq) : undefined;
    if (last) {
      last.ids.push(id);
      return;
    }
    this.queued.push(id);
    if (!leased) this.queuedLeased = false;
  }

  hasQueued(): boolean {
    return this.queued.length > 0;
  }

  /** Moves the queued reads into a request sent at tick `now`: its ctx, and whether it may be answered from the leader's lease. */
  send(now: number): { ctx: number; leased: boolean } {
    const ctx = ++this.seq;
    const leased = this.queuedLeased;
    this.out.set(ctx, { ids: this.queued, tick: now });
    this.queued = [];
    this.queuedLeased = true;
    return { ctx, leased };
  }

  /** The reads of request `ctx` (none when it is unknown: answered already, expired, or failed). */
  answered(ctx: number): number[] {
    const r = this.out.get(ctx);
    if (!r) return [];
    this.out.delete(ctx);
    return r.ids;
  }

  /** Reads of requests sent before tick `now - expireTicks`: given up. */
  expire(now: number): number[] {
    const ids: number[] = [];
    for (const [ctx, r] of this.out) {
      if (r.tick + this.expireTicks <= now) {
        ids.push(...r.ids);
        this.out.delete(ctx);
      }
    }
    return ids;
  }

  /** Every read, queued or sent: they fail (a new term, or no leader to ask). */
  failAll(): number[] {
    const ids = [...this.queued];
    for (const r of this.out.values()) ids.push(...r.ids);
    this.queued = [];
    this.queuedLeased = true;
    this.out.clear();
    return ids;
  }
}
