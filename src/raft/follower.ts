/**
 * The follower role of the Raft core (§5.3, §7): its step function, and its handling of a
 * leader's appends, heartbeats and snapshots. Plain functions over the replica's RaftState
 * (raft-state.ts); a follower's read lease is in leases.ts.
 */
import { campaign } from './candidate.js';
import { decodeConf, entryIntact } from './entry.js';
import { takeLease } from './leases.js';
import { assertNever } from './progress.js';
import type { RaftState } from './raft-state.js';
import type { Entry, LogIndex, Message, Term } from './types.js';

// ---------------------------------------------------------------- step

export function stepFollower(s: RaftState, m: Message): void {
  switch (m.type) {
    case 'app':
      s.electionElapsed = 0;
      s.lead = m.from;
      handleAppend(s, m);
      return;
    case 'heartbeat':
      s.electionElapsed = 0;
      s.lead = m.from;
      handleHeartbeat(s, m);
      return;
    case 'snap':
      s.electionElapsed = 0;
      s.lead = m.from;
      handleSnapshot(s, m);
      return;
    case 'timeoutNow':
      campaign(s, 'transfer');
      return;
    case 'leaseResp':
      takeLease(s, m);
      return;
    case 'readResp':
      takeReadIndex(s, m);
      return;
    case 'readReq':
      // The asker takes this replica for its leader: it does not lead.
      refuseReadIndex(s, m);
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

// ---------------------------------------------------------------- read indexes asked of the leader

/**
 * The leader's answer to this follower's request for a read index, in the term it was asked in
 * (RaftNode.step drops an answer of an earlier term; a later term fails every read asked before
 * it: RaftState.reset). With three voters or fewer the leader answers at once, with no round: that
 * this replica is still in the term the answer was given in completes the quorum (RaftNode.readIndex).
 */
function takeReadIndex(s: RaftState, m: Extract<Message, { type: 'readResp' }>): void {
  const ids = s.asks.answered(m.ctx);
  if (m.reject || m.from !== s.lead) {
    for (const id of ids) s.readFailures.push({ id, reason: 'notLeader' });
    return;
  }
  for (const id of ids) s.readStates.push({ id, index: m.index });
}

/** A replica that does not lead refuses a read index asked of it. */
export function refuseReadIndex(s: RaftState, m: Extract<Message, { type: 'readReq' }>): void {
  s.send({ type: 'readResp', from: s.id, to: m.from, term: s.term as Term, ctx: m.ctx, index: 0 as LogIndex, reject: true });
}

// ---------------------------------------------------------------- a leader's messages (§5.3, §7)

function handleAppend(s: RaftState, m: Extract<Message, { type: 'app' }>): void {
  const reply = (index: number, reject: boolean, hintIndex = 0, hintTerm = 0): void =>
    s.send({ type: 'appResp', from: s.id, to: m.from, term: s.term as Term, index: index as LogIndex, reject, hintIndex: hintIndex as LogIndex, hintTerm: hintTerm as Term, applied: s.raftLog.applied as LogIndex });
  if (m.prevIndex < s.raftLog.committed) {
    reply(s.raftLog.committed, false);
    return;
  }
  if (s.raftLog.matchTerm(m.prevIndex, m.prevTerm)) {
    for (const e of m.entries) if (!entryIntact(e)) return; // corrupted on the way: as if lost
    const before = s.raftLog.lastIndex();
    const lastNew = s.raftLog.maybeAppend(m.prevIndex, m.entries);
    if (s.raftLog.lastIndex() !== before || m.entries.length > 0) syncConfLog(s);
    s.commitTo(Math.min(m.commit, lastNew));
    // Repaired: the leader's commit point is in our log and is of its term, so every entry
    // ever committed is in our log too (leader completeness, §5.4).
    if (s.damaged && m.commit <= lastNew && s.raftLog.termAt(m.commit) === s.term) s.damaged = false;
    reply(lastNew, false);
    return;
  }
  const hint = s.raftLog.findConflictByTerm(Math.min(m.prevIndex, s.raftLog.lastIndex()), m.prevTerm);
  reply(m.prevIndex, true, hint.index, hint.term);
}

function handleHeartbeat(s: RaftState, m: Extract<Message, { type: 'heartbeat' }>): void {
  s.commitTo(m.commit);
  s.send({ type: 'heartbeatResp', from: s.id, to: m.from, term: s.term as Term, seq: m.seq, applied: s.raftLog.applied as LogIndex, lastIndex: s.raftLog.lastIndex() as LogIndex });
  if (m.quiesce && s.raftLog.lastIndex() === m.commit && s.raftLog.committed === m.commit) {
    s.quiesced = true;
    s.lease = null; // a quiesced replica stops counting ticks, so it cannot time a lease
  }
}

function handleSnapshot(s: RaftState, m: Extract<Message, { type: 'snap' }>): void {
  const snap = m.snapshot;
  const reply = (index: number): void =>
    s.send({ type: 'appResp', from: s.id, to: m.from, term: s.term as Term, index: index as LogIndex, reject: false, hintIndex: 0 as LogIndex, hintTerm: 0 as Term, applied: s.raftLog.applied as LogIndex });
  if (snap.index <= s.raftLog.committed) {
    reply(s.raftLog.committed);
    return;
  }
  if (s.raftLog.matchTerm(snap.index, snap.term)) {
    s.commitTo(snap.index);
    reply(s.raftLog.committed);
    return;
  }
  s.raftLog.restore(snap.index, snap.term);
  s.snapConf = snap.conf;
  s.confLog = [];
  s.conf = snap.conf;
  s.pendingInstall = snap;
  reply(snap.index);
}

/** Rebuilds the list of config entries after an append that may have truncated some. */
function syncConfLog(s: RaftState): void {
  s.confLog = s.confLog.filter((x) => s.raftLog.entry(x.index)?.type === 'config' && x.index <= s.raftLog.lastIndex());
  const known = new Set(s.confLog.map((x) => x.index));
  for (let i = Math.max(s.raftLog.firstIndex(), s.raftLog.committed + 1); i <= s.raftLog.lastIndex(); i++) {
    const e = s.raftLog.entry(i) as Entry;
    if (e.type === 'config' && !known.has(i)) s.confLog.push({ index: i, conf: decodeConf(e.data) });
  }
  s.confLog.sort((a, b) => a.index - b.index);
}
