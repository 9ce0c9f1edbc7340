/** The core's options, with named defaults, checked once by {@link parseRaftConfig}. */
import type { NodeId } from './types.js';

/**
 * Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)): the
 * core's default, for its tests and simulation. The Raft host sets its own, for its tick length
 * (`DEFAULT_HOST_ELECTION_TICKS` in src/replication/raft-options.ts).
 */
export const DEFAULT_ELECTION_TICKS = 10;
/** Ticks between a leader's heartbeats. */
export const DEFAULT_HEARTBEAT_TICKS = 2;
/** Bytes of entries per append message. */
export const DEFAULT_MAX_SIZE_PER_MSG = 512 * 1024;
/** Append messages in flight per follower. */
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
/** Entry bytes in flight per follower. */
export const DEFAULT_MAX_INFLIGHT_BYTES = 32 * 1024 * 1024;
/** Idle ticks (all caught up, nothing pending) before a leader quiesces its group; 0 never. */
export const DEFAULT_QUIESCE_AFTER_TICKS = 20;
/**
 * A peer with an empty log gets a snapshot rather than the log once the leader has applied more
 * than this many entries: 1, so any entry beyond a group's first (its initial configuration).
 */
export const DEFAULT_NEW_PEER_SNAPSHOT_AFTER = 1;

/**
 * Deliberate bugs, for proving that the simulation's checkers catch them. Never set outside
 * tests.
 */
export interface TestingBugs {
  /** Commit an entry of an earlier term by counting replicas (what §5.4.2 forbids). */
  commitOldTermByCount?: boolean;
  /** Commit without waiting for the followers that hold a read lease (what follower leases forbid). */
  commitWithoutLeaseHolders?: boolean;
  /** Grant votes without the up-to-date log check of §5.4.1. */
  voteWithoutLogCheck?: boolean;
  /** A follower's read joins the read index request already sent to the leader, when one is out (it must wait for the next: the leader may have taken that index before the read began). */
  readJoinsSentRequest?: boolean;
}

export interface RaftConfig {
  id: NodeId;
  /** Seed of the core's own random generator (election timeouts). */
  seed: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  /** A leader that has not heard from a quorum for an election timeout steps down. Leased reads need it. */
  checkQuorum: boolean;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  quiesceAfterTicks: number;
  /**
   * Tell followers of a new commit index at once with an empty append (else they learn it from
   * the next append or heartbeat). Off by default: under load the next append carries it anyway,
   * and the empty appends double the followers' work per commit.
   */
  commitBroadcast: boolean;
  /**
   * A peer that has nothing of the leader's log (its next index is 1: a member just added, or
   * one that lost its log) is sent a snapshot of the leader's state machine at its applied index
   * instead of every entry from index 1, once the leader has applied more than this many
   * entries. Replaying the log would make the new member redo all the work the image already
   * holds (a shard replica would insert every point into its vector index again); up to this
   * many entries the log is cheaper than an image. A peer that holds part of the log is always
   * sent the log it lacks (unless compacted away).
   */
  newPeerSnapshotAfter: number;
  bugs: TestingBugs;
}

export type RaftConfigInput = Partial<RaftConfig> & { id: NodeId };

function positiveInt(path: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new RangeError(`raft config: ${path} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

/** Fills defaults and fails fast, naming the bad field. */
export function parseRaftConfig(input: RaftConfigInput): RaftConfig {
  if (typeof input.id !== 'string' || input.id.length === 0) throw new RangeError('raft config: id must be a non-empty string');
  const cfg: RaftConfig = {
    id: input.id,
    seed: input.seed ?? 1,
    electionTicks: positiveInt('electionTicks', input.electionTicks ?? DEFAULT_ELECTION_TICKS, 2),
    heartbeatTicks: positiveInt('heartbeatTicks', input.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS, 1),
    preVote: input.preVote ?? true,
    checkQuorum: input.checkQuorum ?? true,
    maxSizePerMsg: positiveInt('maxSizePerMsg', input.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG, 1),
    maxInflightMsgs: positiveInt('maxInflightMsgs', input.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS, 1),
    maxInflightBytes: positiveInt('maxInflightBytes', input.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES, 1),
    quiesceAfterTicks: positiveInt('quiesceAfterTicks', input.quiesceAfterTicks ?? DEFAULT_QUIESCE_AFTER_TICKS, 0),
    commitBroadcast: input.commitBroadcast ?? false,
    newPeerSnapshotAfter: positiveInt('newPeerSnapshotAfter', input.newPeerSnapshotAfter ?? DEFAULT_NEW_PEER_SNAPSHOT_AFTER, 0),
    bugs: input.bugs ?? {},
  };
  if (cfg.heartbeatTicks >= cfg.electionTicks) {
    throw new RangeError(`raft config: heartbeatTicks (${cfg.heartbeatTicks}) must be below electionTicks (${cfg.electionTicks})`);
  }
  return cfg;
}

/** mulberry32: a small seeded generator, so that the core never touches Math.random. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
