/**
 * The replica manager of a node: it keeps one replica actor running for every shard this node
 * is a member of, reconciling against the shards' Raft configurations, not against the placement
 * in the metadata bucket (which is the coordinator's goal):
 *
 * - it starts a replica for a shard whose placement names this node, that a move targets here,
 *   or that has Raft state on this node's disk. With no state, a node named in the shard's
 *   bootstrap voters writes the group's first configuration; any other node starts empty and
 *   joins: the leader adds it as a learner and sends it a snapshot;
 * - it deletes a replica's data only once the shard's leader says its committed configuration no
 *   longer holds this node (checked when the placement stops naming it, every
 *   {@link COLLECT_EVERY_MS}, and when the coordinator's cleanup asks), or when the collection
 *   is dropped.
 */
import type { CollectionRecord, MetadataEvent, MoveRecord } from '../../cluster/metadata.js';
import { bootstrapVoters } from '../../cluster/placement.js';
import { groupOf, initialGroupId } from '../../cluster/shard-map.js';
import type { RoleChange } from '../../replication/raft-state-machine.js';
import type { ActorContext, ActorRef, Behavior } from '../../runtime/actor.js';
import { describeError } from '../../runtime/errors.js';
import type { Subjects } from '../../runtime/subjects.js';
import type { Requester } from '../router/shard-client.js';
import { leaderAnnounceSubject, leaderSubject, replicaActorName, type ShardStatus } from '../shard-protocol.js';
import type { BackupStore } from '../../cluster/backup-store.js';
import { replicaBehavior, type ReplicaResources } from './replica-actor.js';
import type { RequestBound } from './request-bound.js';

/** How a replica with no state on this node starts: bootstrapping the group's first configuration, or joining it empty. */
export type ReplicaStart = { bootstrap: string[] } | { join: true };

/** Opens the resources of one replica; `destroy` deletes a replica's data for good. */
export interface ReplicaFactory {
  open(record: CollectionRecord, shard: number, start: ReplicaStart, onRole: (ev: RoleChange) => void): Promise<ReplicaResources>;
  destroy(record: CollectionRecord, shard: number): Promise<void>;
  /** The node's bound on client requests in flight, shared by its replicas (absent: unbounded). */
  readonly requestBound?: RequestBound;
}

export interface ReplicaManagerDeps {
  node: string;
  subjects: Subjects;
  /** Replicas ask their shard's leader subject through it (a follower's read index, the collector's check). */
  requester: Requester;
  factory: ReplicaFactory;
  /** Groups with Raft state on this node's disk when it started. */
  stored: ReadonlySet<string>;
  /** Publishes a message on a subject, fire and forget (a new leader's announcement). */
  publish(subject: string, msg: unknown): void;
  /** The latest coordinator lease epoch this node knows of. */
  coordinatorEpoch(): number;
  /** The bytes per second shard `shard` of collection `uid` may import at now, as a reshard target (copy-rates.ts; 0: unlimited). */
  importRate?(uid: string, shard: number): number;
  /** The backups object store, opened on first use (backup-requests.ts). */
  backups?: () => Promise<BackupStore>;
}

/** How often replicas that nothing places here are checked against their shard's configuration. */
export const COLLECT_EVERY_MS = 10_000;
const COLLECT_ASK_MS = 2_000;

export type ReplicaManagerMsg =
  | { type: 'meta'; ev: MetadataEvent }
  | { type: 'role'; key: string; ev: RoleChange }
  | { type: 'collect-all' }
  | { type: 'reconcile' }
  /** From the coordinator's cleanup: delete this node's replica of the shard if its configuration no longer holds it. Answered `{removed, hosted}`. */
  | { type: 'collect'; uid: string; shard: number };

interface Hosted {
  record: CollectionRecord;
  shard: number;
  ref: ActorRef<unknown>;
  leading: boolean;
}

export interface ReplicaManagerState {
  /** group id -> the replica hosted here. */
  hosted: Map<string, Hosted>;
  /** collection name -> its current record. */
  records: Map<string, CollectionRecord>;
  /** move id -> the move, for the moves that target this node. */
  moves: Map<string, MoveRecord>;
  /** Groups with state on disk not yet started (their collection's record not seen yet). */
  stored: Set<string>;
  collecting: Set<string>;
}

/** What this node hosts, for its heartbeat (learners still copying count too). */
export function hostingOf(state: ReplicaManagerState | undefined): { replicas: number; leaders: number } {
  if (!state) return { replicas: 0, leaders: 0 };
  let leaders = 0;
  for (const h of state.hosted.values()) if (h.leading) leaders++;
  return { replicas: state.hosted.size, leaders };
}

export function replicaManagerBehavior(deps: ReplicaManagerDeps, expose: (s: ReplicaManagerState) => void): Behavior<ReplicaManagerState, ReplicaManagerMsg> {
  const movesHere = (state: ReplicaManagerState, uid: string, shard: number): boolean => {
    for (const m of state.moves.values()) if (m.uid === uid && m.shard === shard && m.to === deps.node) return true;
    return false;
  };
  const placedHere = (state: ReplicaManagerState, r: CollectionRecord, shard: number): boolean =>
    (r.placement[shard]?.replicas.includes(deps.node) ?? false) || movesHere(state, r.uid, shard);

  const start = (state: ReplicaManagerState, r: CollectionRecord, shard: number, ctx: ActorContext<ReplicaManagerMsg>): void => {
    const key = groupOf(r, shard);
    const boot = bootstrapVoters(r.placement[shard]);
    const how: ReplicaStart = boot?.includes(deps.node) && !movesHere(state, r.uid, shard) ? { bootstrap: boot } : { join: true };
    const post = ctx.poster();
    const ref = ctx.spawn(replicaActorName(r.uid, shard), replicaBehavior({
      node: deps.node,
      uid: r.uid,
      shard,
      collection: r.name,
      dim: r.dim,
      metric: r.metric,
      hnsw: r.hnsw,
      sharding: r.sharding,
      subjects: deps.subjects,
      requester: deps.requester,
      coordinatorEpoch: deps.coordinatorEpoch,
      importRate: () => deps.importRate?.(r.uid, shard) ?? 0,
      open: () => deps.factory.open(r, shard, how, (roleEv) => post({ type: 'role', key, ev: roleEv })),
      announce: (a) => deps.publish(leaderAnnounceSubject(deps.subjects, a.uid, a.shard), a),
      ...(deps.factory.requestBound ? { bound: deps.factory.requestBound } : {}),
      ...(deps.backups ? { backups: deps.backups } : {}),
    }), { mailboxCapacity: 8_192 });
    state.hosted.set(key, { record: r, shard, ref, leading: false });
    state.stored.delete(key);
    ctx.log.info('replica started', { collection: r.name, shard, ...('join' in how ? { joining: true } : {}) });
  };

  const remove = async (state: ReplicaManagerState, key: string, why: string, ctx: ActorContext<ReplicaManagerMsg>): Promise<void> => {
    const h = state.hosted.get(key);
    if (!h) return;
    state.hosted.delete(key);
    await ctx.stopChild(h.ref);
    try {
      await deps.factory.destroy(h.record, h.shard);
      ctx.log.info('replica removed', { collection: h.record.name, shard: h.shard, why });
    } catch (err) {
      ctx.log.error('could not delete a removed replica\'s data', { collection: h.record.name, shard: h.shard, error: describeError(err) });
    }
  };

  /** Whether the shard's leader says its committed configuration no longer holds this node (false when unsure). */
  const removedFromGroup = async (h: Hosted): Promise<boolean> => {
    try {
      const st = await deps.requester.request<ShardStatus>(leaderSubject(deps.subjects, h.record.uid, h.shard), { type: 'status' }, { timeoutMs: COLLECT_ASK_MS });
      return st.role === 'leader' && st.node !== deps.node && !st.voters.includes(deps.node) && !st.learners.includes(deps.node);
    } catch {
      return false;
    }
  };

  const collect = async (state: ReplicaManagerState, key: string, ctx: ActorContext<ReplicaManagerMsg>): Promise<boolean> => {
    const h = state.hosted.get(key);
    if (!h || state.collecting.has(key) || placedHere(state, h.record, h.shard)) return false;
    state.collecting.add(key);
    try {
      if (!(await removedFromGroup(h))) return false;
      // still nothing places it here (a move may have targeted this node meanwhile)
      if (state.hosted.get(key) !== h || placedHere(state, h.record, h.shard)) return false;
      await remove(state, key, 'no longer in its shard\'s configuration', ctx);
      return true;
    } finally {
      state.collecting.delete(key);
      // anything that wanted the group back while it was being removed starts it now
      ctx.post({ type: 'reconcile' });
    }
  };

  const reconcile = async (state: ReplicaManagerState, ctx: ActorContext<ReplicaManagerMsg>): Promise<void> => {
    const live = new Map<string, CollectionRecord>();
    for (const r of state.records.values()) live.set(r.uid, r);
    // dropped collections: their replicas go at once
    for (const [key, h] of [...state.hosted]) {
      const r = live.get(h.record.uid);
      if (!r) await remove(state, key, 'collection dropped', ctx);
      // a shard a finished reshard dropped (docs/resharding.md, cleanup): its group is gone for good
      else if (h.shard >= r.placement.length || groupOf(r, h.shard) !== key) await remove(state, key, 'shard dropped by a reshard', ctx);
      else h.record = r;
    }
    for (const r of state.records.values()) {
      for (let shard = 0; shard < r.placement.length; shard++) {
        const key = groupOf(r, shard);
        if (state.hosted.has(key) || state.collecting.has(key)) continue;
        if (placedHere(state, r, shard) || state.stored.has(key)) start(state, r, shard, ctx);
      }
    }
    collectUnplaced(state, ctx);
  };

  /** Replicas nothing places here any more: removed once their shard's leader agrees. */
  const collectUnplaced = (state: ReplicaManagerState, ctx: ActorContext<ReplicaManagerMsg>): void => {
    for (const [key, h] of state.hosted) if (!placedHere(state, h.record, h.shard)) void collect(state, key, ctx).catch(() => undefined);
  };

  return {
    init(ctx) {
      const state: ReplicaManagerState = { hosted: new Map(), records: new Map(), moves: new Map(), stored: new Set(deps.stored), collecting: new Set() };
      expose(state);
      ctx.every('collect', COLLECT_EVERY_MS, { type: 'collect-all' });
      return state;
    },
    async receive(state, msg, ctx) {
      switch (msg.type) {
        case 'role': {
          const h = state.hosted.get(msg.key);
          if (h) h.leading = msg.ev.role === 'leader' && msg.ev.ready;
          return state;
        }
        case 'reconcile':
          await reconcile(state, ctx);
          return state;
        case 'collect-all':
          collectUnplaced(state, ctx);
          return state;
        case 'collect': {
          const reply = ctx.deferReply();
          const record = [...state.records.values()].find((r) => r.uid === String(msg.uid));
          const key = record ? groupOf(record, Number(msg.shard)) : initialGroupId(String(msg.uid), Number(msg.shard));
          collect(state, key, ctx).then(
            (removed) => reply.resolve({ removed, hosted: state.hosted.has(key) }),
            (err: unknown) => reply.reject(err),
          );
          return state;
        }
        case 'meta': {
          const ev = msg.ev;
          if (ev.kind === 'collection') {
            if (ev.record) state.records.set(ev.name, ev.record);
            else state.records.delete(ev.name);
          } else if (ev.kind === 'move') {
            if (ev.record && ev.record.to === deps.node) state.moves.set(ev.id, ev.record);
            else state.moves.delete(ev.id);
          } else {
            return state;
          }
          await reconcile(state, ctx);
          return state;
        }
      }
    },
    kind: 'replica-manager',
    summary: (state) => ({ hosted: state.hosted.size, collections: state.records.size, moves: state.moves.size }),
  };
}
