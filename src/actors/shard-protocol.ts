/**
 * What routers and replicas say to each other (internal, CBOR), and where: a shard's leader
 * answers on its leader subject (only while it leads), every replica answers on the shard's
 * queue-group subject (reads; a follower asks the leader subject for a read index before serving
 * a `strong` or `leased` one), and each replica actor on its own actor subject.
 */
import type { Consistency, Hit, Metadata, Point, WriteConcern } from '../api/types.js';
import type { ReplicaRole } from '../replication/raft-state-machine.js';
import type { Subjects } from '../runtime/subjects.js';
import type { PullRequest } from '../shard/reshard-import.js';
import type { ReshardCommand, ReshardState } from '../shard/reshard-state.js';

/** A shard's part in reshards: its state (null: never resharded), its applied index, the epoch it serves; `unchanged` says why a step did nothing. */
export interface ReshardStatus {
  state: ReshardState | null;
  appliedIndex: number;
  servingEpoch: number | null;
  unchanged?: string;
  /** The node that answered (the leader, on the leader subject). */
  node?: string;
  /** The points the shard counts now (what it serves at its epoch). */
  count?: number;
  /** What this replica's importers proposed for the reshard running, if any (counted in memory: it starts again at 0 on a new leader). */
  imported?: ImportTally;
}

/**
 * The bytes and points a replica's reshard importers proposed, by source shard, for the reshard to
 * `epoch`. `run` names the counter (a new leader, or the actor restarted, starts a new one at 0):
 * the coordinator adds up the runs it sees (reshard-progress.ts).
 */
export interface ImportTally {
  epoch: number;
  run: string;
  bySource: Record<number, { bytes: number; points: number }>;
}

export function replicaActorName(uid: string, shard: number): string {
  return `replica.${uid}.${shard}`;
}

export function leaderSubject(s: Subjects, uid: string, shard: number): string {
  return s.internal('shard', uid, String(shard), 'leader');
}

export function anyReplicaSubject(s: Subjects, uid: string, shard: number): string {
  return s.internal('shard', uid, String(shard), 'any');
}

export const REPLICA_QUEUE_GROUP = 'replicas';

/**
 * Where a shard's new leader announces itself the moment it serves (its first entry of the term
 * committed): a router whose call is still waiting on the old leader — dead, paused or cut off,
 * so the call would otherwise wait out its deadline — sends it again at once.
 */
export function leaderAnnounceSubject(s: Subjects, uid: string, shard: number): string {
  return s.internal('leaders', uid, String(shard));
}

/** Every shard's leader announcements (routers subscribe to it). */
export function allLeaderAnnouncements(s: Subjects): string {
  return s.internalAll('leaders');
}

export interface LeaderAnnouncement {
  uid: string;
  shard: number;
  term: number;
  node: string;
}

export interface ShardPoint {
  id: string;
  vector: Float32Array;
  metadata?: Metadata;
  /** Custom sharding: the point's shard key, kept with it (a reshard moves it by this key). */
  shardKey?: string;
}

/** A write for one shard: the part of a client's request that falls in this shard. */
export type ShardWrite =
  | { op: 'upsert'; points: ShardPoint[] }
  | { op: 'delete'; ids: string[] };

export interface ShardQuery {
  vector: Float32Array;
  k: number;
  ef?: number;
  filter?: unknown;
  withVector: boolean;
  withMetadata: boolean;
  /** Answer with what the shard's index chose (SearchResult.explain). Absent: false. */
  explain?: boolean;
}

/**
 * Requests from routers carry `mapEpoch`, the epoch of the shard map the router used
 * (docs/resharding.md): a shard that serves another refuses with STALE_MAP, and the router reads
 * the map again. Absent: epoch 0.
 */
export type ShardRequest =
  | { type: 'write'; write: ShardWrite; requestId: string; concern: WriteConcern; timeoutMs: number; mapEpoch?: number }
  | { type: 'search'; queries: ShardQuery[]; consistency: Consistency; timeoutMs: number; mapEpoch?: number }
  | { type: 'get'; ids: string[]; withVector: boolean; withMetadata: boolean; consistency: Consistency; timeoutMs: number; mapEpoch?: number }
  | { type: 'count'; consistency: Consistency; timeoutMs: number; mapEpoch?: number }
  /** To the leader, from the coordinator: one step of a reshard, answered once applied with {@link ReshardStatus}; fenced by the coordinator's lease `epoch` like `conf`. */
  | { type: 'reshard'; step: ReshardCommand; epoch: number; timeoutMs: number }
  /** The shard's reshard state ({@link ReshardStatus}), from whichever replica answers (the leader's, on its leader subject). */
  | { type: 'reshardStatus' }
  /** To a source's leader, from a target's importer: what moves to the target (reshard-import.ts). */
  | { type: 'pull'; pull: PullRequest }
  /**
   * To the leader, from a follower serving a `strong` or `leased` read: answered with {@link ReadIndexResult}.
   * Followers now ask over the Raft transport (RaftHost.followerReadIndex); still answered for those of an earlier version.
   */
  | { type: 'readIndex'; mode: 'strong' | 'leased'; from: string; timeoutMs: number }
  | { type: 'status' }
  /**
   * To the leader, from the coordinator: one membership change, answered once committed. `epoch`
   * is the coordinator's lease epoch: a leader that knows of a later one refuses (a deposed
   * coordinator changes nothing).
   */
  | { type: 'conf'; change: MembershipChange; epoch: number; timeoutMs: number }
  /** To the leader: hand leadership to `to` (or the most caught-up other voter); answered once it no longer leads. */
  | { type: 'transfer'; to?: string; timeoutMs: number }
  /**
   * To the leader, from a replica whose log is being repaired (rebuilt from nothing, or cut at a
   * corrupt entry), every 2 s until it is: append a no-op (an upsert of no points). In a group
   * nothing writes to, its leader is idle and sends nothing; the no-op makes it send the log (or
   * a snapshot), and the append that carries the no-op brings the leader's commit point of its
   * term, which is what repairs the replica (raft/follower.ts).
   */
  | { type: 'repairNoop'; from: string; timeoutMs: number }
  /** To the leader, from a router: write the shard's image to the backups object store as `object` (backup-requests.ts). */
  | { type: 'backup'; object: string; timeoutMs: number }
  /** To the leader of a collection being restored: propose the `restore` entry of `object`, answered once every voter applied it. */
  | { type: 'restore'; object: string; timeoutMs: number }
  /**
   * To the leader, from a router about to read the change stream for a point-in-time restore:
   * what the shard's change-stream outbox still holds, after a read barrier (so every write the
   * shard acknowledged is applied, and in it if not yet published). Answered with {@link OutboxHead}.
   */
  | { type: 'outbox'; timeoutMs: number };

/**
 * A shard's change-stream outbox on its leader: `waiting` records not yet published to the stream
 * (or published and not yet pruned), and the oldest of them (`time` as in its change message), or
 * null when the outbox is empty.
 */
export interface OutboxHead {
  node: string;
  waiting: number;
  oldest: { index: number; time: string } | null;
}

export type MembershipChange = { addLearner: string } | { promote: string } | { remove: string };

export interface ReadIndexResult {
  index: number;
  /** The leader's term when it took the index: the follower serves the read only if it is still in that term. */
  term: number;
}

export type WriteResult = { upserted: number } | { deleted: number };

export interface SearchResult {
  results: Hit[][];
  /** By query, with `explain`: what the shard's index chose (null for a query without it). Absent when no query asked, and from replicas older than `explain`. */
  explain?: (ShardPlan | null)[];
}

/** What a shard's index chose for one search (docs/protocol.md, search `explain`). */
export interface ShardPlan {
  plan: 'exact' | 'hnsw' | 'hnsw-filtered' | 'hnsw-postfilter';
  /** Points of the shard that match the filter (all of them without one). */
  matches: number;
  /** Points in the shard. */
  points: number;
  /** The shard's field indexes counted the matches without reading every point. */
  indexed: boolean;
  /** The shard tried `hnsw-postfilter` first, found too few matches, and planned again (absent otherwise). */
  fellBack?: true;
}

export interface GetResult {
  points: Point[];
}

export interface CountResult {
  count: number;
}

/** A replica's view of its shard (the leader's includes its followers' progress). */
export interface ShardStatus {
  node: string;
  role: ReplicaRole;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  count: number;
  progress: { node: string; matchIndex: number; lastContactMs: number | null; role: 'voter' | 'learner' }[];
  /** The Raft configuration as this replica knows it (on the leader: the committed one). */
  voters: string[];
  learners: string[];
  lastIndex: number;
  /** A snapshot this replica is receiving (a new replica's copy), or null. */
  snapshot: { bytes: number; totalBytes: number | null } | null;
  /** Read indexes this replica gave as leader, and read leases (see GroupStatus.reads in raft-state-machine.ts). */
  reads: { leaseHits: number; others: number; leases: number; rounds: number };
  /**
   * Reads this replica served as a follower: `strong` and `leased` ones through a read index from
   * the leader (`reads`, and the `requests` that carried them), and `leased` ones through its own
   * read lease, with no request (`leased`).
   */
  followerReads: { reads: number; requests: number; leased: number };
  /**
   * Whether this replica serves: `ok`; `repairing` (its data or log was found damaged and it is
   * being rebuilt from its peers: it serves no reads and votes for no one until caught up);
   * `failed` (its data is damaged and no other replica can rebuild it: it serves nothing).
   * docs/operations.md, Corruption.
   */
  health: ReplicaHealth;
  /** The damage this replica's node found in its data since the node started, or null. */
  damage: ReplicaDamage | null;
}

export type ReplicaHealth = 'ok' | 'repairing' | 'failed';

/** Damaged data found in a replica: the file, what was wrong, when (ISO time). */
export interface ReplicaDamage {
  file: string;
  problem: string;
  at: string;
}
