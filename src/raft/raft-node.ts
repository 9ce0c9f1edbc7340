/**
 * The Raft core, modelled on etcd's: a pure state machine over one replica of one group. Input
 * is `step(message)`, `tick()`, `propose(...)`, `readIndex(...)` and friends; output is the
 * {@link Ready} returned by `ready()`. No I/O, no clock (time is ticks), no Math.random (a
 * seeded generator). Section numbers cite the Raft paper (Ongaro and Ousterhout, 2014) and,
 * where marked "diss.", Ongaro's dissertation. This file holds the public API; the leader half
 * (§5.3 replication, §5.4.2 commit, §8 reads, diss. §3.10 transfer) is in raft-leader.ts, the
 * state and the follower and candidate halves in raft-replica.ts.
 */
import { EMPTY_CONF, encodeConf, makeEntry } from './entry.js';
import { applyConfChange, quorum, type ConfChange } from './membership.js';
import { assertNever } from './progress.js';
import { RaftLeader } from './raft-leader.js';
import type { RaftLogView } from './raft-log.js';

export type { RaftLogView };
import type { RaftInit } from './raft-replica.js';
import type { ConfState, HardState, LogIndex, Message, NodeId, ReadFailure, ReadState, Ready, Role, SnapshotMeta, Term } from './types.js';

export type { RaftInit };

export type ProposeResult =
  | { ok: true; index: LogIndex; term: Term }
  | { ok: false; reason: 'notLeader' | 'transferring' | 'confPending' | 'invalid'; leader: NodeId | null; detail?: string };

export interface PeerStatus {
  node: NodeId;
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  isLearner: boolean;
  applied: number;
  recentActive: boolean;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId | null;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  conf: ConfState;
  damaged: boolean;
  quiesced: boolean;
  /** Leader: followers holding a read lease it honours. Follower: whether it holds one. */
  leases: number;
  /** Heartbeat rounds this replica started, as leader, to confirm read indexes waiting for one (since it started). */
  readRounds: number;
  /** Leader only. */
  progress: PeerStatus[];
}

/** The state of a brand-new group member: the whole initial configuration as entry 1, committed. */
export function bootstrapInit(conf: ConfState): RaftInit {
  const e = makeEntry(1 as LogIndex, 1 as Term, 'config', encodeConf(conf));
  return {
    hardState: { term: 1 as Term, vote: null, commit: 1 as LogIndex, repairing: false },
    snapshot: { index: 0 as LogIndex, term: 0 as Term, conf: EMPTY_CONF },
    entries: [e],
    applied: 0,
  };
}

/** A replica that will join an existing group: nothing at all; the leader sends it the log. */
export function emptyInit(): RaftInit {
  return {
    hardState: { term: 0 as Term, vote: null, commit: 0 as LogIndex, repairing: false },
    snapshot: { index: 0 as LogIndex, term: 0 as Term, conf: EMPTY_CONF },
    entries: [],
    applied: 0,
  };
}


/** A core, to read: what status pages and the simulation's checkers see. Nothing here changes it. */
export interface RaftNodeView {
  readonly id: NodeId;
  readonly term: number;
  readonly role: Role;
  readonly lead: NodeId | null;
  readonly conf: Readonly<ConfState>;
  readonly damaged: boolean;
  readonly quiesced: boolean;
  readonly log: RaftLogView;
  isVoter(n?: NodeId): boolean;
  isReadyLeader(): boolean;
  status(): RaftStatus;
}

export class RaftNode extends RaftLeader {
  // ---------------------------------------------------------------- queries

  status(): RaftStatus {
    const progress: PeerStatus[] = [];
    if (this.role === 'leader') {
      for (const [node, pr] of this.prs) {
        progress.push({ node, match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, applied: pr.applied, recentActive: pr.recentActive });
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.lead,
      commit: this.raftLog.committed,
      applied: this.raftLog.applied,
      firstIndex: this.raftLog.firstIndex(),
      lastIndex: this.raftLog.lastIndex(),
      conf: this.conf,
      damaged: this.damaged,
      quiesced: this.quiesced,
      leases: this.role === 'leader' ? this.leaseHolders.size : this.followerLease() ? 1 : 0,
      readRounds: this.reads.roundsForReads,
      progress,
    };
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    if (this.quiesced) return;
    this.ticks++;
    this.sinceStart++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Appends entries on the leader. They are sent in the next Ready, batched. */
  propose(datas: readonly Uint8Array[]): ProposeResult {
    this.wake();
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.lead };
    if (this.leadTransferee !== null) return { ok: false, reason: 'transferring', leader: this.lead };
    for (const d of datas) this.appendEntry('normal', d);
    return { ok: true, index: this.raftLog.lastIndex() as LogIndex, term: this.term as Term };
  }

  /** Proposes a membership change (one server at a time). */
  proposeConfChange(change: ConfChange): ProposeResult {
    this.wake();
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.lead };
    if (this.leadTransferee !== null) return { ok: false, reason: 'transferring', leader: this.lead };
    const lastConf = this.confLog[this.confLog.length - 1];
    if (!this.isReadyLeader() || (lastConf !== undefined && lastConf.index > this.raftLog.committed)) {
      return { ok: false, reason: 'confPending', leader: this.lead, detail: 'a configuration change or the leader\'s first entry is not committed yet' };
    }
    if (change.type === 'remove' && change.node === this.id) {
      // Removing itself, a leader would stop leading the moment the change commits, perhaps
      // before any new voter learned that it did, and they could not elect anyone (diss. §4.2.2).
      return { ok: false, reason: 'invalid', leader: this.lead, detail: `${this.id} leads this group: transfer leadership before removing it` };
    }
    const next = applyConfChange(this.conf, change);
    if (typeof next === 'string') return { ok: false, reason: 'invalid', leader: this.lead, detail: next };
    this.appendEntry('config', encodeConf(next));
    return { ok: true, index: this.raftLog.lastIndex() as LogIndex, term: this.term as Term };
  }

  /**
   * Asks for a linearizable read (§8, diss. §6.4). The answer comes in a later Ready as a
   * ReadState (serve once applied ≥ its index) or a ReadFailure. `leased` answers at once while
   * the leader's lease holds (check-quorum must be on), else falls back to a quorum round.
   * `forPeer`: the follower that will serve the read once it has applied the index; a leased
   * answer tells it the commit index at once if it does not know it yet (a round's heartbeats
   * carry it anyway). When that follower and this leader are a quorum by themselves (three
   * voters or fewer), the index is answered at once, with no round: the follower completes the
   * quorum itself by checking, when the answer reaches it, that it is still in the term the
   * answer was given in (then no other leader can have existed when the index was taken: a
   * quorum was in this term after that moment). The host must pass the term on and the follower
   * must check it.
   */
  readIndex(id: number, leased: boolean, forPeer?: NodeId): void {
    this.wake();
    if (this.role !== 'leader') {
      this.readFailures.push({ id, reason: 'notLeader' });
      return;
    }
    const leaseIndex = leased ? this.leasedReadIndex() : undefined;
    if (leaseIndex !== undefined) {
      this.readStates.push({ id, index: leaseIndex });
      if (forPeer !== undefined) this.nudgeCommit(forPeer);
      return;
    }
    if (this.conf.voters.length === 1 && this.isVoter() && this.isReadyLeader()) {
      this.readStates.push({ id, index: this.raftLog.committed as LogIndex });
      return;
    }
    if (forPeer !== undefined && this.peerCompletesQuorum(forPeer)) {
      this.readStates.push({ id, index: this.raftLog.committed as LogIndex });
      this.nudgeCommit(forPeer);
      return;
    }
    this.reads.add(id);
  }

  /** Whether this ready leader and voter `peer` make a quorum of the voters by themselves. */
  private peerCompletesQuorum(peer: NodeId): boolean {
    return this.isReadyLeader() && peer !== this.id && this.isVoter() && this.isVoter(peer) && quorum(this.conf.voters) <= 2;
  }

  /**
   * The index a leased read may be served at right now, with nothing to send or wait for: the
   * commit index while this ready leader's lease holds (check-quorum on, no transfer under way);
   * undefined otherwise (then {@link readIndex}). Changes nothing.
   */
  leasedReadIndex(): LogIndex | undefined {
    if (this.role !== 'leader' || !this.cfg.checkQuorum || !this.isReadyLeader() || this.leadTransferee !== null) return undefined;
    return this.reads.leaseValid(this.voterPeers(), this.prs, this.quorumOthers()) ? (this.raftLog.committed as LogIndex) : undefined;
  }

  /**
   * Follower: asks the leader for a read lease (raft-leader.ts), unless a request is out (one
   * unanswered for an election timeout counts as lost) or one was made this tick.
   */
  requestLease(): void {
    if (this.role !== 'follower' || this.lead === null) return;
    this.wake();
    if (this.leaseAskedAt === this.ticks || (this.leaseAsk !== null && this.ticks - this.leaseAsk.tick < this.cfg.electionTicks)) return;
    this.leaseAskedAt = this.ticks;
    this.leaseAsk = { id: ++this.leaseAskSeq, tick: this.ticks };
    this.send({ type: 'leaseReq', from: this.id, to: this.lead, term: this.term as Term, id: this.leaseAsk.id });
  }

  /**
   * Follower holding a read lease: the index a `leased` read beginning now may be served at once
   * applied (everything in this replica's log, and the commit index the lease came with), and
   * the ticks the lease has left. Undefined without a valid lease. Changes nothing.
   */
  followerLease(): { index: LogIndex; ticksLeft: number } | undefined {
    const l = this.lease;
    if (l === null || this.role !== 'follower' || this.quiesced || l.term !== this.term || l.leader !== this.lead || this.ticks >= l.until) return undefined;
    return { index: Math.max(this.raftLog.lastIndex(), l.commit) as LogIndex, ticksLeft: l.until - this.ticks };
  }

  /** Hands leadership to `to` (diss. §3.10): catch it up, then tell it to campaign at once. */
  transferLeadership(to: NodeId): ProposeResult {
    this.wake();
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.lead };
    if (to === this.id) return { ok: true, index: this.raftLog.lastIndex() as LogIndex, term: this.term as Term };
    const pr = this.prs.get(to);
    if (!pr || pr.isLearner) return { ok: false, reason: 'invalid', leader: this.lead, detail: `${to} is not a voter of this group` };
    this.leadTransferee = to;
    this.transferElapsed = 0;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, true);
    return { ok: true, index: this.raftLog.lastIndex() as LogIndex, term: this.term as Term };
  }

  /**
   * The host can no longer serve this replica (its state machine failed to apply): it never
   * campaigns again in this incarnation, and a leader hands leadership to its best-matched voter.
   * It still votes and takes entries; a restart clears it.
   */
  withdraw(): void {
    this.wake();
    this._withdrawn = true;
    if (this.role === 'leader') this.handOff();
  }

  /** The host could not reach `to` (no responders, timeout): stop pipelining to it. */
  reportUnreachable(to: NodeId): void {
    const pr = this.prs.get(to);
    if (this.role === 'leader' && pr && pr.state === 'replicate') pr.becomeProbe();
  }

  /** The host's streaming of a snapshot to `to` ended; on failure, probe again. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.prs.get(to);
    if (this.role !== 'leader' || !pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    pr.probeSent = ok; // on success, wait for the follower's answer before probing
  }

  /**
   * The host made `rd` durable (flushed). The leader counts its own log toward a quorum only up
   * to what is durable, so a crash cannot lose an entry that counted as committed.
   */
  advance(rd: Ready): void {
    const last = rd.entries[rd.entries.length - 1];
    if (last && last.index > this.raftLog.stable && this.raftLog.termAt(last.index) === last.term) this.raftLog.stable = last.index;
    if (rd.snapshot && rd.snapshot.index > this.raftLog.stable) this.raftLog.stable = Math.min(rd.snapshot.index, this.raftLog.lastIndex());
    if (this.role === 'leader') this.maybeCommit();
  }

  /** The state machine applied up to `i`. */
  appliedTo(i: number): void {
    if (i > this.raftLog.applied) this.raftLog.applied = Math.min(i, Math.max(this.raftLog.committed, this.raftLog.applied));
  }

  /** The highest index `compact` accepts: applied, committed and in the log. */
  compactableIndex(): number {
    return Math.min(this.raftLog.applied, this.raftLog.committed, this.raftLog.lastIndex());
  }

  /**
   * Forgets log entries up to `i` (which must be applied and flushed by the state machine) and
   * returns the new snapshot point, which the host persists together with the deletion.
   */
  compact(i: number): SnapshotMeta {
    if (i > this.compactableIndex()) throw new RangeError(`raft: cannot compact to ${i} beyond ${this.compactableIndex()} (applied and committed)`);
    const meta = this.snapshotMetaAt(i);
    this.snapConf = meta.conf;
    this.confLog = this.confLog.filter((x) => x.index > i);
    this.raftLog.compact(i);
    return meta;
  }

  /**
   * The host learned that nothing at all has come from `node` (this group's leader's node) for
   * at least an election timeout of wall-clock time: wake a quiesced follower and let it
   * campaign without waiting a further timeout. Sound for leases because the leader's lease
   * rests on messages this replica received, and none came for that long.
   */
  leaderNodeDown(node: NodeId): void {
    if (this.role === 'leader' || this.lead !== node) return;
    this._quiesced = false;
    this.electionElapsed = Math.max(this.electionElapsed, this.cfg.electionTicks);
    this.sinceStart = Math.max(this.sinceStart, this.cfg.electionTicks);
  }

  step(m: Message): void {
    // Answers to a quiescing heartbeat must not wake the leader that sent it; anything else does.
    if (m.type !== 'heartbeatResp') this.wake();
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const transfer = m.type === 'vote' && m.transfer;
        if (!transfer && this.inLease()) return; // §6 (diss. §4.2.3): ignore disruptive candidates while a leader is alive
      }
      if (m.type === 'preVote') {
        // never changes our term
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // our own pre-vote granted at term+1
      } else {
        const leader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap' ? m.from : null;
        this.becomeFollower(m.term, leader);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // A stale leader (say, back from a partition): tell it our term so it steps down.
        this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term as Term, index: 0 as LogIndex, reject: true, hintIndex: 0 as LogIndex, hintTerm: 0 as Term, applied: this.raftLog.applied as LogIndex });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term as Term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
      default:
        assertNever(this.role);
    }
  }

  // ---------------------------------------------------------------- output

  hasReady(): boolean {
    if (this.msgs.length > 0 || this.needBcast || this.commitChanged || this.readStates.length > 0 || this.readFailures.length > 0) return true;
    if (this.reads.needsRound() && this.role === 'leader' && this.isReadyLeader()) return true;
    if (this.pendingInstall || this.truncateOut !== undefined) return true;
    if (this.raftLog.persistHanded < this.raftLog.lastIndex()) return true;
    if (this.raftLog.applyHanded < Math.min(this.raftLog.committed, this.raftLog.lastIndex())) return true;
    const hs = this.prevHard;
    if (hs.term !== this.term || hs.vote !== this.vote || hs.commit !== this.raftLog.committed || hs.repairing !== this.damaged) return true;
    const ss = this.prevSoft;
    return ss.role !== this.role || ss.leader !== this.lead || ss.term !== this.term || ss.ready !== this.isReadyLeader() || ss.isVoter !== this.isVoter();
  }

  /** Everything the host must now do; see {@link Ready} for the order. */
  ready(): Ready {
    if (this.role === 'leader') {
      if (this.needBcast || this.commitChanged) this.bcastAppend(this.commitChanged);
      if (this.isReadyLeader() && this.reads.needsRound()) {
        if (this.conf.voters.length === 1) this.readStates.push(...this.reads.confirmAll(this.raftLog.committed));
        else this.bcastHeartbeat(this.reads.startRound(this.raftLog.committed), false);
      }
    }
    this.needBcast = false;
    this.commitChanged = false;
    const hs: HardState = { term: this.term as Term, vote: this.vote, commit: this.raftLog.committed as LogIndex, repairing: this.damaged };
    const hsChanged = hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit || hs.repairing !== this.prevHard.repairing;
    this.prevHard = hs;
    const ss = this.softState();
    const p = this.prevSoft;
    const ssChanged = ss.role !== p.role || ss.leader !== p.leader || ss.term !== p.term || ss.ready !== p.ready || ss.isVoter !== p.isVoter;
    this.prevSoft = ss;
    const rd: Ready = {
      hardState: hsChanged ? hs : undefined,
      entries: this.raftLog.takeUnpersisted(),
      snapshot: this.pendingInstall,
      truncateFrom: this.truncateOut as LogIndex | undefined,
      messages: this.msgs,
      committedEntries: this.raftLog.takeCommitted(),
      readStates: this.readStates,
      readFailures: this.readFailures,
      softState: ssChanged ? ss : undefined,
    };
    this.pendingInstall = undefined;
    this.truncateOut = undefined;
    this.msgs = [];
    this.readStates = [];
    this.readFailures = [];
    return rd;
  }
}
