/**
 * One group's replica on a node: its Raft core, its state machine, and the callers waiting on
 * it (proposals, reads, role listeners). The host (raft-host.ts) drives it; this file holds
 * what happens when entries are applied and when the role changes.
 */
import type { RaftNode } from '../raft/raft-node.js';
import type { Entry, HardState, SoftState } from '../raft/types.js';
import { NotLeaderError, TimeoutError, UnavailableError, describeError } from '../runtime/errors.js';
import type { Timer } from '../runtime/clock.js';
import type { ChunkQueue, ReplicaRole, RoleChange, StateMachine, WriteConcern } from './raft-state-machine.js';

export interface PendingProposal {
  term: number;
  concern: WriteConcern;
  resolve: (v: { index: number; result: unknown }) => void;
  reject: (e: Error) => void;
  timer: Timer;
  /** For concern `all`: applied here, now waiting for every member. */
  result?: unknown;
  appliedHere?: boolean;
}

export interface PendingRead {
  /** Called with the read index: once it is applied here, or as soon as it is confirmed if `confirmOnly`. */
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  timer: Timer;
  /** Confirmed: serve once applied reaches it. */
  index?: number;
  /** Resolve as soon as the leader has confirmed the index (a follower's read asked for it), without waiting to apply it here. */
  confirmOnly?: boolean;
}

export interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: Timer;
}

export class GroupReplica {
  readonly proposals = new Map<number, PendingProposal>();
  readonly reads = new Map<number, PendingRead>();
  readonly listeners = new Set<(ev: RoleChange) => void>();
  /** Membership changes waiting for their entry to apply, by index. */
  readonly confWaiters = new Map<number, Waiter>();
  /** Leadership transfers waiting for the leader to change. */
  readonly transferWaiters = new Set<Waiter>();
  private applyQueue: Entry[] = [];
  private applying = false;
  /** A snapshot being received: its chunks feed the state machine's restore. */
  restoring: { queue: ChunkQueue; done: Promise<void>; timer: Timer | undefined; next: number; parts: Uint8Array[] } | null = null;
  /** Peers a snapshot is being streamed to. */
  readonly streaming = new Set<string>();
  /** Readys whose committed entries wait for their turn's flush (later ones must wait behind them). */
  deferredApplies = 0;
  /** Applied index known to be flushed (safe to compact the log up to). */
  durableApplied = 0;
  /** The hard state last written, and a newer one that only moved the commit index (not written yet). */
  persistedHard: HardState | undefined;
  unsavedHard: HardState | undefined;
  role: RoleChange;
  /** Reads confirmed here as leader: from the lease, or otherwise (see GroupStatus.reads). */
  readonly readStats = { leaseHits: 0, others: 0 };
  failed: string | null = null;
  stopped = false;

  constructor(
    readonly id: string,
    readonly core: RaftNode,
    readonly sm: StateMachine,
    private readonly onProgress: () => void,
    private readonly log: (msg: string, fields: Record<string, unknown>) => void,
  ) {
    this.role = toRoleChange(core.softState(), core.isVoter());
    this.durableApplied = sm.appliedIndex;
  }

  /** Queues committed entries; applies them in order, one batch at a time. */
  enqueueApply(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    for (const e of entries) this.applyQueue.push(e);
    if (!this.applying) void this.applyLoop();
  }

  private async applyLoop(): Promise<void> {
    this.applying = true;
    try {
      while (this.applyQueue.length > 0 && !this.stopped && !this.failed) {
        const batch = this.applyQueue.filter((e) => e.index > this.sm.appliedIndex);
        this.applyQueue = [];
        if (batch.length === 0) continue;
        let results: unknown[];
        try {
          results = await this.sm.apply(batch.map((e) => ({ index: e.index, term: e.term, type: e.type, data: e.data })));
        } catch (err) {
          this.failed = `state machine failed to apply entries ${(batch[0] as Entry).index}..: ${describeError(err)}`;
          this.log('raft group stopped applying; it hands leadership over and will not lead again until restarted', { group: this.id, error: this.failed });
          for (const p of this.proposals.values()) {
            p.timer.cancel();
            p.reject(new UnavailableError(`group ${this.id}: ${this.failed}`));
          }
          this.proposals.clear();
          // A replica that cannot apply must not go on leading: writes would be refused here
          // while the other replicas could serve them.
          this.core.withdraw();
          this.onProgress();
          return;
        }
        batch.forEach((e, k) => this.settleProposal(e, results[k]));
        this.core.appliedTo((batch[batch.length - 1] as Entry).index);
        this.serveReads();
        this.onProgress();
      }
    } finally {
      this.applying = false;
    }
  }

  /** An applied entry answers the proposal that asked for its index: with its result if it is that proposal, as superseded if not. */
  private settleProposal(e: Entry, result: unknown): void {
    const p = this.proposals.get(e.index);
    const w = this.confWaiters.get(e.index);
    if (w) {
      this.confWaiters.delete(e.index);
      w.timer.cancel();
      if (e.type === 'config') w.resolve();
      else w.reject(new NotLeaderError(`group ${this.id}: the membership change was superseded by a new leader`));
    }
    if (!p) return;
    if (e.term !== p.term) {
      this.proposals.delete(e.index);
      p.timer.cancel();
      p.reject(new NotLeaderError(`group ${this.id}: the write at index ${e.index} was superseded by a new leader's entry; it was not applied`));
      return;
    }
    if (p.concern === 'all') {
      p.appliedHere = true;
      p.result = result;
      return; // settled by checkAll once every member applied it
    }
    this.proposals.delete(e.index);
    p.timer.cancel();
    p.resolve({ index: e.index, result });
  }

  /** Concern `all`: resolves proposals every member has applied. */
  checkAll(): void {
    if (this.proposals.size === 0) return;
    const st = this.core.status();
    if (st.role !== 'leader') return;
    let minApplied = this.sm.appliedIndex;
    for (const p of st.progress) if (p.node !== this.core.id) minApplied = Math.min(minApplied, p.applied);
    for (const [index, p] of this.proposals) {
      if (p.concern === 'all' && p.appliedHere && index <= minApplied) {
        this.proposals.delete(index);
        p.timer.cancel();
        p.resolve({ index, result: p.result });
      }
    }
  }

  hasAllWaiters(): boolean {
    for (const p of this.proposals.values()) if (p.concern === 'all') return true;
    return false;
  }

  /** Confirmed reads whose index is applied are served. */
  serveReads(): void {
    for (const [id, r] of this.reads) {
      if (r.index !== undefined && r.index <= this.sm.appliedIndex) {
        this.reads.delete(id);
        r.timer.cancel();
        r.resolve(r.index);
      }
    }
  }

  /** The role, leader or readiness changed: tell listeners, settle transfers. */
  onSoftState(ss: SoftState): void {
    const ev = toRoleChange(ss, ss.isVoter);
    const before = this.role;
    this.role = ev;
    if (before.role === ev.role && before.term === ev.term && before.leader === ev.leader && before.ready === ev.ready) return;
    if (before.role === 'leader' && ev.role !== 'leader') {
      for (const w of this.transferWaiters) {
        w.timer.cancel();
        w.resolve();
      }
      this.transferWaiters.clear();
    }
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (err) {
        this.log('role listener threw', { group: this.id, error: describeError(err) });
      }
    }
  }

  /** Fails everything still waiting (stop, removal). */
  failAll(err: Error): void {
    for (const p of this.proposals.values()) {
      p.timer.cancel();
      p.reject(err);
    }
    this.proposals.clear();
    for (const r of this.reads.values()) {
      r.timer.cancel();
      r.reject(err);
    }
    this.reads.clear();
    for (const w of [...this.confWaiters.values(), ...this.transferWaiters]) {
      w.timer.cancel();
      w.reject(err);
    }
    this.confWaiters.clear();
    this.transferWaiters.clear();
    this.restoring?.queue.fail(err);
  }
}

export function toRoleChange(ss: SoftState, isVoter: boolean): RoleChange {
  let role: ReplicaRole;
  switch (ss.role) {
    case 'leader':
      role = 'leader';
      break;
    case 'candidate':
    case 'preCandidate':
      role = 'candidate';
      break;
    case 'follower':
      role = isVoter ? 'follower' : 'learner';
      break;
    default: {
      const never: never = ss.role;
      throw new Error(`unknown role ${String(never)}`);
    }
  }
  return { role, term: ss.term, leader: ss.leader, ready: ss.ready };
}

export function timeoutError(what: string, ms: number): TimeoutError {
  return new TimeoutError(`${what} did not complete within ${ms} ms`);
}
