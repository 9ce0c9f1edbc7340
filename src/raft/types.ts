/**
 * The Raft core's vocabulary: branded ids, log entries, hard state, configurations, the
 * messages replicas exchange, and the {@link Ready} the core hands to its host.
 */

/** A replica's node id (the node that hosts it). */
export type NodeId = string & { readonly __brand: 'NodeId' };
/** A Raft term. */
export type Term = number & { readonly __brand: 'Term' };
/** A position in the Raft log; the first entry is at 1, 0 means "before the log". */
export type LogIndex = number & { readonly __brand: 'LogIndex' };

export const nodeId = (s: string): NodeId => s as NodeId;
export const term = (n: number): Term => n as Term;
export const logIndex = (n: number): LogIndex => n as LogIndex;

/**
 * - `normal`: a proposal of the application;
 * - `noop`: the entry a new leader appends at once (its first entry of the term);
 * - `config`: a membership change; `data` is the whole new {@link ConfState} (see entry.ts).
 */
export type EntryType = 'normal' | 'noop' | 'config';

export interface Entry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly type: EntryType;
  readonly data: Uint8Array;
  /** CRC-32 of index, term, type and data (entry.ts). Checked when read from disk and from the wire. */
  readonly crc: number;
}

/** What must survive a crash besides the log. */
export interface HardState {
  readonly term: Term;
  /** Whom this replica voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: LogIndex;
  /**
   * A corrupt entry was found and dropped; until a leader repairs the log, this replica neither
   * votes nor campaigns. Durable, so that a restart in the middle of the repair (when the stored
   * log looks intact but lacks entries this replica acknowledged) cannot forget it.
   */
  readonly repairing: boolean;
}

/** A group's membership. Voters elect and count toward commit; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** Where a snapshot (or a compaction) cut the log: the last index it covers, its term, and the configuration there. */
export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  readonly conf: ConfState;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

interface Base {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** Messages between replicas of one group (§5 of the Raft paper, plus pre-vote, ReadIndex, transfer and follower read leases). */
export type Message =
  | (Base & { readonly type: 'preVote'; readonly lastIndex: LogIndex; readonly lastTerm: Term })
  | (Base & { readonly type: 'preVoteResp'; readonly reject: boolean })
  | (Base & { readonly type: 'vote'; readonly lastIndex: LogIndex; readonly lastTerm: Term; readonly transfer: boolean })
  | (Base & { readonly type: 'voteResp'; readonly reject: boolean })
  | (Base & {
      readonly type: 'app';
      readonly prevIndex: LogIndex;
      readonly prevTerm: Term;
      readonly entries: readonly Entry[];
      readonly commit: LogIndex;
    })
  | (Base & {
      readonly type: 'appResp';
      /** Accepted: the index now matched. Rejected: the `prevIndex` refused. */
      readonly index: LogIndex;
      readonly reject: boolean;
      /** On reject: a guess of the last index where the logs may agree, and its term (fast backtracking). */
      readonly hintIndex: LogIndex;
      readonly hintTerm: Term;
      /** The sender's applied index, for write concern `all`. */
      readonly applied: LogIndex;
    })
  | (Base & {
      readonly type: 'heartbeat';
      readonly commit: LogIndex;
      /** Sequence number of this heartbeat round: ReadIndex and leases count its acknowledgements. */
      readonly seq: number;
      /** The group is idle: stop ticking until a message arrives. */
      readonly quiesce: boolean;
    })
  | (Base & { readonly type: 'heartbeatResp'; readonly seq: number; readonly applied: LogIndex; readonly lastIndex: LogIndex })
  | (Base & { readonly type: 'snap'; readonly snapshot: SnapshotMeta })
  | (Base & { readonly type: 'timeoutNow' })
  /** A follower asks its leader for a read lease (see leases.ts, "Follower read leases"). */
  | (Base & { readonly type: 'leaseReq'; readonly id: number })
  /**
   * The answer to `leaseReq` `id`: a lease of `ticks` ticks counted from when the follower asked
   * (0: refused), and the leader's commit index when it granted it.
   */
  | (Base & { readonly type: 'leaseResp'; readonly id: number; readonly ticks: number; readonly commit: LogIndex })
  /**
   * A follower asks its leader for a read index (Raft §8 on a follower, etcd's MsgReadIndex) on
   * behalf of every read that reached it since its last request: `ctx` names the request.
   */
  | (Base & { readonly type: 'readReq'; readonly ctx: number; readonly leased: boolean })
  /**
   * The answer to `readReq` `ctx`: the confirmed read index, or `reject` (the receiver does not
   * lead, or stopped leading before it could confirm). Only taken in the term it was asked in.
   */
  | (Base & { readonly type: 'readResp'; readonly ctx: number; readonly index: LogIndex; readonly reject: boolean });

export type MessageType = Message['type'];

/** A confirmed linearizable read: serve it once the applied index reaches `index`. */
export interface ReadState {
  readonly id: number;
  readonly index: LogIndex;
}

/** A read that could not be confirmed (leadership lost or never held). */
export interface ReadFailure {
  readonly id: number;
  readonly reason: 'notLeader' | 'stepDown';
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: Term;
  /** Leader only: its first entry of the term has committed, so it serves writes and reads. */
  readonly ready: boolean;
  readonly isVoter: boolean;
}

/**
 * What the core asks its host to do, handed out by `ready()`. The host must carry it out in this
 * order; the fields say which rule binds them.
 */
export interface Ready {
  /**
   * Persist before sending any message of this Ready. Absent when unchanged. A vote is a promise:
   * it must be flushed to disk before the vote response leaves.
   */
  readonly hardState: HardState | undefined;
  /**
   * Append to stable storage, replacing any stored entries at these indexes and after them.
   * Flush before sending any message of this Ready (an append acknowledgement promises that
   * the entries are durable).
   */
  readonly entries: readonly Entry[];
  /**
   * A snapshot was installed: persist its metadata and drop every stored entry up to its index.
   * The state machine already holds the image (the host restored it before stepping the `snap`
   * message). Persist before sending.
   */
  readonly snapshot: SnapshotMeta | undefined;
  /** Entries the core found corrupt at start and dropped: delete stored entries from this index on. */
  readonly truncateFrom: LogIndex | undefined;
  /**
   * Messages to send. Those for which {@link mustPersistBeforeSending} is true (votes, vote
   * requests, append and heartbeat acknowledgements) leave only after everything above, and
   * everything of every earlier Ready, is flushed to disk: they promise durability. A leader's
   * appends, heartbeats, snapshots and transfer orders may leave at once, in parallel with its
   * own write (Raft diss. §10.2.1): the leader counts itself toward a quorum only for entries
   * the host has reported durable through `advance`. Messages may be dropped, delayed,
   * reordered or duplicated: the core copes.
   */
  readonly messages: readonly Message[];
  /**
   * Committed entries to apply, in order, after the entries of this Ready are persisted (some
   * may be among them). Call `appliedTo` as they are applied.
   */
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly readFailures: readonly ReadFailure[];
  /** Role, leader or readiness changed since the last Ready. */
  readonly softState: SoftState | undefined;
}

/** Whether `m` promises something about this replica's disk and so must wait for the flush. */
export function mustPersistBeforeSending(m: Message): boolean {
  switch (m.type) {
    case 'app':
    case 'heartbeat':
    case 'snap':
    case 'timeoutNow':
    case 'leaseReq':
    case 'leaseResp':
    case 'readReq':
    case 'readResp':
      return false;
    case 'appResp':
    case 'heartbeatResp':
    case 'vote':
    case 'voteResp':
    case 'preVote':
    case 'preVoteResp':
      return true;
    default: {
      const never: never = m;
      return Boolean(never);
    }
  }
}
