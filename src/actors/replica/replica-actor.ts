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
import { randomBytes } from 'node:crypto';
import type { Hit, Metric, HnswParams } from '../../api/types.js';
import type { Behavior, Subscription } from '../../runtime/actor.js';
import type { Clock } from '../../runtime/clock.js';
import { describeError, InternalError, InvalidArgumentError, MovingError, NotFoundError, NotLeaderError, StaleMapError, TimeoutError, UnavailableError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import type { ShardingConfig } from '../../api/types.js';
import { runImporter } from './importer.js';
import { backupShard, restoreShard } from './backup-requests.js';
import type { BackupStore } from '../../cluster/backup-store.js';
import type { RequestBound } from './request-bound.js';
import type { Subjects } from '../../runtime/subjects.js';
import type { RoleChange } from '../../replication/raft-state-machine.js';
import { encodeCommand, type LoggedCommand } from '../../shard/mod.js';
import { LeaderReadIndex } from './follower-reads.js';
import { PullRefused, type PullAnswer, type PullRequest } from '../../shard/reshard-import.js';
import type { ReshardState } from '../../shard/reshard-state.js';
import type { Requester } from '../router/shard-client.js';
import { WritesInFlight, writeKey } from './writes-in-flight.js';
import {
  REPLICA_QUEUE_GROUP,
  anyReplicaSubject,
  leaderSubject,
  type LeaderAnnouncement,
  type MembershipChange,
  type ReadIndexResult,
  type ImportTally,
  type ReshardStatus,
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

/** Margin kept from a request's deadline for the answer's trip back. */
const ANSWER_MARGIN_MS = 5;

/**
 * A follower further behind the leader's read index than this many entries does not wait to
 * catch up: it answers UNAVAILABLE at once, and the router asks the leader instead. A healthy
 * follower is a few turns' worth of entries behind; a thousand is seconds of writes.
 */
export const FOLLOWER_READ_MAX_LAG = 1_000;

/**
 * A follower waits at most this long to apply up to the leader's read index; then it answers
 * UNAVAILABLE and the router asks the leader (a follower that applies slowly, its index worker
 * busy restoring a snapshot, does not hold reads).
 */
export const FOLLOWER_READ_MAX_WAIT_MS = 1_000;

/** The requests a client's operation makes, counted against the node's {@link RequestBound}; the cluster's own (status, read index, reshard, membership) are not. */
const CLIENT_REQUESTS: ReadonlySet<string> = new Set(['write', 'search', 'get', 'count']);

/** Shard requests arrive as they are (on the leader subject, the queue group, or the actor's own subject); role changes and leader balance are the actor's own. */
type ReplicaMsg = ShardRequest | { type: 'role'; ev: RoleChange } | { type: 'health' };

/** How often a replica looks at its health, to leave the read queue group while it is repairing or failed and to join it again once it serves. */
export const HEALTH_EVERY_MS = 500;
/** A follower whose log is being repaired asks its leader for a no-op at most this often (see ShardRequest `repairNoop`). */
export const REPAIR_NOOP_EVERY_MS = 2_000;

interface ReplicaState {
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

async function handle(cfg: ReplicaConfig, state: ReplicaState, req: ShardRequest, clock: Clock): Promise<unknown> {
  const { store, group } = state.res;
  switch (req.type) {
    case 'status':
      return { ...group.status(), node: cfg.node, count: store.count(), followerReads: { ...state.leaderReads.stats } } satisfies ShardStatus;
    case 'write': {
      // The wall clock, not the system's: `at` goes into the log, where dedup expiry compares it
      // with the readings of other leaders, on other nodes and after restarts.
      const at = Date.now();
      const mapEpoch = req.mapEpoch ?? 0;
      const command: LoggedCommand =
        req.write.op === 'upsert'
          ? { type: 'upsert', points: req.write.points, requestId: req.requestId, at, mapEpoch }
          : { type: 'delete', ids: req.write.ids, requestId: req.requestId, at, mapEpoch };
      state.log.debug('write', { collection: cfg.collection, shard: cfg.shard, op: req.write.op, count: req.write.op === 'upsert' ? req.write.points.length : req.write.ids.length });
      // a copy of a write still in flight here waits for it rather than logging it twice
      return state.writes.run(writeKey(req.requestId, req.concern, req.write.op, mapEpoch), async () => {
        const { result } = await group.propose(encodeCommand(command), { concern: req.concern, timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS) });
        return writeResult(cfg, req, result);
      });
    }
    case 'search': {
      refuseUnhealthy(cfg, state);
      const queries = req.queries.map((q) => ({ ...q, filter: q.filter === undefined ? undefined : state.res.parseFilter(q.filter) }));
      await barrier(cfg, state, req.consistency, req.timeoutMs, clock);
      checkEpoch(cfg, store, req.mapEpoch);
      if (!queries.some((q) => q.explain === true) || !store.searchExplained) return { results: await Promise.all(queries.map(({ explain: _, ...q }) => store.search(q))) };
      const explained = store.searchExplained.bind(store);
      const answers = await Promise.all(queries.map(async ({ explain, ...q }) => (explain === true ? explained(q) : { hits: await store.search(q), explain: null })));
      return { results: answers.map((a) => a.hits), explain: answers.map((a) => a.explain) };
    }
    case 'get':
      refuseUnhealthy(cfg, state);
      await barrier(cfg, state, req.consistency, req.timeoutMs, clock);
      checkEpoch(cfg, store, req.mapEpoch);
      return { points: await store.get(req.ids, { withVector: req.withVector, withMetadata: req.withMetadata }) };
    case 'count':
      refuseUnhealthy(cfg, state);
      await barrier(cfg, state, req.consistency, req.timeoutMs, clock);
      checkEpoch(cfg, store, req.mapEpoch);
      return { count: store.count() };
    case 'backup':
      return backupShard(cfg, store, state.role.role === 'leader' && state.role.ready, req.object);
    case 'restore':
      if (!(state.role.role === 'leader' && state.role.ready)) throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      return restoreShard(cfg, group, req.object, Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS));
    case 'reshardStatus':
      // The coordinator asks the leader this every quarter second while a reshard copies: an
      // importer that should run here and does not (whatever stopped it) starts again.
      if (state.role.role === 'leader' && state.role.ready) startImporter(cfg, state);
      return reshardStatus(cfg, state);
    case 'reshard': {
      const known = cfg.coordinatorEpoch();
      if (req.epoch < known) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: a reshard step from coordinator epoch ${req.epoch} refused; epoch ${known} is current`);
      if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      const { result } = await group.propose(encodeCommand({ type: 'reshard', step: req.step, at: Date.now() }), { concern: 'majority', timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS) });
      const r = result as { unchanged?: string } | undefined;
      // a leader that begins to lead a shard a reshard fills starts its importer
      startImporter(cfg, state);
      return { ...reshardStatus(cfg, state), ...(r?.unchanged ? { unchanged: r.unchanged } : {}) } satisfies ReshardStatus;
    }
    case 'pull':
      try {
        return store.pull(req.pull);
      } catch (err) {
        if (err instanceof PullRefused || err instanceof InvalidArgumentError) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard} on ${cfg.node}: ${err.message}`);
        throw err;
      }
    case 'conf':
      return changeMembership(cfg, state, req);
    case 'transfer': {
      if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      const st = group.status();
      if (req.to !== undefined && !st.voters.includes(req.to)) {
        throw new InvalidArgumentError(`to: ${req.to} is not a voter of shard ${cfg.collection}/${cfg.shard} (voters: ${st.voters.join(', ')})`);
      }
      if (req.to !== cfg.node) await group.transferLeadership(req.to);
      return { term: group.term() };
    }
    case 'repairNoop': {
      if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
      // an upsert of nothing: applied as a no-op by every version of the state machine
      await group.propose(encodeCommand({ type: 'upsert', points: [], at: Date.now() }), { concern: 'leader', timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS) });
      return { ok: true };
    }
    case 'readIndex': {
      // The Raft host refuses (NOT_LEADER, naming the leader) unless this replica leads now.
      const { index, term } = await group.readIndex({ mode: req.mode, timeoutMs: Math.max(1, req.timeoutMs - ANSWER_MARGIN_MS), forPeer: req.from });
      return { index, term } satisfies ReadIndexResult;
    }
  }
}

/** A replica being rebuilt, or whose data is damaged, answers no read: the router asks another replica. */
function refuseUnhealthy(cfg: ReplicaConfig, state: ReplicaState): void {
  const { health, why } = state.res.group.health();
  if (health === 'ok') return;
  throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard} on ${cfg.node} serves no reads: its replica is ${health}${why ? ` (${why})` : ''}`);
}

/**
 * One membership change on the leader, refused to a deposed coordinator, and idempotent: a change
 * the committed configuration already shows is answered at once (a coordinator that took over
 * repeats the phase it found unfinished).
 */
async function changeMembership(cfg: ReplicaConfig, state: ReplicaState, req: Extract<ShardRequest, { type: 'conf' }>): Promise<{ voters: string[]; learners: string[] }> {
  const known = cfg.coordinatorEpoch();
  if (req.epoch < known) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: a membership change from coordinator epoch ${req.epoch} refused; epoch ${known} is current`);
  if (state.role.role !== 'leader') throw new NotLeaderError(`shard ${cfg.collection}/${cfg.shard}: node ${cfg.node} does not lead`);
  const { group } = state.res;
  const done = (): boolean => {
    const st = group.status();
    const c = req.change;
    if ('addLearner' in c) return st.learners.includes(c.addLearner) || st.voters.includes(c.addLearner);
    if ('promote' in c) return st.voters.includes(c.promote);
    return !st.voters.includes(c.remove) && !st.learners.includes(c.remove);
  };
  if (!done()) await group.changeMembership(req.change);
  const st = group.status();
  return { voters: st.voters, learners: st.learners };
}

/**
 * Before a read: nothing for `eventual`; for `strong` and `leased`, the leader's read barrier
 * here, or on a follower the leader's confirmed read index, applied here.
 */
async function barrier(cfg: ReplicaConfig, state: ReplicaState, consistency: 'strong' | 'leased' | 'eventual', timeoutMs: number, clock: Clock): Promise<void> {
  if (consistency === 'eventual') return;
  const t = Math.max(1, timeoutMs - ANSWER_MARGIN_MS);
  const { group, store } = state.res;
  if (state.role.role === 'leader') {
    await group.readBarrier({ mode: consistency, timeoutMs: t });
    return;
  }
  if (consistency === 'leased') {
    const leased = group.leaseRead(t);
    if (leased) {
      state.leaderReads.stats.leased++;
      await leased;
      return;
    }
  }
  const deadline = clock.now() + t;
  const index = await state.leaderReads.get(consistency, t);
  const lag = index - store.appliedIndex;
  if (lag > FOLLOWER_READ_MAX_LAG) {
    throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: the replica on ${cfg.node} is ${lag} entries behind the leader; ask the leader`);
  }
  const left = Math.max(1, deadline - clock.now());
  if (left <= FOLLOWER_READ_MAX_WAIT_MS) {
    await group.waitApplied(index, left);
    return;
  }
  try {
    await group.waitApplied(index, FOLLOWER_READ_MAX_WAIT_MS);
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: the replica on ${cfg.node} did not apply up to the leader's read index ${index} within ${FOLLOWER_READ_MAX_WAIT_MS} ms (it is at ${store.appliedIndex}); ask the leader`);
  }
}

function reshardStatus(cfg: ReplicaConfig, state: ReplicaState): ReshardStatus {
  const { store } = state.res;
  return {
    state: store.reshard,
    appliedIndex: store.appliedIndex,
    servingEpoch: store.servingEpoch,
    node: cfg.node,
    count: store.count(),
    ...(state.imported ? { imported: state.imported } : {}),
  };
}

/** Adds one import to the replica's tally (a new tally for a newer reshard). */
function countImport(state: ReplicaState, source: number, epoch: number, bytes: number, points: number): void {
  if (state.imported === null || state.imported.epoch !== epoch) state.imported = { epoch, run: randomBytes(4).toString('hex'), bySource: {} };
  const t = (state.imported.bySource[source] ??= { bytes: 0, points: 0 });
  t.bytes += bytes;
  t.points += points;
}

/** A read made with a map this shard does not serve (after its barrier: what it has applied covers every switch the router can know of). */
function checkEpoch(cfg: ReplicaConfig, store: ShardStore, mapEpoch: number | undefined): void {
  const asked = mapEpoch ?? 0;
  const serving = store.servingEpoch;
  if (serving !== asked) throw new StaleMapError(`shard ${cfg.collection}/${cfg.shard} serves map epoch ${serving ?? 'none (a reshard dropped it)'}, not ${asked}`);
}

/** Starts the reshard importer on a leader whose shard a reshard fills, unless it runs. */
function startImporter(cfg: ReplicaConfig, state: ReplicaState): void {
  const { store, group } = state.res;
  const st = store.reshard;
  if (state.importing || state.stopped || !cfg.sharding || st === null || st.next === null || st.switched) return;
  state.importing = true;
  const leading = () => !state.stopped && state.role.role === 'leader' && state.role.ready;
  void runImporter({
    shard: cfg.shard,
    dim: cfg.dim,
    sharding: cfg.sharding,
    state: () => store.reshard,
    leading,
    pull: (source, pull) => cfg.requester.request<PullAnswer<Uint8Array>>(leaderSubject(cfg.subjects, cfg.uid, source), { type: 'pull', pull }, { timeoutMs: 10_000 }),
    propose: async (data) => (await group.propose(data, { concern: 'majority', timeoutMs: 10_000 })).result,
    rate: () => cfg.importRate?.() ?? 0,
    counted: (source, epoch, bytes, points) => countImport(state, source, epoch, bytes, points),
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    log: state.log,
  })
    .catch((err: unknown) => state.log.warn('reshard importer stopped', { shard: `${cfg.collection}/${cfg.shard}`, error: describeError(err) }))
    .finally(() => {
      state.importing = false;
    });
}

function writeResult(cfg: ReplicaConfig, req: Extract<ShardRequest, { type: 'write' }>, result: unknown): WriteResult {
  // Write concern `leader` answers before apply, so the counts are of what was asked
  // (for a delete, which of the ids existed is not known yet).
  if (req.concern === 'leader' || result === undefined) {
    return req.write.op === 'upsert' ? { upserted: req.write.points.length } : { deleted: req.write.ids.length };
  }
  const r = result as Record<string, unknown>;
  if (typeof r['upserted'] === 'number') return { upserted: r['upserted'] };
  if (typeof r['deleted'] === 'number') return { deleted: r['deleted'] };
  if (r['rejected']) throw new InvalidArgumentError(String((r['rejected'] as { message?: unknown }).message ?? 'rejected by the shard'));
  const refused = r['refused'] as { code?: string; message?: string } | undefined;
  if (refused) {
    const msg = `shard ${cfg.collection}/${cfg.shard}: ${String(refused.message)}`;
    if (refused.code === 'STALE_MAP') throw new StaleMapError(msg);
    if (refused.code === 'MOVING') throw new MovingError(msg);
    throw new InternalError(msg);
  }
  if (r['skipped']) throw new UnavailableError(`shard ${cfg.collection}/${cfg.shard}: the entry was applied before this replica's answer was ready; retry`);
  throw new InternalError(`shard ${cfg.collection}/${cfg.shard}: unexpected apply result ${JSON.stringify(r)}`);
}
