/**
 * The Raft core's output, as etcd's RawNode hands it out: whether there is anything for the
 * host to do, and the {@link Ready} itself, gathered from what the roles queued in the
 * replica's RaftState (raft-state.ts). The ordering and durability rules the host must follow
 * are on Ready's fields (types.ts).
 */
import { bcastAppend, bcastHeartbeat, sendReadRound } from './leader.js';
import type { RaftState } from './raft-state.js';
import type { HardState, LogIndex, Ready, Term } from './types.js';

/** Whether the host has anything to do: something to send, persist, apply or report, or a changed hard or soft state. */
export function hasReady(s: RaftState): boolean {
  if (s.msgs.length > 0 || s.asks.hasQueued() || s.needBcast || s.commitChanged || s.readStates.length > 0 || s.readFailures.length > 0) return true;
  if (s.reads.needsRound() && s.role === 'leader' && s.isReadyLeader()) return true;
  if (s.pendingInstall || s.truncateOut !== undefined) return true;
  if (s.raftLog.persistHanded < s.raftLog.lastIndex()) return true;
  if (s.raftLog.applyHanded < Math.min(s.raftLog.committed, s.raftLog.lastIndex())) return true;
  const hs = s.prevHard;
  if (hs.term !== s.term || hs.vote !== s.vote || hs.commit !== s.raftLog.committed || hs.repairing !== s.damaged) return true;
  const ss = s.prevSoft;
  return ss.role !== s.role || ss.leader !== s.lead || ss.term !== s.term || ss.ready !== s.isReadyLeader() || ss.isVoter !== s.isVoter();
}

/** Everything the host must now do, taken out of the state; see {@link Ready} for the order. */
export function takeReady(s: RaftState): Ready {
  if (s.role === 'leader') {
    if (s.needBcast || s.commitChanged) bcastAppend(s, s.commitChanged);
    if (s.isReadyLeader() && s.reads.needsRound()) {
      if (s.conf.voters.length === 1) s.answerReads(s.reads.confirmAll(s.raftLog.committed));
      else sendReadRound(s, s.reads.startRound(s.raftLog.committed));
    }
  }
  // A follower's reads that arrived since its last request go to its leader in one request.
  if (s.asks.hasQueued()) {
    if (s.role === 'follower' && s.lead !== null) {
      const { ctx, leased } = s.asks.send(s.ticks);
      s.send({ type: 'readReq', from: s.id, to: s.lead, term: s.term as Term, ctx, leased });
    } else {
      for (const id of s.asks.failAll()) s.readFailures.push({ id, reason: 'notLeader' });
    }
  }
  s.needBcast = false;
  s.commitChanged = false;
  const hs: HardState = { term: s.term as Term, vote: s.vote, commit: s.raftLog.committed as LogIndex, repairing: s.damaged };
  const hsChanged = hs.term !== s.prevHard.term || hs.vote !== s.prevHard.vote || hs.commit !== s.prevHard.commit || hs.repairing !== s.prevHard.repairing;
  s.prevHard = hs;
  const ss = s.softState();
  const p = s.prevSoft;
  const ssChanged = ss.role !== p.role || ss.leader !== p.leader || ss.term !== p.term || ss.ready !== p.ready || ss.isVoter !== p.isVoter;
  s.prevSoft = ss;
  const rd: Ready = {
    hardState: hsChanged ? hs : undefined,
    entries: s.raftLog.takeUnpersisted(),
    snapshot: s.pendingInstall,
    truncateFrom: s.truncateOut as LogIndex | undefined,
    messages: s.msgs,
    committedEntries: s.raftLog.takeCommitted(),
    readStates: s.readStates,
    readFailures: s.readFailures,
    softState: ssChanged ? ss : undefined,
  };
  s.pendingInstall = undefined;
  s.truncateOut = undefined;
  s.msgs = [];
  s.readStates = [];
  s.readFailures = [];
  return rd;
}
