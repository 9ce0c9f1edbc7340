/**
 * The leader half of the Raft core (see raft-node.ts): becoming leader, heartbeats and check
 * quorum, replication with flow control (§5.3), commit by counting only the current term's
 * entries (§5.4.2), membership changes as they apply, and handing leadership off (diss. §3.10).
 * Pure like the rest of the core: no I/O, no clock.
 *
 * Follower read leases. A follower serves a `leased` read with no message at all while it holds
 * a read lease from its leader. The leader grants one only inside its own lease, for at most what
 * is left of it (so no other leader can exist before the follower's lease ends, given clocks that
 * tick at the same rate within a tick), and measured on the follower from when it asked. While it
 * honours a lease the leader commits an entry only once that follower has it in its log, on top
 * of the usual quorum; so every write acknowledged before a read began is in the holder's log,
 * and the holder serves the read once it has applied everything in its log when the read began
 * (and the commit index the lease came with). Reads anywhere see only committed entries, and
 * committed entries are in every holder's log: a read never sees what a later read misses.
 * A transfer waits for the leases to run out before TimeoutNow (the new leader could commit
 * without the holders); a holder that stops answering holds commits back until its lease runs
 * out, a few ticks at most.
 */
import { decodeConf, entrySize, makeEntry } from './entry.js';
import { quorum, quorumValue } from './membership.js';
import { assertNever, Progress } from './progress.js';
import { RaftReplica } from './raft-replica.js';
import type { ProposeResult } from './raft-node.js';
import type { ConfState, LogIndex, Message, NodeId, Term } from './types.js';

export abstract class RaftLeader extends RaftReplica {
  /** Hands leadership to `to` (the public API, in raft-node.ts). */
  abstract transferLeadership(to: NodeId): ProposeResult;

  // ---------------------------------------------------------------- roles

  protected becomeLeader(): void {
    this.reset(this.term);
    this._role = 'leader';
    this._lead = this.id;
    this.prs.clear();
    this.reads.resetLease();
    // Leases granted in an earlier term ran out before this election could succeed.
    this.leaseHolders.clear();
    const next = this.raftLog.lastIndex() + 1;
    for (const n of this.conf.voters) this.prs.set(n, new Progress(next, false));
    for (const n of this.conf.learners) this.prs.set(n, new Progress(next, true));
    const self = this.prs.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // §8: a new leader commits a no-op entry of its term; until then it cannot know what is committed.
    this.appendEntry('noop', new Uint8Array(0));
    this.termStart = this.raftLog.lastIndex();
  }

  protected tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.reads.tick();
    this.expireLeases();
    if (this.leadTransferee !== null && ++this.transferElapsed >= this.cfg.electionTicks) this.leadTransferee = null;
    // A removed leader, or one whose host can no longer apply (withdrawn), keeps handing off until someone takes over.
    if (this.leadTransferee === null && (!this.isVoter() || this.withdrawn)) this.handOff();
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        // §6.2 (diss.): a leader that cannot reach a quorum steps down instead of serving stale reads.
        // Not one that was removed and is handing off: as a follower it could not campaign, and
        // a remaining voter that has not learned of the removal needs its vote, which its longer
        // log may refuse. It serves no reads without a quorum's acknowledgements anyway, and a
        // leader of a later term makes it step down.
        if (!this.quorumActive() && this.isVoter()) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [n, pr] of this.prs) pr.recentActive = n === this.id;
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.reads.startRound(this.raftLog.committed, this.isReadyLeader()), false);
    }
    if (this.cfg.quiesceAfterTicks > 0 && this.canQuiesce()) {
      if (++this.idleTicks >= this.cfg.quiesceAfterTicks) {
        this.bcastHeartbeat(this.reads.startRound(this.raftLog.committed, false), true);
        this._quiesced = true;
        this.reads.resetLease();
      }
    } else {
      this.idleTicks = 0;
    }
  }

  /** Drops the follower leases that ran out; commits what they held back; sends a waiting TimeoutNow. */
  protected expireLeases(): void {
    if (this.leaseHolders.size === 0) return;
    for (const [n, until] of this.leaseHolders) if (until < this.ticks) this.leaseHolders.delete(n);
    if (this.leaseHolders.size > 0) return;
    this.maybeCommit();
    if (this.timeoutNowWaits) {
      this.timeoutNowWaits = false;
      const to = this.leadTransferee;
      if (to !== null && this.prs.get(to)?.match === this.raftLog.lastIndex()) this.sendTimeoutNow(to);
    }
  }

  /** Tells `to` to campaign at once (a transfer), unless follower leases must run out first. */
  protected sendTimeoutNow(to: NodeId): void {
    if (this.leaseHolders.size > 0) {
      this.timeoutNowWaits = true;
      return;
    }
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term as Term });
  }

  /**
   * A follower asks for a read lease: granted for what is left of this leader's own lease, to a
   * follower it is replicating to, unless a transfer is under way.
   */
  protected grantLease(m: Extract<Message, { type: 'leaseReq' }>): void {
    const pr = this.prs.get(m.from);
    let ticks = 0;
    if (pr && pr.state === 'replicate' && this.cfg.checkQuorum && this.isReadyLeader() && this.leadTransferee === null) {
      ticks = this.reads.leaseTicksLeft(this.voterPeers(), this.prs, this.quorumOthers());
    }
    if (ticks < 2) ticks = 0;
    else this.leaseHolders.set(m.from, Math.max(this.leaseHolders.get(m.from) ?? 0, this.ticks + ticks + 1));
    this.send({ type: 'leaseResp', from: this.id, to: m.from, term: this.term as Term, id: m.id, ticks, commit: this.raftLog.committed as LogIndex });
  }

  /** Transfers leadership to the best-matched voter (this leader is no longer one, or can no longer serve). */
  protected handOff(): void {
    const best = this.bestTransferee();
    if (best !== null) this.transferLeadership(best);
  }

  /** Leader: the voter other than itself whose log matches furthest (the one to hand leadership to), or null. */
  bestTransferee(): NodeId | null {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const n of this.conf.voters) {
      const m = this.prs.get(n)?.match ?? -1;
      if (n !== this.id && m > bestMatch) {
        best = n;
        bestMatch = m;
      }
    }
    return best;
  }

  protected canQuiesce(): boolean {
    if (this.withdrawn) return false;
    if (!this.isReadyLeader() || this.leadTransferee !== null || this.reads.pending() > 0 || this.leaseHolders.size > 0) return false;
    const last = this.raftLog.lastIndex();
    if (this.raftLog.committed !== last || this.raftLog.applied !== last) return false;
    for (const [n, pr] of this.prs) if (n !== this.id && (pr.match !== last || pr.applied !== last)) return false;
    return true;
  }

  protected quorumActive(): boolean {
    let active = 0;
    for (const n of this.conf.voters) if (n === this.id || this.prs.get(n)?.recentActive) active++;
    return active >= quorum(this.conf.voters);
  }

  // ---------------------------------------------------------------- membership (diss. §4.1)

  protected applyConf(next: ConfState): void {
    this._conf = next;
    if (this.role !== 'leader') return;
    for (const n of [...this.prs.keys()]) if (!next.voters.includes(n) && !next.learners.includes(n)) this.prs.delete(n);
    for (const n of [...next.voters, ...next.learners]) {
      const learner = next.learners.includes(n);
      const pr = this.prs.get(n);
      if (pr) pr.isLearner = learner;
      else {
        const p = new Progress(this.raftLog.lastIndex() + 1, learner);
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
    const e = makeEntry((this.raftLog.lastIndex() + 1) as LogIndex, this.term as Term, type, data);
    this.raftLog.append([e]);
    if (type === 'config') this.confLog.push({ index: e.index, conf: decodeConf(data) });
    this.needBcast = true;
    this.maybeCommit();
  }

  protected maybeCommit(): boolean {
    const self = this.prs.get(this.id);
    if (self) self.match = this.raftLog.stable;
    let idx = quorumValue(this.conf.voters, (n) => this.prs.get(n)?.match ?? 0);
    // A follower holding a read lease must have an entry before it commits (see the top).
    if (this.cfg.bugs.commitWithoutLeaseHolders !== true) {
      for (const [n, until] of this.leaseHolders) if (until >= this.ticks) idx = Math.min(idx, this.prs.get(n)?.match ?? 0);
    }
    if (idx <= this.raftLog.committed) return false;
    // §5.4.2: only entries of the leader's own term are committed by counting replicas.
    if (this.raftLog.termAt(idx) !== this.term && this.cfg.bugs.commitOldTermByCount !== true) return false;
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
          const hint = m.hintTerm > 0 ? this.raftLog.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
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
          while (pr.state === 'replicate' && pr.next <= this.raftLog.lastIndex() && this.sendAppend(m.from, false));
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(m.from);
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
        else if (pr.state === 'replicate' && (m.lastIndex < pr.next - 1 || (!pr.ackedSinceHeartbeat && (pr.inflightFull(this.flow()) || pr.match < pr.next - 1)))) {
          // Appends we pipelined were lost, or their acknowledgements were (or a late rejection
          // lowered the match below what was sent, and nothing sent since will raise it): probe again.
          pr.becomeProbe();
        }
        pr.ackedSinceHeartbeat = false;
        if (this.quiesced && (pr.match < this.raftLog.lastIndex() || pr.state !== 'replicate')) this.wake();
        if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from, false);
        if (!pr.isLearner) {
          this.readStates.push(...this.reads.confirm(this.voterPeers(), this.prs, this.quorumOthers()));
        }
        return;
      }
      case 'leaseReq':
        this.grantLease(m);
        return;
      case 'app':
      case 'heartbeat':
      case 'snap':
        return; // another leader of our term cannot exist (§5.2); stale ones were filtered by term
      case 'timeoutNow':
      case 'leaseResp':
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
      while (this.sendAppend(to, empty) && pr.state === 'replicate' && pr.next <= this.raftLog.lastIndex()) empty = false;
    }
  }

  protected bcastHeartbeat(seq: number, quiesce: boolean): void {
    for (const [to, pr] of this.prs) {
      if (to === this.id) continue;
      const commit = Math.min(pr.match, this.raftLog.committed);
      pr.commitSent = Math.max(pr.commitSent, commit);
      this.send({ type: 'heartbeat', from: this.id, to, term: this.term as Term, commit: commit as LogIndex, seq, quiesce });
    }
  }

  /**
   * A follower serves a read once it has applied the read index the leader gave it (Raft §8 on
   * a follower); when a leased read skips the heartbeat round, tell it the commit index now if
   * it was not told yet, rather than leave it waiting for the next append or heartbeat.
   */
  protected nudgeCommit(to: NodeId): void {
    const pr = this.prs.get(to);
    if (pr && pr.commitSent < Math.min(pr.match, this.raftLog.committed)) this.sendAppend(to, true);
  }

  /**
   * Sends `to` what it lacks, batched up to maxSizePerMsg, pipelined in `replicate` within the
   * in-flight bounds; a snapshot when the entries it needs were compacted away.
   */
  protected sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused(this.flow())) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.termAt(prevIndex);
    if (prevTerm === undefined) {
      const meta = { index: this.raftLog.snapIndex as LogIndex, term: this.raftLog.snapTerm as Term, conf: this.snapConf };
      pr.becomeSnapshot(meta.index);
      this.send({ type: 'snap', from: this.id, to, term: this.term as Term, snapshot: meta });
      return true;
    }
    const entries = this.raftLog.slice(pr.next, this.raftLog.lastIndex(), this.cfg.maxSizePerMsg, entrySize);
    if (entries.length === 0 && !sendIfEmpty && pr.state === 'replicate') return false;
    let bytes = 0;
    for (const e of entries) bytes += entrySize(e);
    this.send({ type: 'app', from: this.id, to, term: this.term as Term, prevIndex: prevIndex as LogIndex, prevTerm: prevTerm as Term, entries, commit: this.raftLog.committed as LogIndex });
    pr.commitSent = Math.max(pr.commitSent, Math.min(this.raftLog.committed, prevIndex + entries.length));
    pr.sentEntries(prevIndex + entries.length, entries.length, bytes);
    return true;
  }
}
