/**
 * The leader role of the Raft core: becoming leader and its tick (heartbeats, check quorum,
 * quiescence), its step function, replication with flow control (§5.3), proposals and commit by
 * counting only the current term's entries (§5.4.2), linearizable reads (§8), membership changes
 * as they apply (diss. §4.1), and handing leadership off (diss. §3.10). Plain functions over the
 * replica's RaftState (raft-state.ts); the leases a leader grants and honours, and its own read
 * lease, are in leases.ts. Pure like the rest of the core: no I/O, no clock.
 */
import { decodeConf, encodeConf, entrySize, makeEntry } from './entry.js';
import { expireLeases, grantLease, holdersAllow, leasedReadIndex, sendTimeoutNow } from './leases.js';
import { applyConfChange, quorum, quorumValue, type ConfChange } from './membership.js';
import { assertNever, Progress } from './progress.js';
import type { ProposeResult } from './raft-node.js';
import type { RaftState } from './raft-state.js';
import type { ConfState, LogIndex, Message, NodeId, Term } from './types.js';

// ---------------------------------------------------------------- becoming leader, and its tick

export function becomeLeader(s: RaftState): void {
  s.reset(s.term);
  s.role = 'leader';
  s.lead = s.id;
  s.prs.clear();
  s.reads.resetLease();
  // Leases granted in an earlier term ran out before this election could succeed.
  s.leaseHolders.clear();
  const next = s.raftLog.lastIndex() + 1;
  for (const n of s.conf.voters) s.prs.set(n, new Progress(next, false));
  for (const n of s.conf.learners) s.prs.set(n, new Progress(next, true));
  const self = s.prs.get(s.id);
  if (self) {
    self.becomeReplicate();
    self.recentActive = true;
  }
  // §8: a new leader commits a no-op entry of its term; until then it cannot know what is committed.
  appendEntry(s, 'noop', new Uint8Array(0));
  s.termStart = s.raftLog.lastIndex();
}

export function tickLeader(s: RaftState): void {
  s.heartbeatElapsed++;
  s.electionElapsed++;
  s.reads.tick();
  expireLeases(s);
  if (s.leadTransferee !== null && ++s.transferElapsed >= s.cfg.electionTicks) s.leadTransferee = null;
  // A removed leader, or one whose host can no longer apply (withdrawn), keeps handing off until someone takes over.
  if (s.leadTransferee === null && (!s.isVoter() || s.withdrawn)) handOff(s);
  if (s.electionElapsed >= s.cfg.electionTicks) {
    s.electionElapsed = 0;
    if (s.cfg.checkQuorum) {
      // §6.2 (diss.): a leader that cannot reach a quorum steps down instead of serving stale reads.
      // Not one that was removed and is handing off: as a follower it could not campaign, and
      // a remaining voter that has not learned of the removal needs its vote, which its longer
      // log may refuse. It serves no reads without a quorum's acknowledgements anyway, and a
      // leader of a later term makes it step down.
      if (!quorumActive(s) && s.isVoter()) {
        s.becomeFollower(s.term, null);
        return;
      }
      for (const [n, pr] of s.prs) pr.recentActive = n === s.id;
    }
  }
  if (s.heartbeatElapsed >= s.cfg.heartbeatTicks) {
    s.heartbeatElapsed = 0;
    bcastHeartbeat(s, s.reads.startRound(s.raftLog.committed, s.isReadyLeader()), false);
  }
  if (s.cfg.quiesceAfterTicks > 0 && canQuiesce(s)) {
    if (++s.idleTicks >= s.cfg.quiesceAfterTicks) {
      bcastHeartbeat(s, s.reads.startRound(s.raftLog.committed, false), true);
      s.quiesced = true;
      s.reads.resetLease();
    }
  } else {
    s.idleTicks = 0;
  }
}

function quorumActive(s: RaftState): boolean {
  let active = 0;
  for (const n of s.conf.voters) if (n === s.id || s.prs.get(n)?.recentActive) active++;
  return active >= quorum(s.conf.voters);
}

function canQuiesce(s: RaftState): boolean {
  if (s.withdrawn) return false;
  if (!s.isReadyLeader() || s.leadTransferee !== null || s.reads.pending() > 0 || s.leaseHolders.size > 0) return false;
  const last = s.raftLog.lastIndex();
  if (s.raftLog.committed !== last || s.raftLog.applied !== last) return false;
  for (const [n, pr] of s.prs) if (n !== s.id && (pr.match !== last || pr.applied !== last)) return false;
  return true;
}

// ---------------------------------------------------------------- step

export function stepLeader(s: RaftState, m: Message): void {
  switch (m.type) {
    case 'appResp': {
      const pr = s.prs.get(m.from);
      if (!pr) return;
      pr.recentActive = true;
      pr.applied = Math.max(pr.applied, m.applied);
      if (m.reject) {
        // Fast backtracking (§5.3, end): jump over the whole conflicting term at once.
        const hint = m.hintTerm > 0 ? s.raftLog.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
        if (pr.maybeDecrTo(m.index, hint)) {
          if (pr.state === 'replicate') {
            pr.becomeProbe();
            s.probes++;
          }
          sendAppend(s, m.from, false);
        }
        return;
      }
      const wasPaused = pr.isPaused(flow(s));
      const wasSnapshot = pr.state === 'snapshot';
      if (pr.maybeUpdate(m.index) || wasSnapshot) {
        if (pr.state === 'probe') pr.becomeReplicate();
        else if (pr.state === 'snapshot') {
          if (pr.match < pr.pendingSnapshot) return;
          pr.becomeProbe();
          pr.becomeReplicate();
        } else pr.freeTo(m.index);
        maybeCommit(s);
        if (wasPaused) sendAppend(s, m.from, false);
        while (pr.state === 'replicate' && pr.next <= s.raftLog.lastIndex() && sendAppend(s, m.from, false));
        if (m.from === s.leadTransferee && pr.match === s.raftLog.lastIndex()) sendTimeoutNow(s, m.from);
      } else if (pr.state === 'replicate') {
        pr.freeTo(m.index);
      }
      return;
    }
    case 'heartbeatResp': {
      const pr = s.prs.get(m.from);
      if (!pr) return;
      pr.recentActive = true;
      pr.applied = Math.max(pr.applied, m.applied);
      // A copy of an answer already taken (the simulation's network duplicates) says nothing new.
      const fresh = m.seq > pr.ackedSeq;
      pr.ackedSeq = Math.max(pr.ackedSeq, m.seq);
      if (fresh && m.lastIndex < pr.match) {
        // The follower lost entries it had acknowledged (a corrupt entry dropped at restart).
        pr.match = m.lastIndex;
        if (pr.state === 'replicate') s.probes++;
        pr.becomeProbe();
      } else if (pr.state === 'probe') pr.probeSent = false;
      else if (pr.state === 'replicate' && pr.match < (pr.sentBeforeRound(m.seq) ?? 0)) {
        // An append sent before this heartbeat is still unacknowledged. The peer answers a
        // heartbeat only once what it received before it is on disk, and its acknowledgements of
        // earlier appends go out before that answer: so the append was lost, or its
        // acknowledgement was (or a late rejection lowered the match below what was sent, and
        // nothing sent since will raise it): probe again. Appends sent after the heartbeat are
        // not judged by its answer: they are merely in flight.
        pr.becomeProbe();
        s.probes++;
      }
      if (s.quiesced && (pr.match < s.raftLog.lastIndex() || pr.state !== 'replicate')) s.wake();
      if (pr.match < s.raftLog.lastIndex()) sendAppend(s, m.from, false);
      if (!pr.isLearner) {
        s.answerReads(s.reads.confirm(s.voterPeers(), s.prs, s.quorumOthers()));
      }
      return;
    }
    case 'leaseReq':
      grantLease(s, m);
      return;
    case 'readReq':
      readIndex(s, m.ctx, m.leased, m.from, true);
      return;
    case 'readResp':
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

// ---------------------------------------------------------------- replication (§5.3)

function flow(s: RaftState): { maxInflightMsgs: number; maxInflightBytes: number } {
  return s.cfg;
}

/**
 * Sends `to` what it lacks, batched up to maxSizePerMsg, pipelined in `replicate` within the
 * in-flight bounds; a snapshot when the entries it needs were compacted away, or when it has
 * none of the log and the leader has applied more than `newPeerSnapshotAfter` entries (see
 * RaftConfig). The `snap` message names the point the image covers at least (the host streams
 * the state machine's image as it is then, and describes it by its own applied index).
 */
export function sendAppend(s: RaftState, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = s.prs.get(to);
  if (!pr || pr.isPaused(flow(s))) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = s.raftLog.termAt(prevIndex);
  if (prevTerm === undefined || (prevIndex === 0 && s.raftLog.applied > s.cfg.newPeerSnapshotAfter)) {
    const meta = prevTerm === undefined ? { index: s.raftLog.snapIndex as LogIndex, term: s.raftLog.snapTerm as Term, conf: s.snapConf } : s.snapshotMetaAt(s.raftLog.applied);
    pr.becomeSnapshot(meta.index);
    s.send({ type: 'snap', from: s.id, to, term: s.term as Term, snapshot: meta });
    return true;
  }
  const entries = s.raftLog.slice(pr.next, s.raftLog.lastIndex(), s.cfg.maxSizePerMsg, entrySize);
  if (entries.length === 0 && !sendIfEmpty && pr.state === 'replicate') return false;
  let bytes = 0;
  for (const e of entries) bytes += entrySize(e);
  s.send({ type: 'app', from: s.id, to, term: s.term as Term, prevIndex: prevIndex as LogIndex, prevTerm: prevTerm as Term, entries, commit: s.raftLog.committed as LogIndex });
  pr.commitSent = Math.max(pr.commitSent, Math.min(s.raftLog.committed, prevIndex + entries.length));
  pr.sentEntries(prevIndex + entries.length, entries.length, bytes);
  return true;
}

/** Sends every follower what it lacks, pipelining up to the in-flight bounds. */
export function bcastAppend(s: RaftState, sendIfEmpty: boolean): void {
  for (const [to, pr] of s.prs) {
    if (to === s.id) continue;
    let empty = sendIfEmpty;
    while (sendAppend(s, to, empty) && pr.state === 'replicate' && pr.next <= s.raftLog.lastIndex()) empty = false;
  }
}

export function bcastHeartbeat(s: RaftState, seq: number, quiesce: boolean): void {
  for (const [to, pr] of s.prs) {
    if (to === s.id) continue;
    const commit = Math.min(pr.match, s.raftLog.committed);
    pr.commitSent = Math.max(pr.commitSent, commit);
    s.send({ type: 'heartbeat', from: s.id, to, term: s.term as Term, commit: commit as LogIndex, seq, quiesce });
    pr.heartbeatSent(seq);
  }
}

/**
 * A heartbeat round started for reads waiting on a quorum (ReadIndex, §8). When the quorum needs
 * one acknowledgement besides the leader's own (three voters), the round goes to one voter that
 * answered recently: preferably one the host sends a frame to in this turn anyway (RaftState
 * readPeerHint), so that the round costs no exchange of its own; else the one that acknowledged
 * the latest round. Any voter's acknowledgement of a round sent after the reads began confirms
 * them; the heartbeats of the ticks still go to every peer (liveness, and a round whose peer
 * stopped answering is covered by the next tick's). Otherwise, to every peer.
 */
export function sendReadRound(s: RaftState, seq: number): void {
  if (s.quorumOthers() !== 1) {
    bcastHeartbeat(s, seq, false);
    return;
  }
  let pick: NodeId | undefined;
  let best = -1;
  for (const n of s.voterPeers()) {
    const pr = s.prs.get(n);
    if (!pr || !pr.recentActive) continue;
    if (s.readPeerHint?.has(n)) {
      pick = n;
      break;
    }
    if (pr.ackedSeq > best) {
      best = pr.ackedSeq;
      pick = n;
    }
  }
  if (pick === undefined) {
    bcastHeartbeat(s, seq, false);
    return;
  }
  const pr = s.prs.get(pick) as Progress;
  const commit = Math.min(pr.match, s.raftLog.committed);
  pr.commitSent = Math.max(pr.commitSent, commit);
  s.send({ type: 'heartbeat', from: s.id, to: pick, term: s.term as Term, commit: commit as LogIndex, seq, quiesce: false });
  pr.heartbeatSent(seq);
}

// ---------------------------------------------------------------- proposals, and commit (§5.4.2)

/** Leader: appends entries (RaftNode.propose); they are sent in the next Ready, batched. */
export function propose(s: RaftState, datas: readonly Uint8Array[]): ProposeResult {
  s.wake();
  if (s.role !== 'leader') return { ok: false, reason: 'notLeader', leader: s.lead };
  if (s.leadTransferee !== null) return { ok: false, reason: 'transferring', leader: s.lead };
  for (const d of datas) appendEntry(s, 'normal', d);
  return { ok: true, index: s.raftLog.lastIndex() as LogIndex, term: s.term as Term };
}

/** Leader: appends a membership change, one server at a time (RaftNode.proposeConfChange). */
export function proposeConfChange(s: RaftState, change: ConfChange): ProposeResult {
  s.wake();
  if (s.role !== 'leader') return { ok: false, reason: 'notLeader', leader: s.lead };
  if (s.leadTransferee !== null) return { ok: false, reason: 'transferring', leader: s.lead };
  const lastConf = s.confLog[s.confLog.length - 1];
  if (!s.isReadyLeader() || (lastConf !== undefined && lastConf.index > s.raftLog.committed)) {
    return { ok: false, reason: 'confPending', leader: s.lead, detail: 'a configuration change or the leader\'s first entry is not committed yet' };
  }
  if (change.type === 'remove' && change.node === s.id) {
    // Removing itself, a leader would stop leading the moment the change commits, perhaps
    // before any new voter learned that it did, and they could not elect anyone (diss. §4.2.2).
    return { ok: false, reason: 'invalid', leader: s.lead, detail: `${s.id} leads this group: transfer leadership before removing it` };
  }
  if (change.type === 'promote' && (s.prs.get(change.node)?.match ?? 0) === 0) {
    // A voter never starts blank: a blank log does not vote (candidate.ts handleVoteRequest).
    return { ok: false, reason: 'confPending', leader: s.lead, detail: `learner ${change.node} has nothing of the log yet; promote it once it has caught up` };
  }
  const next = applyConfChange(s.conf, change);
  if (typeof next === 'string') return { ok: false, reason: 'invalid', leader: s.lead, detail: next };
  appendEntry(s, 'config', encodeConf(next));
  return { ok: true, index: s.raftLog.lastIndex() as LogIndex, term: s.term as Term };
}

function appendEntry(s: RaftState, type: 'normal' | 'noop' | 'config', data: Uint8Array): void {
  const e = makeEntry((s.raftLog.lastIndex() + 1) as LogIndex, s.term as Term, type, data);
  s.raftLog.append([e]);
  if (type === 'config') s.confLog.push({ index: e.index, conf: decodeConf(data) });
  s.needBcast = true;
  maybeCommit(s);
}

export function maybeCommit(s: RaftState): boolean {
  const self = s.prs.get(s.id);
  if (self) self.match = s.raftLog.stable;
  // A follower holding a read lease must have an entry before it commits (leases.ts).
  const idx = holdersAllow(s, quorumValue(s.conf.voters, (n) => s.prs.get(n)?.match ?? 0));
  if (idx <= s.raftLog.committed) return false;
  // §5.4.2: only entries of the leader's own term are committed by counting replicas.
  if (s.raftLog.termAt(idx) !== s.term && s.cfg.bugs.commitOldTermByCount !== true) return false;
  s.commitTo(idx);
  return true;
}

// ---------------------------------------------------------------- linearizable reads (§8, diss. §6.4)

/**
 * Leader: answers read `id` at once or queues it for a heartbeat round (RaftNode.readIndex says
 * when, and why that is safe). `remote`: `id` is the ctx of a follower's `readReq` from
 * `forPeer`, answered with a `readResp` (which the follower takes only in the term it asked in);
 * otherwise a local caller's read, answered as a ReadState.
 */
export function readIndex(s: RaftState, id: number, leased: boolean, forPeer?: NodeId, remote = false): void {
  s.wake();
  const peer = remote ? forPeer : undefined;
  if (s.role !== 'leader') {
    s.failReads([{ id, reason: 'notLeader', ...(peer === undefined ? {} : { peer }) }]);
    return;
  }
  const answer = (index: number): void => s.answerReads([{ id, index: index as LogIndex, ...(peer === undefined ? {} : { peer }) }]);
  const leaseIndex = leased ? leasedReadIndex(s) : undefined;
  if (leaseIndex !== undefined) {
    answer(leaseIndex);
    if (forPeer !== undefined) nudgeCommit(s, forPeer);
    return;
  }
  if (s.conf.voters.length === 1 && s.isVoter() && s.isReadyLeader()) {
    answer(s.raftLog.committed);
    return;
  }
  if (forPeer !== undefined && peerCompletesQuorum(s, forPeer)) {
    answer(s.raftLog.committed);
    nudgeCommit(s, forPeer);
    return;
  }
  s.reads.add(id, peer);
}

/** Whether this ready leader and voter `peer` make a quorum of the voters by themselves. */
function peerCompletesQuorum(s: RaftState, peer: NodeId): boolean {
  return s.isReadyLeader() && peer !== s.id && s.isVoter() && s.isVoter(peer) && quorum(s.conf.voters) <= 2;
}

/**
 * A follower serves a read once it has applied the read index the leader gave it (Raft §8 on
 * a follower); when a leased read skips the heartbeat round, tell it the commit index now if
 * it was not told yet, rather than leave it waiting for the next append or heartbeat.
 */
function nudgeCommit(s: RaftState, to: NodeId): void {
  const pr = s.prs.get(to);
  if (pr && pr.commitSent < Math.min(pr.match, s.raftLog.committed)) sendAppend(s, to, true);
}

// ---------------------------------------------------------------- membership (diss. §4.1)

/** The committed configuration changed to `next` (RaftState.commitTo); a leader also tracks the new members. */
export function applyConf(s: RaftState, next: ConfState): void {
  s.conf = next;
  if (s.role !== 'leader') return;
  for (const n of [...s.prs.keys()]) if (!next.voters.includes(n) && !next.learners.includes(n)) s.prs.delete(n);
  for (const n of [...next.voters, ...next.learners]) {
    const learner = next.learners.includes(n);
    const pr = s.prs.get(n);
    if (pr) pr.isLearner = learner;
    else {
      const p = new Progress(s.raftLog.lastIndex() + 1, learner);
      p.recentActive = true;
      s.prs.set(n, p);
    }
  }
  if (s.leadTransferee !== null && !next.voters.includes(s.leadTransferee)) s.leadTransferee = null;
  // Removed by a change an earlier leader proposed: keep leading the new configuration (without
  // counting itself) until a new voter, caught up and so knowing the change committed, takes over.
  if (!next.voters.includes(s.id)) handOff(s);
  maybeCommit(s);
  s.needBcast = true;
}

// ---------------------------------------------------------------- transfer (diss. §3.10)

/** Hands leadership to `to` (diss. §3.10): catch it up, then tell it to campaign at once. */
export function transferLeadership(s: RaftState, to: NodeId): ProposeResult {
  s.wake();
  if (s.role !== 'leader') return { ok: false, reason: 'notLeader', leader: s.lead };
  if (to === s.id) return { ok: true, index: s.raftLog.lastIndex() as LogIndex, term: s.term as Term };
  const pr = s.prs.get(to);
  if (!pr || pr.isLearner) return { ok: false, reason: 'invalid', leader: s.lead, detail: `${to} is not a voter of this group` };
  s.leadTransferee = to;
  s.transferElapsed = 0;
  if (pr.match === s.raftLog.lastIndex()) sendTimeoutNow(s, to);
  else sendAppend(s, to, true);
  return { ok: true, index: s.raftLog.lastIndex() as LogIndex, term: s.term as Term };
}

/**
 * Transfers leadership to the best-matched voter (this leader is no longer one, or can no longer
 * serve) not tried yet in this term, and after every voter, starts over. Called again each time a
 * transfer runs out (tickLeader): a transferee that never takes over (down, or damaged and so
 * unable to campaign) must not be the only one tried, as the group takes no writes meanwhile.
 */
export function handOff(s: RaftState): void {
  let best = bestTransferee(s, s.handOffTried);
  if (best === null && s.handOffTried.size > 0) {
    s.handOffTried.clear();
    best = bestTransferee(s);
  }
  if (best === null) return;
  s.handOffTried.add(best);
  transferLeadership(s, best);
}

/** Leader: the voter other than itself (and than those in `skip`) whose log matches furthest (the one to hand leadership to), or null. */
export function bestTransferee(s: RaftState, skip?: ReadonlySet<NodeId>): NodeId | null {
  let best: NodeId | null = null;
  let bestMatch = -1;
  for (const n of s.conf.voters) {
    const m = s.prs.get(n)?.match ?? -1;
    if (n !== s.id && m > bestMatch && !skip?.has(n)) {
      best = n;
      bestMatch = m;
    }
  }
  return best;
}
