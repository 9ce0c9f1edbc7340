/**
 * The Raft core, modelled on etcd's: a pure state machine over one replica of one group. Input
 * is `step(message)`, `tick()`, `propose(...)`, `readIndex(...)` and friends; output is the
 * {@link Ready} returned by `ready()`. No I/O, no clock (time is ticks), no Math.random (a
 * seeded generator). Section numbers cite the Raft paper (Ongaro and Ousterhout, 2014) and,
 * where marked "diss.", Ongaro's dissertation. This file holds the public API, RaftNode, which
 * alone holds the replica's state (a RaftState, raft-state.ts): outside code reads it through
 * the getters here and cannot write it. The roles are plain functions over that state, each
 * with one step function, as in etcd: follower.ts, candidate.ts (elections and votes) and
 * leader.ts (§5.3 replication, §5.4.2 commit, §8 reads, diss. §4.1 membership, diss. §3.10
 * transfer); leases.ts holds the read leases, ready.ts gathers the output.
 */
import type { RaftConfig, RaftConfigInput } from './config.js';
import { handleVoteRequest, inLease, stepCandidate, tickElection } from './candidate.js';
import { stepFollower } from './follower.js';
import { bestTransferee, handOff, maybeCommit, propose, proposeConfChange, readIndex, stepLeader, tickLeader, transferLeadership } from './leader.js';
import { followerLease, leasedReadIndex, requestLease } from './leases.js';
import type { ConfChange } from './membership.js';
import { assertNever } from './progress.js';
import type { RaftLogView } from './raft-log.js';
import { bootstrapInit, emptyInit, RaftState, type RaftInit } from './raft-state.js';
import { hasReady, takeReady } from './ready.js';
import type { ConfState, LogIndex, Message, NodeId, Ready, Role, SnapshotMeta, SoftState, Term } from './types.js';

export { bootstrapInit, emptyInit };
export type { RaftInit, RaftLogView };

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
  /** Follower: read-index requests (`readReq`) sent to leaders, since this replica started. */
  readRequests: number;
  /**
   * Times this replica, as leader, stopped pipelining appends to a follower and went back to
   * probing it (a rejected append, one lost or unacknowledged, a follower that lost entries or
   * could not be reached), since it started. Each resends from the follower's match.
   */
  probes: number;
  /** Leader only. */
  progress: PeerStatus[];
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

export class RaftNode {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  /** The replica's state: written only by the core's functions, read from outside through the getters below. */
  readonly #state: RaftState;

  constructor(config: RaftConfigInput, init: RaftInit) {
    this.#state = new RaftState(config, init);
    this.id = this.#state.id;
    this.cfg = this.#state.cfg;
  }

  // ---------------------------------------------------------------- queries

  get term(): number {
    return this.#state.term;
  }

  get vote(): NodeId | null {
    return this.#state.vote;
  }

  /** The leader this replica follows (itself when it leads), or null when it knows none. */
  get lead(): NodeId | null {
    return this.#state.lead;
  }

  get role(): Role {
    return this.#state.role;
  }

  /** The configuration in force: the latest committed one. */
  get conf(): Readonly<ConfState> {
    return this.#state.conf;
  }

  /** The log, to read (the core alone changes it). */
  get log(): RaftLogView {
    return this.#state.raftLog;
  }

  /** A leader that stopped heartbeating an idle group, or a follower that knows it did. */
  get quiesced(): boolean {
    return this.#state.quiesced;
  }

  /** A corrupt entry was found at start: no voting or leading until the log is repaired from a leader. */
  get damaged(): boolean {
    return this.#state.damaged;
  }

  /** The host can no longer apply entries here (see {@link withdraw}). */
  get withdrawn(): boolean {
    return this.#state.withdrawn;
  }

  isVoter(n: NodeId = this.id): boolean {
    return this.#state.isVoter(n);
  }

  /** Leader whose first entry of the term has committed (§8: only then does it know what is committed). */
  isReadyLeader(): boolean {
    return this.#state.isReadyLeader();
  }

  /** The configuration in force at index `i` (≥ the snapshot index). */
  confAt(i: number): ConfState {
    return this.#state.confAt(i);
  }

  /** Metadata of a state-machine image at applied index `i`, for InstallSnapshot. */
  snapshotMetaAt(i: number): SnapshotMeta {
    return this.#state.snapshotMetaAt(i);
  }

  /** Whether a snapshot at `meta` would be installed (so the host should restore its state machine first). */
  wantsSnapshot(meta: SnapshotMeta): boolean {
    return this.#state.wantsSnapshot(meta);
  }

  softState(): SoftState {
    return this.#state.softState();
  }

  /** Leader: the voter other than itself whose log matches furthest (the one to hand leadership to), or null. */
  bestTransferee(): NodeId | null {
    return bestTransferee(this.#state);
  }

  status(): RaftStatus {
    const s = this.#state;
    const progress: PeerStatus[] = [];
    if (s.role === 'leader') {
      for (const [node, pr] of s.prs) {
        progress.push({ node, match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, applied: pr.applied, recentActive: pr.recentActive });
      }
    }
    return {
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.lead,
      commit: s.raftLog.committed,
      applied: s.raftLog.applied,
      firstIndex: s.raftLog.firstIndex(),
      lastIndex: s.raftLog.lastIndex(),
      conf: s.conf,
      damaged: s.damaged,
      quiesced: s.quiesced,
      leases: s.role === 'leader' ? s.leaseHolders.size : followerLease(s) ? 1 : 0,
      readRounds: s.reads.roundsForReads,
      readRequests: s.asks.sent,
      probes: s.probes,
      progress,
    };
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    const s = this.#state;
    if (s.quiesced) return;
    s.ticks++;
    s.sinceStart++;
    if (s.role === 'leader') tickLeader(s);
    else tickElection(s);
    for (const id of s.asks.expire(s.ticks)) s.readFailures.push({ id, reason: 'notLeader' });
  }

  /** Appends entries on the leader. They are sent in the next Ready, batched. */
  propose(datas: readonly Uint8Array[]): ProposeResult {
    return propose(this.#state, datas);
  }

  /** Proposes a membership change (one server at a time). */
  proposeConfChange(change: ConfChange): ProposeResult {
    return proposeConfChange(this.#state, change);
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
    readIndex(this.#state, id, leased, forPeer);
  }

  /**
   * Leader: the peers the host will send a frame to anyway in its current turn (until the next
   * call). A read round that needs one acknowledgement goes to one of them rather than to every
   * voter (leader.ts, sendReadRound). A hint only: any voter's acknowledgement is as good.
   */
  preferReadPeers(peers: ReadonlySet<string> | undefined): void {
    this.#state.readPeerHint = peers;
  }

  /**
   * Follower: asks the leader for a read index on behalf of read `id` (Raft §8 on a follower).
   * Every read asked for before the next Ready goes in one `readReq`; the answer comes in a later
   * Ready as a ReadState (the index is confirmed: serve once applied ≥ it) or a ReadFailure (no
   * leader known, the leader refused, the term changed, or no answer for two election timeouts).
   * `leased` lets the leader answer from its lease; one read that is not makes the request strong.
   */
  askLeaderReadIndex(id: number, leased: boolean): void {
    const s = this.#state;
    if (s.role !== 'follower' || s.lead === null) {
      s.readFailures.push({ id, reason: 'notLeader' });
      return;
    }
    s.asks.add(id, leased);
  }

  /**
   * The index a leased read may be served at right now, with nothing to send or wait for: the
   * commit index while this ready leader's lease holds (check-quorum on, no transfer under way);
   * undefined otherwise (then {@link readIndex}). Changes nothing.
   */
  leasedReadIndex(): LogIndex | undefined {
    return leasedReadIndex(this.#state);
  }

  /**
   * Follower: asks the leader for a read lease (leases.ts), unless a request is out (one
   * unanswered for an election timeout counts as lost) or one was made this tick.
   */
  requestLease(): void {
    requestLease(this.#state);
  }

  /**
   * Follower holding a read lease: the index a `leased` read beginning now may be served at once
   * applied (everything in this replica's log, and the commit index the lease came with), and
   * the ticks the lease has left. Undefined without a valid lease. Changes nothing.
   */
  followerLease(): { index: LogIndex; ticksLeft: number } | undefined {
    return followerLease(this.#state);
  }

  /** Hands leadership to `to` (diss. §3.10): catch it up, then tell it to campaign at once. */
  transferLeadership(to: NodeId): ProposeResult {
    return transferLeadership(this.#state, to);
  }

  /**
   * The host can no longer serve this replica (its state machine failed to apply): it never
   * campaigns again in this incarnation, and a leader hands leadership to its best-matched voter.
   * It still votes and takes entries; a restart clears it.
   */
  withdraw(): void {
    const s = this.#state;
    s.wake();
    s.withdrawn = true;
    if (s.role === 'leader') handOff(s);
  }

  /** The host could not reach `to` (no responders, timeout): stop pipelining to it. */
  reportUnreachable(to: NodeId): void {
    const s = this.#state;
    const pr = s.prs.get(to);
    if (s.role === 'leader' && pr && pr.state === 'replicate') {
      pr.becomeProbe();
      s.probes++;
    }
  }

  /** The host's streaming of a snapshot to `to` ended; on failure, probe again. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const s = this.#state;
    const pr = s.prs.get(to);
    if (s.role !== 'leader' || !pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    pr.probeSent = ok; // on success, wait for the follower's answer before probing
  }

  /**
   * The host made `rd` durable (flushed). The leader counts its own log toward a quorum only up
   * to what is durable, so a crash cannot lose an entry that counted as committed.
   */
  advance(rd: Ready): void {
    const s = this.#state;
    const last = rd.entries[rd.entries.length - 1];
    if (last && last.index > s.raftLog.stable && s.raftLog.termAt(last.index) === last.term) s.raftLog.stable = last.index;
    if (rd.snapshot && rd.snapshot.index > s.raftLog.stable) s.raftLog.stable = Math.min(rd.snapshot.index, s.raftLog.lastIndex());
    if (s.role === 'leader') maybeCommit(s);
  }

  /** The state machine applied up to `i`. */
  appliedTo(i: number): void {
    const log = this.#state.raftLog;
    if (i > log.applied) log.applied = Math.min(i, Math.max(log.committed, log.applied));
  }

  /** The highest index `compact` accepts: applied, committed and in the log. */
  /**
   * Leader: the lowest log index another replica still needs from the log: for each, the index of
   * the snapshot being sent to it, or its match index. Undefined when not leader or alone. The
   * host's compaction by bytes keeps the entries after it (up to a cap: raft-turns.ts), so that a
   * follower that lags for a while, or installs a snapshot while the group goes on writing, catches
   * up from entries rather than needing another full snapshot.
   */
  followersNeed(): number | undefined {
    const s = this.#state;
    if (s.role !== 'leader') return undefined;
    let need: number | undefined;
    for (const [node, pr] of s.prs) {
      if (node === s.id) continue;
      const i = pr.state === 'snapshot' ? pr.pendingSnapshot : pr.match;
      if (need === undefined || i < need) need = i;
    }
    return need;
  }

  compactableIndex(): number {
    const log = this.#state.raftLog;
    return Math.min(log.applied, log.committed, log.lastIndex());
  }

  /**
   * Forgets log entries up to `i` (which must be applied and flushed by the state machine) and
   * returns the new snapshot point, which the host persists together with the deletion.
   */
  compact(i: number): SnapshotMeta {
    const s = this.#state;
    if (i > this.compactableIndex()) throw new RangeError(`raft: cannot compact to ${i} beyond ${this.compactableIndex()} (applied and committed)`);
    const meta = s.snapshotMetaAt(i);
    s.snapConf = meta.conf;
    s.confLog = s.confLog.filter((x) => x.index > i);
    s.raftLog.compact(i);
    return meta;
  }

  /**
   * The host learned that nothing at all has come from `node` (this group's leader's node) for
   * at least an election timeout of wall-clock time: wake a quiesced follower and let it
   * campaign without waiting a further timeout. Sound for leases because the leader's lease
   * rests on messages this replica received, and none came for that long.
   */
  leaderNodeDown(node: NodeId): void {
    const s = this.#state;
    if (s.role === 'leader' || s.lead !== node) return;
    s.quiesced = false;
    s.electionElapsed = Math.max(s.electionElapsed, s.cfg.electionTicks);
    s.sinceStart = Math.max(s.sinceStart, s.cfg.electionTicks);
  }

  /** Takes a message in: filters it by term (§5.1, pre-vote and leader stickiness), then the role's step function. */
  step(m: Message): void {
    const s = this.#state;
    // Answers to a quiescing heartbeat must not wake the leader that sent it; anything else does.
    if (m.type !== 'heartbeatResp') s.wake();
    if (m.term > s.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const transfer = m.type === 'vote' && m.transfer;
        if (!transfer && inLease(s)) return; // §6 (diss. §4.2.3): ignore disruptive candidates while a leader is alive
      }
      if (m.type === 'preVote') {
        // never changes our term
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // our own pre-vote granted at term+1
      } else {
        const leader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap' ? m.from : null;
        s.becomeFollower(m.term, leader);
      }
    } else if (m.term < s.term) {
      if ((s.cfg.checkQuorum || s.cfg.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // A stale leader (say, back from a partition): tell it our term so it steps down.
        s.send({ type: 'appResp', from: s.id, to: m.from, term: s.term as Term, index: 0 as LogIndex, reject: true, hintIndex: 0 as LogIndex, hintTerm: 0 as Term, applied: s.raftLog.applied as LogIndex });
      } else if (m.type === 'preVote') {
        s.send({ type: 'preVoteResp', from: s.id, to: m.from, term: s.term as Term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      handleVoteRequest(s, m);
      return;
    }
    switch (s.role) {
      case 'leader':
        stepLeader(s, m);
        return;
      case 'candidate':
      case 'preCandidate':
        stepCandidate(s, m);
        return;
      case 'follower':
        stepFollower(s, m);
        return;
      default:
        assertNever(s.role);
    }
  }

  // ---------------------------------------------------------------- output

  /** Whether {@link ready} has anything for the host. */
  hasReady(): boolean {
    return hasReady(this.#state);
  }

  /** Everything the host must now do; see {@link Ready} for the order. */
  ready(): Ready {
    return takeReady(this.#state);
  }
}
