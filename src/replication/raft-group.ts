/**
 * One group's replica on a node: its Raft core, its state machine, the callers waiting on it
 * (raft-waiters.ts) and its role listeners. The host (raft-host.ts) drives it; this file holds
 * what happens when entries are applied and when the role changes.
 */
import type { RaftNode } from '../raft/raft-node.js';
import type { Entry, HardState, SoftState } from '../raft/types.js';
import { UnavailableError, describeError } from '../runtime/errors.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { ChunkQueue, GroupStatus, ReplicaRole, RoleChange, SnapshotProgress, StateMachine } from './raft-state-machine.js';
import { GroupWaiters } from './raft-waiters.js';
import { GroupTraces } from './raft-trace.js';

export class GroupReplica {
  /** The callers waiting on this replica: proposals, reads, membership changes, transfers. */
  readonly waiters: GroupWaiters;
  readonly listeners = new Set<(ev: RoleChange) => void>();
  /** Its entries proposed or received within a trace, until applied here (raft-trace.ts). */
  readonly traces: GroupTraces;
  private applyQueue: Entry[] = [];
  private applying = false;
  /**
   * A snapshot being received: its chunks feed the state machine's restore. `bytes` received so
   * far, `totalBytes` the sender's estimate of the image's size (null when it gave none),
   * `startedAt` when its first chunk arrived (host clock).
   */
  /** A snapshot being received; `finishing` once every chunk is in and the state machine is loading them. */
  restoring: { queue: ChunkQueue; done: Promise<void>; timer: Timer | undefined; next: number; parts: Uint8Array[]; bytes: number; totalBytes: number | null; startedAt: number; finishing?: boolean } | null = null;
  /** Bytes of snapshot chunks this replica received, over all streams, since it was created on this host. */
  snapshotBytesIn = 0;
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
    clock: Clock,
    private readonly onProgress: () => void,
    private readonly log: (msg: string, fields: Record<string, unknown>) => void,
  ) {
    this.waiters = new GroupWaiters(id, clock);
    this.traces = new GroupTraces(id, String(core.id));
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
        const traced = this.traces.size > 0 ? this.traces.applying(batch) : undefined;
        try {
          results = await this.sm.apply(batch.map((e) => ({ index: e.index, term: e.term, type: e.type, data: e.data })));
          traced?.();
        } catch (err) {
          traced?.(err);
          this.failed = `state machine failed to apply entries ${(batch[0] as Entry).index}..: ${describeError(err)}`;
          this.log('raft group stopped applying; it hands leadership over and will not lead again until restarted', { group: this.id, error: this.failed });
          this.waiters.failProposals(new UnavailableError(`group ${this.id}: ${this.failed}`));
          // A replica that cannot apply must not go on leading: writes would be refused here
          // while the other replicas could serve them.
          this.core.withdraw();
          this.onProgress();
          return;
        }
        batch.forEach((e, k) => this.waiters.applied(e, results[k]));
        this.core.appliedTo((batch[batch.length - 1] as Entry).index);
        this.serveReads();
        this.onProgress();
      }
    } finally {
      this.applying = false;
    }
  }

  /** Concern `all`: resolves the proposals every member has applied. */
  checkAll(): void {
    if (!this.waiters.hasAll()) return;
    const st = this.core.status();
    if (st.role !== 'leader') return;
    let minApplied = this.sm.appliedIndex;
    for (const p of st.progress) if (p.node !== this.core.id) minApplied = Math.min(minApplied, p.applied);
    this.waiters.appliedEverywhere(minApplied);
  }

  /** Confirmed reads and waits whose index is applied are served. */
  serveReads(): void {
    this.waiters.serveReads(this.sm.appliedIndex);
  }

  /** The role, leader or readiness changed: tell listeners, settle transfers. */
  onSoftState(ss: SoftState): void {
    const ev = toRoleChange(ss, ss.isVoter);
    const before = this.role;
    this.role = ev;
    if (before.role === ev.role && before.term === ev.term && before.leader === ev.leader && before.ready === ev.ready) return;
    if (before.role === 'leader' && ev.role !== 'leader') this.waiters.leadershipLost();
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (err) {
        this.log('role listener threw', { group: this.id, error: describeError(err) });
      }
    }
  }

  /** The snapshot being received, or null. */
  snapshotProgress(): SnapshotProgress | null {
    const r = this.restoring;
    return r ? { bytes: r.bytes, totalBytes: r.totalBytes, startedAt: r.startedAt } : null;
  }

  /** What status pages show; `hostFailure` is why the whole host stopped, if it did. */
  status(hostFailure: string | null, sinceHeard: (node: string) => number | null): GroupStatus {
    const st = this.core.status();
    return {
      role: this.role.role,
      term: st.term,
      leader: st.leader,
      commitIndex: st.commit,
      appliedIndex: this.sm.appliedIndex,
      firstIndex: st.firstIndex,
      lastIndex: st.lastIndex,
      quiesced: st.quiesced,
      damaged: st.damaged,
      failed: hostFailure ?? this.failed,
      voters: [...st.conf.voters],
      learners: [...st.conf.learners],
      reads: { ...this.readStats, leases: st.leases, rounds: st.readRounds },
      snapshot: this.restoring ? { bytes: this.restoring.bytes, totalBytes: this.restoring.totalBytes } : null,
      progress: st.progress.map((p) => ({
        node: p.node,
        matchIndex: p.match,
        appliedIndex: p.node === this.core.id ? this.sm.appliedIndex : p.applied,
        lastContactMs: p.node === this.core.id ? 0 : sinceHeard(p.node),
        role: p.isLearner ? 'learner' : 'voter',
      })),
    };
  }

  /** Fails everything still waiting (stop, removal). */
  failAll(err: Error): void {
    this.waiters.failAll(err);
    this.restoring?.queue.fail(err);
    this.traces.clear();
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
