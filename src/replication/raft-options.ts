/**
 * The Raft host's options, with named defaults, checked once by {@link parseRaftHostOptions}.
 *
 * Timing: a tick is {@link DEFAULT_TICK_MS}; a follower campaigns after 6 to 12 ticks (300 to
 * 600 ms) without a leader, so a leader's SIGKILL is followed by a new leader's first commit in
 * well under a second; a leader heartbeats every 2 ticks and steps down after 6 ticks without a
 * quorum (check-quorum).
 *
 * The host passes its tick counts to the core explicitly: they are the host's, tuned to its tick
 * length, and named `DEFAULT_HOST_*` apart from the core's own defaults (src/raft/config.ts,
 * `DEFAULT_ELECTION_TICKS` and the like), which serve the core's tests and simulation.
 */
import type { ActorSystem } from '../runtime/actor-system.js';
import type { Clock } from '../runtime/clock.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logger.js';
import type { TestingBugs } from '../raft/config.js';
import type { NodeEnv } from '../storage/node-env.js';
import type { RaftLogStore } from '../storage/raft-log-store.js';
import type { StateMachine } from './raft-state-machine.js';
import type { RaftTransport } from './raft-transport.js';
import type { HostTestingBugs } from './raft-turns.js';

export const DEFAULT_TICK_MS = 50;
/** Ticks without a leader before a follower campaigns (randomized in [n, 2n)); fewer than the core's default, as ticks here are {@link DEFAULT_TICK_MS}. */
export const DEFAULT_HOST_ELECTION_TICKS = 6;
/** Ticks between a leader's heartbeats. */
export const DEFAULT_HOST_HEARTBEAT_TICKS = 2;
/** Idle ticks after which a leader quiesces its group (no heartbeats until something happens). */
export const DEFAULT_HOST_QUIESCE_AFTER_TICKS = 20;
/** Entries kept in the log behind the applied index when compacting, for slow followers. */
export const DEFAULT_COMPACT_KEEP = 1_000;
/** Compact once this many applied entries lie before the kept tail. */
export const DEFAULT_COMPACT_EVERY = 10_000;
/**
 * Compact also once the applied entries before the kept tail hold this many bytes, the tail then
 * being the shorter of {@link DEFAULT_COMPACT_KEEP_BYTES} and `compactKeep` entries. The log lives
 * in memory (raft-log.ts) and in LMDB, and an upsert's entry carries its vectors (a batch of 256
 * points of 784 dims is ~800 KB): by count alone a group held up to 11,000 entries, several copies
 * of its points, and LMDB's file keeps its high-water mark, so every peak of the log stays in it
 * (issue 21, bench:churn). The price: a follower more than the tail behind gets a snapshot.
 */
export const DEFAULT_COMPACT_BYTES = 8 * 2 ** 20;
export const DEFAULT_COMPACT_KEEP_BYTES = 4 * 2 ** 20;
/** Bytes per snapshot chunk (capped at half the server's max payload). */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;

export interface RaftHostOptions {
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  quiesceAfterTicks: number;
  compactKeep: number;
  compactEvery: number;
  /** See {@link DEFAULT_COMPACT_BYTES}. */
  compactBytes: number;
  compactKeepBytes: number;
  snapshotChunkBytes: number;
  /** A snapshot stream whose next chunk is not answered (or not sent) within this is failed; default 10 election timeouts. */
  snapshotStallMs: number;
  /** Seed of the groups' election timers; default from the node id and the time. */
  seed: number;
  /**
   * At most one read-confirming exchange in flight per peer node; asks made meanwhile wait and
   * leave together (read-pipeline.ts). Default off: at 32 clients it cut a `strong` search's
   * messages between nodes by a fifth but neither its CPU nor its QPS (bench/RESULTS.md).
   */
  readPipeline: boolean;
  /** Frames of answers only (acknowledgements, read indexes) are published with no reply wanted: one NATS message instead of a request and its empty reply. Default on. */
  publishAnswers: boolean;
}

function int(path: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new InvalidArgumentError(`raft host option ${path} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

export function parseRaftHostOptions(input: Partial<RaftHostOptions>, nodeId: string): RaftHostOptions {
  let h = 2166136261;
  for (const ch of nodeId) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  const o: RaftHostOptions = {
    tickMs: int('tickMs', input.tickMs ?? DEFAULT_TICK_MS, 1),
    electionTicks: int('electionTicks', input.electionTicks ?? DEFAULT_HOST_ELECTION_TICKS, 2),
    heartbeatTicks: int('heartbeatTicks', input.heartbeatTicks ?? DEFAULT_HOST_HEARTBEAT_TICKS, 1),
    quiesceAfterTicks: int('quiesceAfterTicks', input.quiesceAfterTicks ?? DEFAULT_HOST_QUIESCE_AFTER_TICKS, 0),
    compactKeep: int('compactKeep', input.compactKeep ?? DEFAULT_COMPACT_KEEP, 0),
    compactEvery: int('compactEvery', input.compactEvery ?? DEFAULT_COMPACT_EVERY, 1),
    compactBytes: int('compactBytes', input.compactBytes ?? DEFAULT_COMPACT_BYTES, 1),
    compactKeepBytes: int('compactKeepBytes', input.compactKeepBytes ?? DEFAULT_COMPACT_KEEP_BYTES, 0),
    snapshotChunkBytes: int('snapshotChunkBytes', input.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES, 1),
    snapshotStallMs: 0,
    seed: input.seed ?? ((h ^ Date.now()) >>> 0),
    readPipeline: input.readPipeline ?? false,
    publishAnswers: input.publishAnswers ?? true,
  };
  for (const k of ['readPipeline', 'publishAnswers'] as const) {
    if (typeof o[k] !== 'boolean') throw new InvalidArgumentError(`raft host option ${k} must be true or false, got ${String(o[k])}`);
  }
  o.snapshotStallMs = int('snapshotStallMs', input.snapshotStallMs ?? o.electionTicks * o.tickMs * 10, 1);
  if (o.heartbeatTicks >= o.electionTicks) {
    throw new InvalidArgumentError(`raft host option heartbeatTicks (${o.heartbeatTicks}) must be below electionTicks (${o.electionTicks})`);
  }
  return o;
}

export interface RaftHostStartOptions {
  system: ActorSystem;
  /** The node's LMDB environment (the log goes in its raft sub-databases). */
  env?: NodeEnv;
  /** Or a store (tests). One of the two is required. */
  store?: RaftLogStore;
  nodeId: string;
  options?: Partial<RaftHostOptions>;
  /**
   * Called once if the host stops itself because it can no longer keep its promises (a failed
   * flush of the Raft log): the process should exit and recover from what is on disk.
   */
  onFatal?: (err: Error) => void;
  /** See {@link RaftHostDeps.writeGate}. */
  writeGate?: WriteGate;
}

/**
 * Asked before each proposal and each inbound append: an error while this node must not take
 * writes (its disk or memory limit is passed: runtime/resource-guard.ts), else undefined. It must
 * be cheap (a field read): it runs on the write path.
 */
export type WriteGate = () => Error | undefined;

/** The host's ports: everything outside it that it talks to. */
export interface RaftHostDeps {
  nodeId: string;
  clock: Clock;
  log: Logger;
  store: RaftLogStore;
  transport: RaftTransport;
  options?: Partial<RaftHostOptions>;
  /** Runs `fn` once the current event-loop turn's work is done (default: setImmediate). The simulation runs these itself. */
  defer?: (fn: () => void) => void;
  onFatal?: (err: Error) => void;
  /** Deliberate bugs of the core and the host, for proving the simulation catches them. Never set outside tests. */
  bugs?: TestingBugs & HostTestingBugs;
  /**
   * While it returns an error, this node takes no writes: proposals are refused with it, a
   * follower drops the leader's appends and snapshots (it does not acknowledge what it cannot
   * persist; the group goes on with the other replicas), and a leader hands its leadership to a
   * caught-up voter when it has one. Reads and elections go on.
   */
  writeGate?: WriteGate;
  /** Overrides of the cores' flow control (the simulation varies them). */
  flow?: { maxSizePerMsg?: number; maxInflightMsgs?: number };
}

export interface CreateGroupOptions {
  /** Initial voters (every initial member must be given the same). Ignored when the group has stored state. */
  voters: string[];
  learners?: string[];
  stateMachine: StateMachine;
  /** Join an existing group (after `changeMembership({addLearner})` on its leader): start empty and take the log from the leader. */
  join?: boolean;
}
