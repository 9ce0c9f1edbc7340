/**
 * A replica: one node's member of one shard's Raft group, with that shard's state machine.
 * Leader and follower are roles of this one actor. While it leads (from the first commit of its
 * term), it answers the shard's leader subject: writes are proposed to Raft and answered once
 * applied (or durable on the leader, for write concern `leader`); `strong` reads pass a
 * ReadIndex round first and `leased` reads check the lease. Every replica answers the shard's
 * queue-group subject for reads, and its own actor subject for status. A follower serves
 * `strong` and `leased` reads too: it asks the leader for a confirmed read index (one request
 * for all the reads of a turn, follower-reads.ts) and answers once it has applied that index —
 * so a router can search the replica on its own node whatever the consistency.
 *
 * Requests are answered asynchronously (deferReply), so a slow search never holds up the
 * mailbox; role changes arrive as messages, so subscribing and unsubscribing the leader subject
 * is ordered with everything else the actor does.
 */
import type { Hit, Metric, HnswParams } from '../../api/types.js';
import type { Behavior, Subscription } from '../../runtime/actor.js';
import { NotFoundError, NotLeaderError, UnavailableError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import type { ShardingConfig } from '../../api/types.js';
import type { BackupStore } from '../../cluster/backup-store.js';
import type { RequestBound } from './request-bound.js';
import type { Subjects } from '../../runtime/subjects.js';
import type { RoleChange } from '../../replication/raft-state-machine.js';
import { LeaderReadIndex } from './follower-reads.js';
import type { PullAnswer, PullRequest } from '../../shard/reshard-import.js';
import type { ReshardState } from '../../shard/reshard-state.js';
import type { Requester } from '../router/shard-client.js';
import { WritesInFlight } from './writes-in-flight.js';
import { handle, startImporter } from './replica-requests.js';
import {
  REPLICA_QUEUE_GROUP,
  anyReplicaSubject,
  leaderSubject,
  type LeaderAnnouncement,
  type MembershipChange,
  type ImportTally,
  type ShardRequest,
  type ReplicaHealth,
  type ShardPlan,
  type ShardStatus,
  type WriteResult,
} from '../shard-protocol.js';

/** What a replica needs of its shard's state machine (src/shard's ShardStateMachine). */
export interface ShardStore {
  readonly appliedIndex: number;
  /** The shard map epoch the shard serves (null: a reshard dropped it); its reshard state (null: never resharded). */
  readonly servingEpoch: number | null;
  readonly reshard: ReshardState | null;
  /** A source's answer to a target's pull during a reshard. */
  pull(req: PullRequest): PullAnswer<Uint8Array>;
  count(): number;
  search(q: { vector: Float32Array; k: number; ef?: number; filter?: unknown; withVector: boolean; withMetadata: boolean }): Promise<Hit[]>;
  /** {@link search}, with what the shard's index chose (absent: `explain` is not answered). */
  searchExplained?(q: { vector: Float32Array; k: number; ef?: number; filter?: unknown; withVector: boolean; withMetadata: boolean }): Promise<{ hits: Hit[]; explain: ShardPlan }>;
  get(ids: readonly string[], opts: { withVector: boolean; withMetadata: boolean }): Promise<{ id: string; vector?: Float32Array; metadata?: Record<string, unknown> }[]>;
  /** The change-stream outbox: how many records wait, and the oldest one's index and `time` (ms). */
  outboxHead?(): { count: number; oldest: { index: number; time: number } | null };
  /** The state machine's image at its applied index (backups: backup-requests.ts). */
  snapshot?(opts: { ownCheckpoint: boolean }): Promise<{ appliedIndex: number; chunks: AsyncIterable<Uint8Array>; points: number }>;
}

/** What a replica needs of its shard's Raft group. */
export interface ReplicatedGroup {
  propose(data: Uint8Array, opts: { concern: 'majority' | 'all' | 'leader'; timeoutMs: number }): Promise<{ index: number; result: unknown }>;
  readBarrier(opts: { mode: 'strong' | 'leased'; timeoutMs: number }): Promise<void>;
  /** On the leader: a read index confirmed per `mode`, not waiting to apply it, for the follower `forPeer`. */
  readIndex(opts: { mode: 'strong' | 'leased'; timeoutMs: number; forPeer?: string }): Promise<{ index: number; term: number }>;
  /**
   * On a follower: a read index its leader confirmed per `mode`, not waiting to apply it, asked
   * for over the Raft transport (the reads of all this node's groups waiting for one peer's answer
   * share its frames), with the term it was given in.
   */
  followerReadIndex(opts: { mode: 'strong' | 'leased'; timeoutMs: number }): Promise<{ index: number; term: number }>;
  /** This replica's current Raft term. */
  term(): number;
  /** Resolves once this replica has applied `index`. */
  waitApplied(index: number, timeoutMs: number): Promise<void>;
  /** On a follower holding a read lease: a `leased` read with no message (undefined without a lease). */
  leaseRead(timeoutMs: number): Promise<number> | undefined;
  onRoleChange(listener: (ev: RoleChange) => void): () => void;
  status(): Omit<ShardStatus, 'node' | 'count' | 'followerReads'>;
  /** Whether this replica may serve reads ({@link ShardStatus.health}), and why not; `logRepair`: its Raft log is being repaired (it needs an append of its leader's term). */
  health(): { health: ReplicaHealth; why: string | null; logRepair?: boolean };
  /** On the leader: hands leadership to `to` (default: the most caught-up other voter); resolves once this replica no longer leads. */
  transferLeadership(to?: string): Promise<void>;
  /** On the leader: one membership change; resolves once it is committed. */
  changeMembership(change: MembershipChange): Promise<void>;
}

/** Opens (or reopens) the store and the group of one replica; called at each (re)start of the actor. */
export interface ReplicaResources {
  store: ShardStore;
  group: ReplicatedGroup;
  /** Parses and validates a filter (the index's language); throws InvalidArgumentError naming the path. */
  parseFilter(filter: unknown): unknown;
  close(): Promise<void>;
}

export interface ReplicaConfig {
  node: string;
  uid: string;
  shard: number;
  collection: string;
  dim: number;
  metric: Metric;
  hnsw: HnswParams;
  subjects: Subjects;
  /** Asks the shard's leader subject (a follower's read index). */
  requester: Requester;
  /** The lease epoch of the latest coordinator this node knows of: a membership change from an earlier one is refused. */
  coordinatorEpoch(): number;
  open(): Promise<ReplicaResources>;
  /** Tells the routers that this replica now leads (shard-protocol.ts, leaderAnnounceSubject). */
  announce(a: LeaderAnnouncement): void;
  /** The collection's sharding, for a reshard's importer (absent: this replica imports nothing). */
  sharding?: ShardingConfig;
  /** The bytes per second this shard's reshard copy may take now (the node's share of `maxBytesPerSec`, copy-rates.ts; 0 or absent: unlimited). */
  importRate?(): number;
  /** The node's bound on client requests in flight (request-bound.ts); absent: unbounded. */
  bound?: RequestBound;
  /** The backups object store, opened on first use (backup-requests.ts); absent: this replica takes no backups. */
  backups?: () => Promise<BackupStore>;
}

/** The requests a client's operation makes, counted against the node's {@link RequestBound}; the cluster's own (status, read index, reshard, membership) are not. */
const CLIENT_REQUESTS: ReadonlySet<string> = new Set(['write', 'search', 'get', 'count']);

/** Shard requests arrive as they are (on the leader subject, the queue group, or the actor's own subject); role changes and leader balance are the actor's own. */
type ReplicaMsg = ShardRequest | { type: 'role'; ev: RoleChange } | { type: 'health' };

/** How often a replica looks at its health, to leave the read queue group while it is repairing or failed and to join it again once it serves. */
export const HEALTH_EVERY_MS = 500;
/** A follower whose log is being repaired asks its leader for a no-op at most this often (see ShardRequest `repairNoop`). */
export const REPAIR_NOOP_EVERY_MS = 2_000;

/** The replica actor's state; its request handlers (replica-requests.ts) read and change it too. */
export interface ReplicaState {
  res: ReplicaResources;
  role: RoleChange;
  leaderReads: LeaderReadIndex;
  leaderSub: Subscription | undefined;
  /** The shard's queue group for reads: joined only while this replica is a voter (a learner is still copying). */
  anySub: Subscription | undefined;
  stopRoleWatch: () => void;
  /** Whether a reshard importer runs (on the leader only; see importer.ts). */
  importing: boolean;
  /** What this replica's importers proposed for the newest reshard they ran (ReshardStatus.imported). */
  imported: ImportTally | null;
  stopped: boolean;
  log: Logger;
  /** When this replica last asked its leader for a no-op to repair its log (0: never). */
  repairAskedAt: number;
  /** Writes being proposed, by request id (writes-in-flight.ts). */
  writes: WritesInFlight<WriteResult>;
}

export function replicaBehavior(cfg: ReplicaConfig): Behavior<ReplicaState, ReplicaMsg> {
  const leaderSubj = leaderSubject(cfg.subjects, cfg.uid, cfg.shard);
  const asRequest = (body: unknown): ReplicaMsg => body as ShardRequest;
  return {
    async init(ctx) {
      const res = await cfg.open();
      const post = ctx.poster();
      const stopRoleWatch = res.group.onRoleChange((ev) => post({ type: 'role', ev }));
      const leaderReads = new LeaderReadIndex(async (mode, timeoutMs) => {
        const r = await res.group.followerReadIndex({ mode, timeoutMs });
        // Still in the term the leader took the index in, now that the answer is here: this
        // replica and the leader were a quorum in that term after the index was taken (with
        // three voters or fewer the leader counted on this check instead of a heartbeat round).
        // The Raft core takes the answer only in that term; checked here again, as it costs nothing.
        if (res.group.term() !== r.term) {
          throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: the term changed (${r.term} -> ${res.group.term()}) while the leader confirmed a read index; retry`);
        }
        return r.index;
      });
      ctx.every('health', HEALTH_EVERY_MS, { type: 'health' });
      return { res, role: { role: 'learner', term: 0, leader: null, ready: false }, leaderReads, leaderSub: undefined, anySub: undefined, stopRoleWatch, importing: false, imported: null, stopped: false, log: ctx.log, repairAskedAt: 0, writes: new WritesInFlight<WriteResult>() };
    },
    receive(state, msg, ctx) {
      if (msg.type === 'health' || msg.type === 'role') {
        // In the shard's read queue group while a voter whose data serves (a learner is still
        // copying; a replica being rebuilt, or whose data is damaged, is left out).
        const syncReadGroup = (healthy: boolean): void => {
          const member = healthy && state.role.role !== 'learner';
          if (member && !state.anySub) {
            state.anySub = ctx.subscribe(anyReplicaSubject(cfg.subjects, cfg.uid, cfg.shard), { queue: REPLICA_QUEUE_GROUP, map: (d) => asRequest(d.body) });
          } else if (!member && state.anySub) {
            state.anySub.unsubscribe();
            state.anySub = undefined;
          }
        };
        if (msg.type === 'health') {
          const h = state.res.group.health();
          // A replica whose log is being repaired waits for an append of its leader's term; in a group
          // nothing writes to, none comes (an idle leader does not even heartbeat, and a repairing
          // replica never campaigns, so it may not know the leader): ask whoever leads for one.
          if (h.logRepair && ctx.clock.now() - state.repairAskedAt >= REPAIR_NOOP_EVERY_MS) {
            state.repairAskedAt = ctx.clock.now();
            cfg.requester.request(leaderSubj, { type: 'repairNoop', from: cfg.node, timeoutMs: 1_000 }, { timeoutMs: 1_000 }).catch(() => undefined);
          }
          syncReadGroup(h.health === 'ok');
          return state;
        }
        state.role = msg.ev;
        syncReadGroup(state.res.group.health().health === 'ok');
        const leading = msg.ev.role === 'leader' && msg.ev.ready;
        if (leading && !state.leaderSub) {
          state.leaderSub = ctx.subscribe(leaderSubj, { map: (d) => asRequest(d.body) });
          // After the subscription: a router told of the new leader finds it there.
          cfg.announce({ uid: cfg.uid, shard: cfg.shard, term: msg.ev.term, node: cfg.node });
          ctx.log.info('leading', { shard: `${cfg.collection}/${cfg.shard}`, term: msg.ev.term });
        } else if (!leading && state.leaderSub) {
          state.leaderSub.unsubscribe();
          state.leaderSub = undefined;
        }
        if (leading) startImporter(cfg, state);
        return state;
      }
      const reply = ctx.deferReply();
      const counted = cfg.bound !== undefined && CLIENT_REQUESTS.has(msg.type);
      if (counted) {
        const refused = cfg.bound?.enter();
        if (refused) {
          reply.reject(refused);
          return state;
        }
      }
      handle(cfg, state, msg, ctx.clock).then(
        (v) => reply.resolve(v),
        // The group left this node (removed from the shard, its data being deleted): the shard
        // is served elsewhere, so the caller retries there.
        (e: unknown) => reply.reject(e instanceof NotFoundError ? new UnavailableError(`shard ${cfg.collection}/${cfg.shard} is no longer served on ${cfg.node}: ${e.message}`) : e),
      ).finally(() => {
        if (counted) cfg.bound?.leave();
      });
      return state;
    },
    async cleanup(state) {
      if (!state) return;
      state.stopped = true;
      state.stopRoleWatch();
      await state.res.close();
    },
    describe: (msg) => msg.type,
    tracing: {
      name: (msg) => `shard.${msg.type}`,
      attributes: () => ({ 'db.collection.name': cfg.collection, 'shoal.collection': cfg.collection, 'shoal.shard': cfg.shard }),
    },
    kind: 'replica',
    // what the console's `actors` shows, and how its `shard <collection>/<n>` finds a shard's replicas
    summary: (state) => ({ collection: cfg.collection, shard: cfg.shard, role: state.role.role, term: state.role.term, leader: state.role.leader }),
  };
}
