/**
 * Elections in the Raft core (§5.2, §5.4.1, diss. §9.6, §4.2.3): the election timer of a
 * follower or candidate, campaigns with pre-vote, the tally, a (pre-)candidate's step function,
 * and how any replica answers a vote request, with leader stickiness. Plain functions over the
 * replica's RaftState (raft-state.ts).
 */
import { refuseReadIndex, stepFollower } from './follower.js';
import { becomeLeader } from './leader.js';
import { quorum } from './membership.js';
import { assertNever } from './progress.js';
import type { RaftState } from './raft-state.js';
import type { LogIndex, Message, Term } from './types.js';

// ---------------------------------------------------------------- campaigns (§5.2, diss. §9.6)

/** The tick of a follower or (pre-)candidate: campaign once the randomized election timeout passes. */
export function tickElection(s: RaftState): void {
  s.electionElapsed++;
  if (promotable(s) && s.electionElapsed >= s.randomizedElectionTimeout) {
    s.electionElapsed = 0;
    s.resetRandomizedTimeout();
    campaign(s, s.cfg.preVote ? 'pre' : 'normal');
  }
}

function promotable(s: RaftState): boolean {
  return s.isVoter() && !s.damaged && !s.withdrawn;
}

function becomePreCandidate(s: RaftState): void {
  s.votes.clear();
  s.role = 'preCandidate';
  s.lead = null;
  s.lease = null;
  s.leaseAsk = null;
  s.readFailures.push(...s.reads.failAll('notLeader'));
}

function becomeCandidate(s: RaftState): void {
  s.reset(s.term + 1);
  s.role = 'candidate';
  s.vote = s.id;
}

export function campaign(s: RaftState, kind: 'pre' | 'normal' | 'transfer'): void {
  if (!promotable(s)) return;
  let voteTerm: number;
  if (kind === 'pre') {
    becomePreCandidate(s);
    voteTerm = s.term + 1;
  } else {
    becomeCandidate(s);
    voteTerm = s.term;
  }
  s.votes.set(s.id, true);
  if (tally(s) === 'won') {
    if (kind === 'pre') campaign(s, 'normal');
    else becomeLeader(s);
    return;
  }
  for (const to of s.conf.voters) {
    if (to === s.id) continue;
    const base = { from: s.id, to, term: voteTerm as Term, lastIndex: s.raftLog.lastIndex() as LogIndex, lastTerm: s.raftLog.lastTerm() as Term };
    s.send(kind === 'pre' ? { type: 'preVote', ...base } : { type: 'vote', ...base, transfer: kind === 'transfer' });
  }
}

function tally(s: RaftState): 'won' | 'lost' | 'pending' {
  let granted = 0;
  let rejected = 0;
  for (const n of s.conf.voters) {
    const v = s.votes.get(n);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = quorum(s.conf.voters);
  if (granted >= q) return 'won';
  if (rejected > s.conf.voters.length - q) return 'lost';
  return 'pending';
}

// ---------------------------------------------------------------- step

export function stepCandidate(s: RaftState, m: Message): void {
  switch (m.type) {
    case 'app':
    case 'heartbeat':
    case 'snap':
      s.becomeFollower(m.term, m.from);
      stepFollower(s, m);
      return;
    case 'preVoteResp':
    case 'voteResp': {
      if ((m.type === 'preVoteResp') !== (s.role === 'preCandidate')) return;
      if (!s.votes.has(m.from)) s.votes.set(m.from, !m.reject);
      const res = tally(s);
      if (res === 'won') {
        if (s.role === 'preCandidate') campaign(s, 'normal');
        else becomeLeader(s);
      } else if (res === 'lost') {
        s.becomeFollower(s.term, null);
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
    case 'readResp':
      return;
    case 'readReq':
      refuseReadIndex(s, m);
      return;
    default:
      assertNever(m);
  }
}

// ---------------------------------------------------------------- votes (§5.2, §5.4.1, diss. §4.2.3)

/** A leader with check-quorum, or a follower that heard from a leader (or started) less than an election timeout ago. */
export function inLease(s: RaftState): boolean {
  if (!s.cfg.checkQuorum) return false;
  if (s.role === 'leader') return true;
  return s.lead !== null ? s.electionElapsed < s.cfg.electionTicks : s.sinceStart < s.cfg.electionTicks;
}

/** Any role answers a vote request here, once RaftNode.step has dealt with its term and with leader stickiness. */
export function handleVoteRequest(s: RaftState, m: Extract<Message, { type: 'vote' | 'preVote' }>): void {
  const pre = m.type === 'preVote';
  const canVote = s.vote === m.from || (s.vote === null && s.lead === null) || (pre && m.term > s.term);
  const upToDate = s.cfg.bugs.voteWithoutLogCheck === true || s.raftLog.isUpToDate(m.lastIndex, m.lastTerm);
  // A blank log votes for no one: it is a replica that joined empty and has heard from no leader
  // yet, perhaps on a node that held the group before and deleted its data (same Raft id, no
  // memory of the votes it gave). A legitimate election never needs it: no learner is promoted
  // before it holds some of the log (leader.ts proposeConfChange), and bootstrap voters start
  // with the first entry.
  const blank = s.raftLog.lastIndex() === 0 && s.raftLog.snapIndex === 0;
  if (canVote && upToDate && !s.damaged && !blank) {
    s.send({ type: pre ? 'preVoteResp' : 'voteResp', from: s.id, to: m.from, term: m.term, reject: false });
    if (!pre) {
      s.electionElapsed = 0;
      s.vote = m.from;
    }
  } else {
    s.send({ type: pre ? 'preVoteResp' : 'voteResp', from: s.id, to: m.from, term: s.term as Term, reject: true });
  }
}
