/**
 * The replica manager of a node: it follows the collections in the metadata bucket and keeps one
 * replica actor running for every shard whose placement names this node — starting those that
 * appear, stopping (and deleting the data of) those that go, whether by a drop or a move.
 */
import type { CollectionRecord, MetadataEvent } from '../../cluster/metadata.js';
import type { RoleChange } from '../../replication/raft-state-machine.js';
import type { ActorRef, Behavior } from '../../runtime/actor.js';
import { describeError } from '../../runtime/errors.js';
import type { Subjects } from '../../runtime/subjects.js';
import type { Requester } from '../router/shard-client.js';
import { leaderAnnounceSubject, replicaActorName } from '../shard-protocol.js';
import { replicaBehavior, type ReplicaResources } from './replica-actor.js';

/** Opens the resources of one replica; `destroy` deletes a replica's data for good. */
export interface ReplicaFactory {
  open(record: CollectionRecord, shard: number, onRole: (ev: RoleChange) => void): Promise<ReplicaResources>;
  destroy(record: CollectionRecord, shard: number): Promise<void>;
}

export interface ReplicaManagerDeps {
  node: string;
  subjects: Subjects;
  /** Replicas ask their shard's leader subject through it (a follower's read index). */
  requester: Requester;
  factory: ReplicaFactory;
  /** Publishes a message on a subject, fire and forget (a new leader's announcement). */
  publish(subject: string, msg: unknown): void;
}

export type ReplicaManagerMsg = { type: 'meta'; ev: MetadataEvent } | { type: 'role'; key: string; ev: RoleChange };

interface Hosted {
  record: CollectionRecord;
  shard: number;
  ref: ActorRef<unknown>;
  leading: boolean;
}

export interface ReplicaManagerState {
  /** uid/shard -> the replica hosted here. */
  hosted: Map<string, Hosted>;
  /** collection name -> its current record. */
  records: Map<string, CollectionRecord>;
}

/** What this node hosts, for its heartbeat. */
export function hostingOf(state: ReplicaManagerState | undefined): { replicas: number; leaders: number } {
  if (!state) return { replicas: 0, leaders: 0 };
  let leaders = 0;
  for (const h of state.hosted.values()) if (h.leading) leaders++;
  return { replicas: state.hosted.size, leaders };
}

/** The shards of `record` whose placement names `node`. */
export function shardsPlacedOn(record: CollectionRecord, node: string): number[] {
  return record.placement.filter((p) => p.replicas.includes(node)).map((p) => p.shard);
}

export function replicaManagerBehavior(deps: ReplicaManagerDeps, expose: (s: ReplicaManagerState) => void): Behavior<ReplicaManagerState, ReplicaManagerMsg> {
  return {
    init() {
      const state: ReplicaManagerState = { hosted: new Map(), records: new Map() };
      expose(state);
      return state;
    },
    async receive(state, msg, ctx) {
      if (msg.type === 'role') {
        const h = state.hosted.get(msg.key);
        if (h) h.leading = msg.ev.role === 'leader' && msg.ev.ready;
        return state;
      }
      const ev = msg.ev;
      if (ev.kind !== 'collection') return state;
      if (ev.record) state.records.set(ev.name, ev.record);
      else state.records.delete(ev.name);

      const wanted = new Set<string>();
      for (const r of state.records.values()) {
        for (const shard of shardsPlacedOn(r, deps.node)) wanted.add(`${r.uid}/${shard}`);
      }
      // stop what is no longer placed here (dropped collections, moved shards), and delete its data
      for (const [key, h] of state.hosted) {
        if (wanted.has(key)) continue;
        state.hosted.delete(key);
        await ctx.stopChild(h.ref);
        try {
          await deps.factory.destroy(h.record, h.shard);
          ctx.log.info('replica removed', { collection: h.record.name, shard: h.shard });
        } catch (err) {
          ctx.log.error('could not delete a removed replica\'s data', { collection: h.record.name, shard: h.shard, error: describeError(err) });
        }
      }
      // start what is newly placed here
      for (const r of state.records.values()) {
        for (const p of r.placement) {
          const key = `${r.uid}/${p.shard}`;
          if (!p.replicas.includes(deps.node) || state.hosted.has(key)) continue;
          const post = ctx.poster();
          const ref = ctx.spawn(replicaActorName(r.uid, p.shard), replicaBehavior({
            node: deps.node,
            uid: r.uid,
            shard: p.shard,
            collection: r.name,
            dim: r.dim,
            metric: r.metric,
            hnsw: r.hnsw,
            subjects: deps.subjects,
            requester: deps.requester,
            preferredLeader: p.replicas[0] ?? deps.node,
            open: () => deps.factory.open(r, p.shard, (roleEv) => post({ type: 'role', key, ev: roleEv })),
            announce: (a) => deps.publish(leaderAnnounceSubject(deps.subjects, a.uid, a.shard), a),
          }), { mailboxCapacity: 8_192 });
          state.hosted.set(key, { record: r, shard: p.shard, ref, leading: false });
          ctx.log.info('replica started', { collection: r.name, shard: p.shard });
        }
      }
      return state;
    },
  };
}
