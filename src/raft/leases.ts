/**
 * Read leases in the Raft core, all in one place: the leader's own lease (the answer to a
 * `leased` read, timed by read-tracker.ts), a follower's read lease (asking for one, taking the
 * answer, serving from it), and the leader's side of follower leases (granting them, the commits
 * they hold back, letting them run out, and a transfer waiting for them). Plain functions over
 * the replica's RaftState (raft-state.ts).
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
import { maybeCommit } from './leader.js';
import type { RaftState } from './raft-state.js';
import type { LogIndex, Message, NodeId, Term } from './types.js';

// ---------------------------------------------------------------- the leader's own lease

/** Leader: the commit index while its lease holds (see RaftNode.leasedReadIndex), else undefined. Changes nothing. */
export function leasedReadIndex(s: RaftState): LogIndex | undefined {
  if (s.role !== 'leader' || !s.cfg.checkQuorum || !s.isReadyLeader() || s.leadTransferee !== null) return undefined;
  return s.reads.leaseValid(s.voterPeers(), s.prs, s.quorumOthers()) ? (s.raftLog.committed as LogIndex) : undefined;
}

// ---------------------------------------------------------------- follower: holding a lease

/** Follower: asks its leader for a read lease, unless a request is out or one was made this tick (see RaftNode.requestLease). */
export function requestLease(s: RaftState): void {
  if (s.role !== 'follower' || s.lead === null) return;
  s.wake();
  if (s.leaseAskedAt === s.ticks || (s.leaseAsk !== null && s.ticks - s.leaseAsk.tick < s.cfg.electionTicks)) return;
  s.leaseAskedAt = s.ticks;
  s.leaseAsk = { id: ++s.leaseAskSeq, tick: s.ticks };
  s.send({ type: 'leaseReq', from: s.id, to: s.lead, term: s.term as Term, id: s.leaseAsk.id });
}

/** Follower: the leader's answer to a lease request. */
export function takeLease(s: RaftState, m: Extract<Message, { type: 'leaseResp' }>): void {
  // Only the answer to the request out now counts: a lease is measured from when it was asked.
  if (s.leaseAsk !== null && m.id === s.leaseAsk.id && m.from === s.lead) {
    if (m.ticks > 0) s.lease = { term: s.term, leader: m.from, until: s.leaseAsk.tick + m.ticks - 1, commit: m.commit };
    s.leaseAsk = null;
  }
}

/** Follower: the index a leased read beginning now may be served at, and the ticks left (see RaftNode.followerLease). Changes nothing. */
export function followerLease(s: RaftState): { index: LogIndex; ticksLeft: number } | undefined {
  const l = s.lease;
  if (l === null || s.role !== 'follower' || s.quiesced || l.term !== s.term || l.leader !== s.lead || s.ticks >= l.until) return undefined;
  return { index: Math.max(s.raftLog.lastIndex(), l.commit) as LogIndex, ticksLeft: l.until - s.ticks };
}

// ---------------------------------------------------------------- leader: the leases it granted

/**
 * A follower asks for a read lease: granted for what is left of this leader's own lease, to a
 * follower it is replicating to, unless a transfer is under way.
 */
export function grantLease(s: RaftState, m: Extract<Message, { type: 'leaseReq' }>): void {
  const pr = s.prs.get(m.from);
  let ticks = 0;
  if (pr && pr.state === 'replicate' && s.cfg.checkQuorum && s.isReadyLeader() && s.leadTransferee === null) {
    ticks = s.reads.leaseTicksLeft(s.voterPeers(), s.prs, s.quorumOthers());
  }
  if (ticks < 2) ticks = 0;
  else s.leaseHolders.set(m.from, Math.max(s.leaseHolders.get(m.from) ?? 0, s.ticks + ticks + 1));
  s.send({ type: 'leaseResp', from: s.id, to: m.from, term: s.term as Term, id: m.id, ticks, commit: s.raftLog.committed as LogIndex });
}

/**
 * The commit index `idx` a quorum has, lowered to what every follower holding a lease this
 * leader still honours has in its log: a holder must have an entry before it commits (see the top).
 */
export function holdersAllow(s: RaftState, idx: number): number {
  if (s.cfg.bugs.commitWithoutLeaseHolders !== true) {
    for (const [n, until] of s.leaseHolders) if (until >= s.ticks) idx = Math.min(idx, s.prs.get(n)?.match ?? 0);
  }
  return idx;
}

/** Drops the follower leases that ran out; commits what they held back; sends a waiting TimeoutNow. */
export function expireLeases(s: RaftState): void {
  if (s.leaseHolders.size === 0) return;
  for (const [n, until] of s.leaseHolders) if (until < s.ticks) s.leaseHolders.delete(n);
  if (s.leaseHolders.size > 0) return;
  maybeCommit(s);
  if (s.timeoutNowWaits) {
    s.timeoutNowWaits = false;
    const to = s.leadTransferee;
    if (to !== null && s.prs.get(to)?.match === s.raftLog.lastIndex()) sendTimeoutNow(s, to);
  }
}

/** Tells `to` to campaign at once (a transfer), unless follower leases must run out first. */
export function sendTimeoutNow(s: RaftState, to: NodeId): void {
  if (s.leaseHolders.size > 0) {
    s.timeoutNowWaits = true;
    return;
  }
  s.send({ type: 'timeoutNow', from: s.id, to, term: s.term as Term });
}
