/**
 * The state of one replica of the Raft core, in one object: what a replica starts from
 * (RaftInit, and the inits of a brand-new or joining member), its fields, and the small
 * helpers every role uses: queries, sending, resetting for a new term, becoming a follower,
 * waking, and moving the commit index (which makes a committed configuration take effect,
 * diss. §4.1). The roles are plain functions over this state, as in etcd: follower.ts,
 * candidate.ts and leader.ts, with the read leases in leases.ts and the output in ready.ts.
 * raft-node.ts is the public API and the only holder of a RaftState, so nothing outside the
 * core can write it. The roles call one another as Raft's transitions do (a candidate that
 * hears a leader steps as a follower, a follower told TimeoutNow campaigns, a commit applies a
 * configuration, leases running out commit), so their imports form cycles; that is safe because
 * those modules hold only function declarations, which ES modules bind before any code runs.
 */
import { parseRaftConfig, seededRandom, type RaftConfig, type RaftConfigInput } from './config.js';
import { decodeConf, EMPTY_CONF, encodeConf, entryIntact, makeEntry, sameConf } from './entry.js';
import { applyConf } from './leader.js';
import { quorum } from './membership.js';
import type { Progress } from './progress.js';
import { RaftLog } from './raft-log.js';
import { LeaderAsks, ReadTracker, type LeaderRead } from './read-tracker.js';
import type { ConfState, Entry, HardState, LogIndex, Message, NodeId, ReadFailure, ReadState, Role, SnapshotMeta, SoftState, Term } from './types.js';

// ---------------------------------------------------------------- what a replica starts from

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

// ---------------------------------------------------------------- the state

/** One replica's whole state, written only by the core's own functions (raft-node.ts keeps it private). */
export class RaftState {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  readonly rand: () => number;

  // ---------------------------------------------------------------- term, vote, role

  term = 0;
  vote: NodeId | null = null;
  /** The leader this replica follows (itself when it leads), or null when it knows none. */
  lead: NodeId | null = null;
  role: Role = 'follower';
  /** A leader that stopped heartbeating an idle group, or a follower that knows it did. */
  quiesced = false;
  /** A corrupt entry was found at start: no voting or leading until the log is repaired from a leader. */
  damaged = false;
  /** The host can no longer apply entries here: never campaign again in this incarnation (see RaftNode.withdraw). */
  withdrawn = false;

  // ---------------------------------------------------------------- log and configuration

  readonly raftLog: RaftLog;
  /** Configuration at the snapshot point, and every config entry after it. */
  snapConf: ConfState;
  confLog: { index: number; conf: ConfState }[] = [];
  /** The configuration in force: the latest committed one. */
  conf: ConfState;

  // ---------------------------------------------------------------- elections, leading, reads

  /** Leader: each member's replication progress. */
  readonly prs = new Map<NodeId, Progress>();
  /** (Pre-)candidate: the votes received. */
  readonly votes = new Map<NodeId, boolean>();
  electionElapsed = 0;
  heartbeatElapsed = 0;
  /** Ticks since start; a fresh replica honours a possible leader's lease for one election timeout. */
  sinceStart = 0;
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId | null = null;
  transferElapsed = 0;
  /** Leader handing off (handOff, leader.ts): the voters tried in this term. */
  readonly handOffTried = new Set<NodeId>();
  /** Index of this leader's first (no-op) entry of its term. */
  termStart = 0;
  idleTicks = 0;
  readonly reads: ReadTracker;
  /** Leader: peers the host sends a frame to anyway in this turn (RaftNode.preferReadPeers): a read round that needs one acknowledgement goes to one of them. */
  readPeerHint: ReadonlySet<string> | undefined;
  /** Follower: reads waiting for a read index from the leader (read-tracker.ts). */
  readonly asks: LeaderAsks;
  /** Leader: times it stopped pipelining appends to a follower to probe again (RaftStatus.probes), since this replica started. */
  probes = 0;

  // ---------------------------------------------------------------- read leases (leases.ts)

  /** Ticks counted while not quiesced: the clock of follower read leases. */
  ticks = 0;
  /** Follower: the read lease its leader granted, valid while `ticks < until` in `term` under `leader`. */
  lease: { term: number; leader: NodeId; until: number; commit: number } | null = null;
  /** Follower: the lease request out, and the tick at which it was made. */
  leaseAsk: { id: number; tick: number } | null = null;
  leaseAskSeq = 0;
  /** Follower: the tick of its last lease request (at most one per tick). */
  leaseAskedAt = -1;
  /** Leader: followers holding a read lease it granted, and the last tick (its count) it honours each one. */
  readonly leaseHolders = new Map<NodeId, number>();
  /** Leader: a transfer's TimeoutNow waits for the follower leases to run out. */
  timeoutNowWaits = false;

  // ---------------------------------------------------------------- output, gathered for the next Ready

  /** New entries to send (batched: sent once per Ready). */
  needBcast = false;
  /** The commit index moved: tell followers even without new entries. */
  commitChanged = false;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  readFailures: ReadFailure[] = [];
  prevHard: HardState;
  prevSoft: SoftState;
  pendingInstall: SnapshotMeta | undefined;
  truncateOut: number | undefined;

  constructor(config: RaftConfigInput, init: RaftInit) {
    this.cfg = parseRaftConfig(config);
    this.id = this.cfg.id;
    this.rand = seededRandom(this.cfg.seed);
    this.reads = new ReadTracker(this.cfg.electionTicks);
    // Read-index request ctxs start at a random multiple of 2^20 in each life of the replica (from
    // its own generator, so that the election timeouts' draws stay as they were): see LeaderAsks.
    const ctxBase = Math.floor(seededRandom(this.cfg.seed ^ 0x5bd1e995)() * 2 ** 31) * 2 ** 20;
    this.asks = new LeaderAsks(2 * this.cfg.electionTicks, this.cfg.bugs.readJoinsSentRequest === true, ctxBase);
    const hs = init.hardState;
    this.term = hs.term;
    this.vote = hs.vote;
    this.damaged = hs.repairing;
    let entries = init.entries;
    const bad = entries.findIndex((e, k) => !entryIntact(e) || e.index !== init.snapshot.index + 1 + k);
    if (bad >= 0) {
      entries = entries.slice(0, bad);
      this.damaged = true;
      this.truncateOut = init.snapshot.index + 1 + bad;
    }
    const last = init.snapshot.index + entries.length;
    // A snapshot or compaction point is committed by definition, and so is every entry the state
    // machine applied, even when the stored commit index is older: the host defers hard states
    // that only move the commit index, while compaction and the state machine's own writes are
    // durable by themselves. (A log cut short at a corrupt entry is not trusted past its end.)
    const committed = Math.max(Math.min(Math.max(hs.commit, init.applied), last), init.snapshot.index);
    this.raftLog = new RaftLog(init.snapshot.index, init.snapshot.term, entries, committed, Math.min(init.applied, committed));
    if (init.applied > this.raftLog.applied) this.raftLog.applied = this.raftLog.applyHanded = Math.min(init.applied, this.raftLog.committed);
    this.snapConf = init.snapshot.conf;
    for (const e of entries) if (e.type === 'config') this.confLog.push({ index: e.index, conf: decodeConf(e.data) });
    this.conf = this.confAt(this.raftLog.committed);
    this.prevHard = { term: this.term as Term, vote: this.vote, commit: this.raftLog.committed as LogIndex, repairing: hs.repairing };
    this.resetRandomizedTimeout();
    this.prevSoft = this.softState();
  }

  // ---------------------------------------------------------------- queries

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

  voterPeers(): NodeId[] {
    return this.conf.voters.filter((n) => n !== this.id);
  }

  /** Acknowledgements from other voters needed for a quorum (the leader counts itself). */
  quorumOthers(): number {
    return quorum(this.conf.voters) - (this.isVoter() ? 1 : 0);
  }

  // ---------------------------------------------------------------- shared by every role

  /** Queues `m` for the next Ready (see its ordering rules: some messages wait for the flush). */
  send(m: Message): void {
    this.msgs.push(m);
  }

  resetRandomizedTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + Math.floor(this.rand() * this.cfg.electionTicks);
  }

  /** Enters term `t` (or stays in it): forgets the leader, timers, votes, a transfer and a follower lease; fails waiting reads. */
  reset(t: number): void {
    if (t !== this.term) {
      this.term = t;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedTimeout();
    this.leadTransferee = null;
    this.handOffTried.clear();
    this.timeoutNowWaits = false;
    this.lease = null;
    this.leaseAsk = null;
    this.votes.clear();
    this.idleTicks = 0;
    this.failReads(this.reads.failAll(this.role === 'leader' ? 'stepDown' : 'notLeader'));
    for (const id of this.asks.failAll()) this.readFailures.push({ id, reason: 'notLeader' });
  }

  /** Leader: answers reads it confirmed: a local caller's as a ReadState, a follower's request with a `readResp`. */
  answerReads(done: readonly (ReadState & LeaderRead)[]): void {
    for (const r of done) {
      if (r.peer === undefined) this.readStates.push({ id: r.id, index: r.index });
      else this.send({ type: 'readResp', from: this.id, to: r.peer, term: this.term as Term, ctx: r.id, index: r.index, reject: false });
    }
  }

  /** Leader: fails reads it can no longer confirm: a local caller's as a ReadFailure, a follower's request with a rejecting `readResp`. */
  failReads(failed: readonly (ReadFailure & LeaderRead)[]): void {
    for (const f of failed) {
      if (f.peer === undefined) this.readFailures.push({ id: f.id, reason: f.reason });
      else this.send({ type: 'readResp', from: this.id, to: f.peer, term: this.term as Term, ctx: f.id, index: 0 as LogIndex, reject: true });
    }
  }

  becomeFollower(t: number, lead: NodeId | null): void {
    this.reset(t);
    this.role = 'follower';
    this.lead = lead;
  }

  /** Ends quiescence; a leader's read lease starts over (acknowledgements from before do not count). */
  wake(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.idleTicks = 0;
    if (this.role === 'leader') this.reads.resetLease();
  }

  /** Moves the commit index up to `i`; a configuration committed with it takes effect (applyConf, leader.ts). */
  commitTo(i: number): void {
    if (!this.raftLog.commitTo(i)) return;
    const next = this.confAt(this.raftLog.committed);
    if (!sameConf(next, this.conf)) applyConf(this, next);
    // Followers holding a read lease are told at once: their reads wait to learn the commit.
    if (this.role === 'leader' && (this.cfg.commitBroadcast || this.leaseHolders.size > 0)) this.commitChanged = true;
  }
}
