/**
 * The Raft core, modelled on etcd's: a pure state machine over one replica of one group. Input
 * is `step(message)`, `tick()`, `propose(...)`, `readIndex(...)` and friends; output is the
 * {@link Ready} returned by `ready()`. No I/O, no clock (time is ticks), no Math.random (a
 * seeded generator). Section numbers cite the Raft paper (Ongaro and Ousterhout, 2014) and,
 * where marked "diss.", Ongaro's dissertation. This file holds the public API and the leader
 * half (§5.3 replication, §5.4.2 commit, §8 reads, diss. §3.10 transfer); the state and the
 * follower and candidate halves are in raft-replica.ts.
 */
import { decodeConf, EMPTY_CONF, encodeConf, entrySize, makeEntry } from './entry.js';
import { applyConfChange, quorum, quorumValue, type ConfChange } from './membership.js';
import { assertNever, Progress } from './progress.js';
import { RaftReplica, type RaftInit } from './raft-replica.js';
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

export class RaftNode extends RaftReplica {
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
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: this.conf,
      damaged: this.damaged,
      quiesced: this.quiesced,
      progress,
    };
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    if (this.quiesced) return;
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
    return { ok: true, index: this.log.lastIndex() as LogIndex, term: this.term as Term };
  }

  /** Proposes a membership change (one server at a time). */
  proposeConfChange(change: ConfChange): ProposeResult {
    this.wake();
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.lead };
    if (this.leadTransferee !== null) return { ok: false, reason: 'transferring', leader: this.lead };
    const lastConf = this.confLog[this.confLog.length - 1];
    if (!this.isReadyLeader() || (lastConf !== undefined && lastConf.index > this.log.committed)) {
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
    return { ok: true, index: this.log.lastIndex() as LogIndex, term: this.term as Term };
  }

  /**
   * Asks for a linearizable read (§8, diss. §6.4). The answer comes in a later Ready as a
   * ReadState (serve once applied ≥ its index) or a ReadFailure. `leased` answers at once while
   * the leader's lease holds (check-quorum must be on), else falls back to a quorum round.
   */
  readIndex(id: number, leased: boolean): void {
    this.wake();
    if (this.role !== 'leader') {
      this.readFailures.push({ id, reason: 'notLeader' });
      return;
    }
    if (leased && this.cfg.checkQuorum && this.isReadyLeader() && this.leadTransferee === null && this.reads.leaseValid(this.voterPeers(), this.prs, this.quorumOthers())) {
      this.readStates.push({ id, index: this.log.committed as LogIndex });
      return;
    }
    if (this.conf.voters.length === 1 && this.isVoter() && this.isReadyLeader()) {
      this.readStates.push({ id, index: this.log.committed as LogIndex });
      return;
    }
    this.reads.add(id);
  }

  /** Hands leadership to `to` (diss. §3.10): catch it up, then tell it to campaign at once. */
  transferLeadership(to: NodeId): ProposeResult {
    this.wake();
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.lead };
    if (to === this.id) return { ok: true, index: this.log.lastIndex() as LogIndex, term: this.term as Term };
    const pr = this.prs.get(to);
    if (!pr || pr.isLearner) return { ok: false, reason: 'invalid', leader: this.lead, detail: `${to} is not a voter of this group` };
    this.leadTransferee = to;
    this.transferElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', from: this.id, to, term: this.term as Term });
    else this.sendAppend(to, true);
    return { ok: true, index: this.log.lastIndex() as LogIndex, term: this.term as Term };
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
    if (last && last.index > this.log.stable && this.log.termAt(last.index) === last.term) this.log.stable = last.index;
    if (rd.snapshot && rd.snapshot.index > this.log.stable) this.log.stable = Math.min(rd.snapshot.index, this.log.lastIndex());
    if (this.role === 'leader') this.maybeCommit();
  }

  /** The state machine applied up to `i`. */
  appliedTo(i: number): void {
    if (i > this.log.applied) this.log.applied = Math.min(i, Math.max(this.log.committed, this.log.applied));
  }

  /** The highest index `compact` accepts: applied, committed and in the log. */
  compactableIndex(): number {
    return Math.min(this.log.applied, this.log.committed, this.log.lastIndex());
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
    this.log.compact(i);
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
    this.quiesced = false;
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
        this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term as Term, index: 0 as LogIndex, reject: true, hintIndex: 0 as LogIndex, hintTerm: 0 as Term, applied: this.log.applied as LogIndex });
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
    if (this.log.persistHanded < this.log.lastIndex()) return true;
    if (this.log.applyHanded < Math.min(this.log.committed, this.log.lastIndex())) return true;
    const hs = this.prevHard;
    if (hs.term !== this.term || hs.vote !== this.vote || hs.commit !== this.log.committed || hs.repairing !== this.damaged) return true;
    const ss = this.prevSoft;
    return ss.role !== this.role || ss.leader !== this.lead || ss.term !== this.term || ss.ready !== this.isReadyLeader() || ss.isVoter !== this.isVoter();
  }

  /** Everything the host must now do; see {@link Ready} for the order. */
  ready(): Ready {
    if (this.role === 'leader') {
      if (this.needBcast || this.commitChanged) this.bcastAppend(this.commitChanged);
      if (this.isReadyLeader() && this.reads.needsRound()) {
        if (this.conf.voters.length === 1) this.readStates.push(...this.reads.confirmAll(this.log.committed));
        else this.bcastHeartbeat(this.reads.startRound(this.log.committed), false);
      }
    }
    this.needBcast = false;
    this.commitChanged = false;
    const hs: HardState = { term: this.term as Term, vote: this.vote, commit: this.log.committed as LogIndex, repairing: this.damaged };
    const hsChanged = hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit || hs.repairing !== this.prevHard.repairing;
    this.prevHard = hs;
    const ss = this.softState();
    const p = this.prevSoft;
    const ssChanged = ss.role !== p.role || ss.leader !== p.leader || ss.term !== p.term || ss.ready !== p.ready || ss.isVoter !== p.isVoter;
    this.prevSoft = ss;
    const rd: Ready = {
      hardState: hsChanged ? hs : undefined,
      entries: this.log.takeUnpersisted(),
      snapshot: this.pendingInstall,
      truncateFrom: this.truncateOut as LogIndex | undefined,
      messages: this.msgs,
      committedEntries: this.log.takeCommitted(),
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

  // ---------------------------------------------------------------- roles

  protected becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    this.prs.clear();
    this.reads.resetLease();
    const next = this.log.lastIndex() + 1;
    for (const n of this.conf.voters) this.prs.set(n, new Progress(next, false));
    for (const n of this.conf.learners) this.prs.set(n, new Progress(next, true));
    const self = this.prs.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // §8: a new leader commits a no-op entry of its term; until then it cannot know what is committed.
    this.appendEntry('noop', new Uint8Array(0));
    this.termStart = this.log.lastIndex();
  }

  protected tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.reads.tick();
    if (this.leadTransferee !== null && ++this.transferElapsed >= this.cfg.electionTicks) this.leadTransferee = null;
    if (this.leadTransferee === null && !this.isVoter()) this.handOff();
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        // §6.2 (diss.): a leader that cannot reach a quorum steps down instead of serving stale reads.
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [n, pr] of this.prs) pr.recentActive = n === this.id;
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.reads.startRound(this.log.committed, this.isReadyLeader()), false);
    }
    if (this.cfg.quiesceAfterTicks > 0 && this.canQuiesce()) {
      if (++this.idleTicks >= this.cfg.quiesceAfterTicks) {
        this.bcastHeartbeat(this.reads.startRound(this.log.committed, false), true);
        this.quiesced = true;
        this.reads.resetLease();
      }
    } else {
      this.idleTicks = 0;
    }
  }

  /** Transfers leadership to the best-matched voter (this leader is no longer one). */
  protected handOff(): void {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const n of this.conf.voters) {
      const m = this.prs.get(n)?.match ?? -1;
      if (n !== this.id && m > bestMatch) {
        best = n;
        bestMatch = m;
      }
    }
    if (best !== null) this.transferLeadership(best);
  }

  protected canQuiesce(): boolean {
    if (!this.isReadyLeader() || this.leadTransferee !== null || this.reads.pending() > 0) return false;
    const last = this.log.lastIndex();
    if (this.log.committed !== last || this.log.applied !== last) return false;
    for (const [n, pr] of this.prs) if (n !== this.id && (pr.match !== last || pr.applied !== last)) return false;
    return true;
  }

  protected quorumActive(): boolean {
    let active = 0;
    for (const n of this.conf.voters) if (n === this.id || this.prs.get(n)?.recentActive) active++;
    return active >= quorum(this.conf.voters);
  }

  // ---------------------------------------------------------------- follower (§5.3)

  protected applyConf(next: ConfState): void {
    this.conf = next;
    if (this.role !== 'leader') return;
    for (const n of [...this.prs.keys()]) if (!next.voters.includes(n) && !next.learners.includes(n)) this.prs.delete(n);
    for (const n of [...next.voters, ...next.learners]) {
      const learner = next.learners.includes(n);
      const pr = this.prs.get(n);
      if (pr) pr.isLearner = learner;
      else {
        const p = new Progress(this.log.lastIndex() + 1, learner);
        p.recentActive = true;
        this.prs.set(n, p);
      }
    }
    if (this.leadTransferee !== null && !next.voters.includes(this.leadTransferee)) this.leadTransferee = null;
    // Removed by a change an earlier leader proposed: keep leading the new configuration (without
    // counting itself) until a new voter, caught up and so knowing the change committed, takes over.
    if (!next.voters.includes(this.id)) this.handOff();
    this.maybeCommit();
    this.needBcast = true;
  }

  // ---------------------------------------------------------------- leader (§5.3, §5.4.2)

  protected appendEntry(type: 'normal' | 'noop' | 'config', data: Uint8Array): void {
    const e = makeEntry((this.log.lastIndex() + 1) as LogIndex, this.term as Term, type, data);
    this.log.append([e]);
    if (type === 'config') this.confLog.push({ index: e.index, conf: decodeConf(data) });
    this.needBcast = true;
    this.maybeCommit();
  }

  protected maybeCommit(): boolean {
    const self = this.prs.get(this.id);
    if (self) self.match = this.log.stable;
    const idx = quorumValue(this.conf.voters, (n) => this.prs.get(n)?.match ?? 0);
    if (idx <= this.log.committed) return false;
    // §5.4.2: only entries of the leader's own term are committed by counting replicas.
    if (this.log.termAt(idx) !== this.term && this.cfg.bugs.commitOldTermByCount !== true) return false;
    this.commitTo(idx);
    return true;
  }

  protected stepLeader(m: Message): void {
    switch (m.type) {
      case 'appResp': {
        const pr = this.prs.get(m.from);
        if (!pr) return;
        pr.recentActive = true;
        pr.applied = Math.max(pr.applied, m.applied);
        if (m.reject) {
          // Fast backtracking (§5.3, end): jump over the whole conflicting term at once.
          const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
          if (pr.maybeDecrTo(m.index, hint)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from, false);
          }
          return;
        }
        pr.ackedSinceHeartbeat = true;
        const wasPaused = pr.isPaused(this.flow());
        const wasSnapshot = pr.state === 'snapshot';
        if (pr.maybeUpdate(m.index) || wasSnapshot) {
          if (pr.state === 'probe') pr.becomeReplicate();
          else if (pr.state === 'snapshot') {
            if (pr.match < pr.pendingSnapshot) return;
            pr.becomeProbe();
            pr.becomeReplicate();
          } else pr.freeTo(m.index);
          this.maybeCommit();
          if (wasPaused) this.sendAppend(m.from, false);
          while (pr.state === 'replicate' && pr.next <= this.log.lastIndex() && this.sendAppend(m.from, false));
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
            this.send({ type: 'timeoutNow', from: this.id, to: m.from, term: this.term as Term });
          }
        } else if (pr.state === 'replicate') {
          pr.freeTo(m.index);
        }
        return;
      }
      case 'heartbeatResp': {
        const pr = this.prs.get(m.from);
        if (!pr) return;
        pr.recentActive = true;
        pr.applied = Math.max(pr.applied, m.applied);
        pr.ackedSeq = Math.max(pr.ackedSeq, m.seq);
        if (m.lastIndex < pr.match) {
          // The follower lost entries it had acknowledged (a corrupt entry dropped at restart).
          pr.match = m.lastIndex;
          pr.becomeProbe();
        } else if (pr.state === 'probe') pr.probeSent = false;
        else if (pr.state === 'replicate' && (m.lastIndex < pr.next - 1 || (pr.inflightFull(this.flow()) && !pr.ackedSinceHeartbeat))) {
          // Appends we pipelined were lost, or their acknowledgements were: probe again.
          pr.becomeProbe();
        }
        pr.ackedSinceHeartbeat = false;
        if (this.quiesced && (pr.match < this.log.lastIndex() || pr.state !== 'replicate')) this.wake();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, false);
        if (!pr.isLearner) {
          this.readStates.push(...this.reads.confirm(this.voterPeers(), this.prs, this.quorumOthers()));
        }
        return;
      }
      case 'app':
      case 'heartbeat':
      case 'snap':
        return; // another leader of our term cannot exist (§5.2); stale ones were filtered by term
      case 'timeoutNow':
      case 'preVoteResp':
      case 'voteResp':
      case 'vote':
      case 'preVote':
        return;
      default:
        assertNever(m);
    }
  }

  protected flow(): { maxInflightMsgs: number; maxInflightBytes: number } {
    return this.cfg;
  }

  /** Sends every follower what it lacks, pipelining up to the in-flight bounds. */
  protected bcastAppend(sendIfEmpty: boolean): void {
    for (const [to, pr] of this.prs) {
      if (to === this.id) continue;
      let empty = sendIfEmpty;
      while (this.sendAppend(to, empty) && pr.state === 'replicate' && pr.next <= this.log.lastIndex()) empty = false;
    }
  }

  protected bcastHeartbeat(seq: number, quiesce: boolean): void {
    for (const [to, pr] of this.prs) {
      if (to === this.id) continue;
      this.send({ type: 'heartbeat', from: this.id, to, term: this.term as Term, commit: Math.min(pr.match, this.log.committed) as LogIndex, seq, quiesce });
    }
  }

  /**
   * Sends `to` what it lacks, batched up to maxSizePerMsg, pipelined in `replicate` within the
   * in-flight bounds; a snapshot when the entries it needs were compacted away.
   */
  protected sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused(this.flow())) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.termAt(prevIndex);
    if (prevTerm === undefined) {
      const meta = { index: this.log.snapIndex as LogIndex, term: this.log.snapTerm as Term, conf: this.snapConf };
      pr.becomeSnapshot(meta.index);
      this.send({ type: 'snap', from: this.id, to, term: this.term as Term, snapshot: meta });
      return true;
    }
    const entries = this.log.slice(pr.next, this.log.lastIndex(), this.cfg.maxSizePerMsg, entrySize);
    if (entries.length === 0 && !sendIfEmpty && pr.state === 'replicate') return false;
    let bytes = 0;
    for (const e of entries) bytes += entrySize(e);
    this.send({ type: 'app', from: this.id, to, term: this.term as Term, prevIndex: prevIndex as LogIndex, prevTerm: prevTerm as Term, entries, commit: this.log.committed as LogIndex });
    pr.sentEntries(prevIndex + entries.length, entries.length, bytes);
    return true;
  }

}
