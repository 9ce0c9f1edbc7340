/**
 * The state and the follower and candidate halves of the Raft core (the leader half is in
 * raft-leader.ts, the public API in raft-node.ts): terms and votes, elections with pre-vote and leader
 * stickiness (§5.2, diss. §9.6, §4.2.3), a follower's handling of appends, heartbeats and
 * snapshots (§5.3, §7), and commit with membership taking effect (diss. §4.1).
 */
import { parseRaftConfig, seededRandom, type RaftConfig, type RaftConfigInput } from './config.js';
import { decodeConf, entryIntact, sameConf } from './entry.js';
import { quorum } from './membership.js';
import { assertNever, Progress } from './progress.js';
import { RaftLog, type RaftLogView } from './raft-log.js';
import { ReadTracker } from './read-tracker.js';
import type { ConfState, Entry, HardState, LogIndex, Message, NodeId, ReadFailure, ReadState, Role, SnapshotMeta, SoftState, Term } from './types.js';

/** What a replica starts from: what storage held at restart (all empty for a new replica). */
export interface RaftInit {
  hardState: HardState;
  /** The last snapshot or compaction point, with the configuration there. */
  snapshot: SnapshotMeta;
  /** Stored entries after the snapshot, in order. Checked against their checksums. */
  entries: Entry[];
  /** The state machine's applied index (it is durable by itself); entries up to it are not handed again. */
  applied: number;
}

export abstract class RaftReplica {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  protected readonly rand: () => number;
  // The replica's state, written only by the core itself; everyone else reads it through the getters below.
  protected _term = 0;
  protected _vote: NodeId | null = null;
  protected _lead: NodeId | null = null;
  protected _role: Role = 'follower';
  protected readonly raftLog: RaftLog;
  /** Configuration at the snapshot point, and every config entry after it. */
  protected snapConf: ConfState;
  protected confLog: { index: number; conf: ConfState }[] = [];
  /** The configuration in force: the latest committed one. */
  protected _conf: ConfState;
  protected prs = new Map<NodeId, Progress>();
  protected votes = new Map<NodeId, boolean>();
  protected electionElapsed = 0;
  protected heartbeatElapsed = 0;
  /** Ticks since start; a fresh replica honours a possible leader's lease for one election timeout. */
  protected sinceStart = 0;
  protected randomizedElectionTimeout = 0;
  protected leadTransferee: NodeId | null = null;
  protected transferElapsed = 0;
  /** Index of this leader's first (no-op) entry of its term. */
  protected termStart = 0;
  protected idleTicks = 0;
  /** Ticks counted while not quiesced: the clock of follower read leases (raft-leader.ts). */
  protected ticks = 0;
  /** Follower: the read lease its leader granted, valid while `ticks < until` in `term` under `leader`. */
  protected lease: { term: number; leader: NodeId; until: number; commit: number } | null = null;
  /** Follower: the lease request out, and the tick at which it was made. */
  protected leaseAsk: { id: number; tick: number } | null = null;
  protected leaseAskSeq = 0;
  /** Follower: the tick of its last lease request (at most one per tick). */
  protected leaseAskedAt = -1;
  /** Leader: followers holding a read lease it granted, and the last tick (its count) it honours each one. */
  protected readonly leaseHolders = new Map<NodeId, number>();
  /** Leader: a transfer's TimeoutNow waits for the follower leases to run out. */
  protected timeoutNowWaits = false;
  protected _quiesced = false;
  /** A corrupt entry was found at start: no voting or leading until the log is repaired from a leader. */
  protected _damaged = false;
  /** The host can no longer apply entries here: never campaign again in this incarnation (see RaftNode.withdraw). */
  protected _withdrawn = false;
  /** New entries to send (batched: sent once per Ready). */
  protected needBcast = false;
  /** The commit index moved: tell followers even without new entries. */
  protected commitChanged = false;
  protected readonly reads: ReadTracker;
  protected msgs: Message[] = [];
  protected readStates: ReadState[] = [];
  protected readFailures: ReadFailure[] = [];
  protected prevHard: HardState;
  protected prevSoft: SoftState;
  protected pendingInstall: SnapshotMeta | undefined;
  protected truncateOut: number | undefined;

  constructor(config: RaftConfigInput, init: RaftInit) {
    this.cfg = parseRaftConfig(config);
    this.id = this.cfg.id;
    this.rand = seededRandom(this.cfg.seed);
    this.reads = new ReadTracker(this.cfg.electionTicks);
    const hs = init.hardState;
    this._term = hs.term;
    this._vote = hs.vote;
    this._damaged = hs.repairing;
    let entries = init.entries;
    const bad = entries.findIndex((e, k) => !entryIntact(e) || e.index !== init.snapshot.index + 1 + k);
    if (bad >= 0) {
      entries = entries.slice(0, bad);
      this._damaged = true;
      this.truncateOut = init.snapshot.index + 1 + bad;
    }
    const last = init.snapshot.index + entries.length;
    // A snapshot or compaction point is committed by definition, even when the stored commit index
    // is older: the host defers hard states that only move the commit index, but compacts up to
    // what the state machine holds durably.
    const committed = Math.max(Math.min(hs.commit, last), init.snapshot.index);
    this.raftLog = new RaftLog(init.snapshot.index, init.snapshot.term, entries, committed, Math.min(init.applied, committed));
    if (init.applied > this.raftLog.applied) this.raftLog.applied = this.raftLog.applyHanded = Math.min(init.applied, this.raftLog.committed);
    this.snapConf = init.snapshot.conf;
    for (const e of entries) if (e.type === 'config') this.confLog.push({ index: e.index, conf: decodeConf(e.data) });
    this._conf = this.confAt(this.raftLog.committed);
    this.prevHard = { term: this.term as Term, vote: this.vote, commit: this.raftLog.committed as LogIndex, repairing: hs.repairing };
    this.resetRandomizedTimeout();
    this.prevSoft = this.softState();
  }

  // ---------------------------------------------------------------- queries

  get term(): number {
    return this._term;
  }

  get vote(): NodeId | null {
    return this._vote;
  }

  /** The leader this replica follows (itself when it leads), or null when it knows none. */
  get lead(): NodeId | null {
    return this._lead;
  }

  get role(): Role {
    return this._role;
  }

  /** The configuration in force: the latest committed one. */
  get conf(): Readonly<ConfState> {
    return this._conf;
  }

  /** The log, to read (the core alone changes it). */
  get log(): RaftLogView {
    return this.raftLog;
  }

  /** A leader that stopped heartbeating an idle group, or a follower that knows it did. */
  get quiesced(): boolean {
    return this._quiesced;
  }

  /** A corrupt entry was found at start: no voting or leading until the log is repaired from a leader. */
  get damaged(): boolean {
    return this._damaged;
  }

  /** The host can no longer apply entries here (see RaftNode.withdraw). */
  get withdrawn(): boolean {
    return this._withdrawn;
  }

  isVoter(n: NodeId = this.id): boolean {
    return this.conf.voters.includes(n);
  }

  /** Leader whose first entry of the term has committed (§8: only then does it know what is committed). */
  isReadyLeader(): boolean {
    return this.role === 'leader' && this.raftLog.committed >= this.termStart;
  }

  /** The configuration in force at index `i` (≥ the snapshot index). */
  confAt(i: number): ConfState {
    let c = this.snapConf;
    for (const x of this.confLog) if (x.index <= i) c = x.conf;
    return c;
  }

  /** Metadata of a state-machine image at applied index `i`, for InstallSnapshot. */
  snapshotMetaAt(i: number): SnapshotMeta {
    const t = this.raftLog.termAt(i);
    if (t === undefined || i > this.raftLog.committed) throw new RangeError(`raft: no committed entry at ${i} to describe a snapshot`);
    return { index: i as LogIndex, term: t as Term, conf: this.confAt(i) };
  }

  /** Whether a snapshot at `meta` would be installed (so the host should restore its state machine first). */
  wantsSnapshot(meta: SnapshotMeta): boolean {
    return meta.index > this.raftLog.committed && !this.raftLog.matchTerm(meta.index, meta.term);
  }

  softState(): SoftState {
    return { role: this.role, leader: this.lead, term: this.term as Term, ready: this.isReadyLeader(), isVoter: this.isVoter() };
  }

  // ---------------------------------------------------------------- roles

  protected resetRandomizedTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + Math.floor(this.rand() * this.cfg.electionTicks);
  }

  protected reset(t: number): void {
    if (t !== this.term) {
      this._term = t;
      this._vote = null;
    }
    this._lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedTimeout();
    this.leadTransferee = null;
    this.timeoutNowWaits = false;
    this.lease = null;
    this.leaseAsk = null;
    this.votes.clear();
    this.idleTicks = 0;
    if (this.role === 'leader') this.readFailures.push(...this.reads.failAll('stepDown'));
    else this.readFailures.push(...this.reads.failAll('notLeader'));
  }

  protected becomeFollower(t: number, lead: NodeId | null): void {
    this.reset(t);
    this._role = 'follower';
    this._lead = lead;
  }

  protected becomePreCandidate(): void {
    this.votes.clear();
    this._role = 'preCandidate';
    this._lead = null;
    this.lease = null;
    this.leaseAsk = null;
    this.readFailures.push(...this.reads.failAll('notLeader'));
  }

  protected becomeCandidate(): void {
    this.reset(this.term + 1);
    this._role = 'candidate';
    this._vote = this.id;
  }

  protected promotable(): boolean {
    return this.isVoter() && !this.damaged && !this.withdrawn;
  }

  protected campaign(kind: 'pre' | 'normal' | 'transfer'): void {
    if (!this.promotable()) return;
    let voteTerm: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.votes.set(this.id, true);
    if (this.tally() === 'won') {
      if (kind === 'pre') this.campaign('normal');
      else this.becomeLeader();
      return;
    }
    for (const to of this.conf.voters) {
      if (to === this.id) continue;
      const base = { from: this.id, to, term: voteTerm as Term, lastIndex: this.raftLog.lastIndex() as LogIndex, lastTerm: this.raftLog.lastTerm() as Term };
      this.send(kind === 'pre' ? { type: 'preVote', ...base } : { type: 'vote', ...base, transfer: kind === 'transfer' });
    }
  }

  protected tally(): 'won' | 'lost' | 'pending' {
    let granted = 0;
    let rejected = 0;
    for (const n of this.conf.voters) {
      const v = this.votes.get(n);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = quorum(this.conf.voters);
    if (granted >= q) return 'won';
    if (rejected > this.conf.voters.length - q) return 'lost';
    return 'pending';
  }

  /** A leader with check-quorum, or a follower that heard from a leader (or started) less than an election timeout ago. */
  protected inLease(): boolean {
    if (!this.cfg.checkQuorum) return false;
    if (this.role === 'leader') return true;
    return this.lead !== null ? this.electionElapsed < this.cfg.electionTicks : this.sinceStart < this.cfg.electionTicks;
  }

  protected tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.resetRandomizedTimeout();
      this.campaign(this.cfg.preVote ? 'pre' : 'normal');
    }
  }

  protected wake(): void {
    if (!this.quiesced) return;
    this._quiesced = false;
    this.idleTicks = 0;
    if (this.role === 'leader') this.reads.resetLease();
  }

  protected voterPeers(): NodeId[] {
    return this.conf.voters.filter((n) => n !== this.id);
  }

  /** Acknowledgements from other voters needed for a quorum (the leader counts itself). */
  protected quorumOthers(): number {
    return quorum(this.conf.voters) - (this.isVoter() ? 1 : 0);
  }

  // ---------------------------------------------------------------- votes (§5.2, §5.4.1, diss. §9.6)

  protected handleVoteRequest(m: Extract<Message, { type: 'vote' | 'preVote' }>): void {
    const pre = m.type === 'preVote';
    const canVote = this.vote === m.from || (this.vote === null && this.lead === null) || (pre && m.term > this.term);
    const upToDate = this.cfg.bugs.voteWithoutLogCheck === true || this.raftLog.isUpToDate(m.lastIndex, m.lastTerm);
    if (canVote && upToDate && !this.damaged) {
      this.send({ type: pre ? 'preVoteResp' : 'voteResp', from: this.id, to: m.from, term: m.term, reject: false });
      if (!pre) {
        this.electionElapsed = 0;
        this._vote = m.from;
      }
    } else {
      this.send({ type: pre ? 'preVoteResp' : 'voteResp', from: this.id, to: m.from, term: this.term as Term, reject: true });
    }
  }

  protected stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'preVoteResp':
      case 'voteResp': {
        if ((m.type === 'preVoteResp') !== (this.role === 'preCandidate')) return;
        if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
        const res = this.tally();
        if (res === 'won') {
          if (this.role === 'preCandidate') this.campaign('normal');
          else this.becomeLeader();
        } else if (res === 'lost') {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      case 'appResp':
      case 'heartbeatResp':
      case 'timeoutNow':
      case 'vote':
      case 'preVote':
      case 'leaseReq':
      case 'leaseResp':
        return;
      default:
        assertNever(m);
    }
  }

  // ---------------------------------------------------------------- follower (§5.3)

  protected stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this._lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this._lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this._lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        this.campaign('transfer');
        return;
      case 'leaseResp':
        // Only the answer to the request out now counts: a lease is measured from when it was asked.
        if (this.leaseAsk !== null && m.id === this.leaseAsk.id && m.from === this.lead) {
          if (m.ticks > 0) this.lease = { term: this.term, leader: m.from, until: this.leaseAsk.tick + m.ticks - 1, commit: m.commit };
          this.leaseAsk = null;
        }
        return;
      case 'leaseReq':
      case 'appResp':
      case 'heartbeatResp':
      case 'preVoteResp':
      case 'voteResp':
      case 'vote':
      case 'preVote':
        return;
      default:
        assertNever(m);
    }
  }

  protected handleAppend(m: Extract<Message, { type: 'app' }>): void {
    const reply = (index: number, reject: boolean, hintIndex = 0, hintTerm = 0): void =>
      this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term as Term, index: index as LogIndex, reject, hintIndex: hintIndex as LogIndex, hintTerm: hintTerm as Term, applied: this.raftLog.applied as LogIndex });
    if (m.prevIndex < this.raftLog.committed) {
      reply(this.raftLog.committed, false);
      return;
    }
    if (this.raftLog.matchTerm(m.prevIndex, m.prevTerm)) {
      for (const e of m.entries) if (!entryIntact(e)) return; // corrupted on the way: as if lost
      const before = this.raftLog.lastIndex();
      const lastNew = this.raftLog.maybeAppend(m.prevIndex, m.entries);
      if (this.raftLog.lastIndex() !== before || m.entries.length > 0) this.syncConfLog();
      this.commitTo(Math.min(m.commit, lastNew));
      // Repaired: the leader's commit point is in our log and is of its term, so every entry
      // ever committed is in our log too (leader completeness, §5.4).
      if (this.damaged && m.commit <= lastNew && this.raftLog.termAt(m.commit) === this.term) this._damaged = false;
      reply(lastNew, false);
      return;
    }
    const hint = this.raftLog.findConflictByTerm(Math.min(m.prevIndex, this.raftLog.lastIndex()), m.prevTerm);
    reply(m.prevIndex, true, hint.index, hint.term);
  }

  protected handleHeartbeat(m: Extract<Message, { type: 'heartbeat' }>): void {
    this.commitTo(m.commit);
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term as Term, seq: m.seq, applied: this.raftLog.applied as LogIndex, lastIndex: this.raftLog.lastIndex() as LogIndex });
    if (m.quiesce && this.raftLog.lastIndex() === m.commit && this.raftLog.committed === m.commit) {
      this._quiesced = true;
      this.lease = null; // a quiesced replica stops counting ticks, so it cannot time a lease
    }
  }

  protected handleSnapshot(m: Extract<Message, { type: 'snap' }>): void {
    const s = m.snapshot;
    const reply = (index: number): void =>
      this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term as Term, index: index as LogIndex, reject: false, hintIndex: 0 as LogIndex, hintTerm: 0 as Term, applied: this.raftLog.applied as LogIndex });
    if (s.index <= this.raftLog.committed) {
      reply(this.raftLog.committed);
      return;
    }
    if (this.raftLog.matchTerm(s.index, s.term)) {
      this.commitTo(s.index);
      reply(this.raftLog.committed);
      return;
    }
    this.raftLog.restore(s.index, s.term);
    this.snapConf = s.conf;
    this.confLog = [];
    this._conf = s.conf;
    this.pendingInstall = s;
    reply(s.index);
  }

  /** Rebuilds the list of config entries after an append that may have truncated some. */
  protected syncConfLog(): void {
    this.confLog = this.confLog.filter((x) => this.raftLog.entry(x.index)?.type === 'config' && x.index <= this.raftLog.lastIndex());
    const known = new Set(this.confLog.map((x) => x.index));
    for (let i = Math.max(this.raftLog.firstIndex(), this.raftLog.committed + 1); i <= this.raftLog.lastIndex(); i++) {
      const e = this.raftLog.entry(i) as Entry;
      if (e.type === 'config' && !known.has(i)) this.confLog.push({ index: i, conf: decodeConf(e.data) });
    }
    this.confLog.sort((a, b) => a.index - b.index);
  }

  protected commitTo(i: number): void {
    if (!this.raftLog.commitTo(i)) return;
    const next = this.confAt(this.raftLog.committed);
    if (!sameConf(next, this.conf)) this.applyConf(next);
    // Followers holding a read lease are told at once: their reads wait to learn the commit.
    if (this.role === 'leader' && (this.cfg.commitBroadcast || this.leaseHolders.size > 0)) this.commitChanged = true;
  }

  // ---------------------------------------------------------------- output

  protected send(m: Message): void {
    this.msgs.push(m);
  }

  protected abstract becomeLeader(): void;
  /** The committed configuration changed to `next`. */
  protected abstract applyConf(next: ConfState): void;
}
