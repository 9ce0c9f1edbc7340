/**
 * Builds a replica's resources: the shard state machine (points in LMDB, the HNSW index in an
 * index worker) under its Raft group on this node's RaftHost. Resources outlive the replica
 * actor's restarts (an actor that crashes on a bad message should not disturb Raft or reload an
 * index); they are closed when the node stops and destroyed when the replica leaves the node.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Hit } from '../../api/types.js';
import type { CollectionRecord } from '../../cluster/metadata.js';
import { murmur3 } from '../../cluster/hash.js';
import { groupOf, ownerOfFor } from '../../cluster/shard-map.js';
import { newShardState, type ReshardState } from '../../shard/reshard-state.js';
import { IndexHost, parseFilter, type Filter } from '../../index/mod.js';
import type { Logger } from '../../runtime/logger.js';
import { decodeCommand, ShardStateMachine } from '../../shard/mod.js';
import { LmdbRaftLogStore } from '../../storage/lmdb-raft-log-store.js';
import type { NodeEnv } from '../../storage/node-env.js';
import type { RaftHost } from '../../replication/raft-host.js';
import type { AppliedEntry, RoleChange, StateMachine } from '../../replication/raft-state-machine.js';
import type { ReplicaFactory, ReplicaStart } from './replica-manager.js';
import type { ReplicaResources, ReplicatedGroup, ShardStore } from './replica-actor.js';
import { DEFAULT_MAX_PENDING_REQUESTS, RequestBound } from './request-bound.js';

export interface ReplicaFactoryDeps {
  raft: RaftHost;
  env: NodeEnv;
  /** The node's data directory; index checkpoints go under `<dataDir>/shards/<group>`. */
  dataDir: string;
  /** Index worker threads shared by this node's shards (round robin). */
  indexWorkers: number;
  log: Logger;
  /** Client requests the node's replicas work on at once; past it they are refused (request-bound.ts). Default {@link DEFAULT_MAX_PENDING_REQUESTS}. */
  maxPendingRequests?: number;
}

interface Opened {
  sm: ShardStateMachine;
  leaderChanges: number;
  listeners: Set<(ev: RoleChange) => void>;
  unsubscribeRaft: () => void;
}

export interface NodeReplicaFactory extends ReplicaFactory {
  /**
   * Deletes the data of every replica on this node that `wanted` (group ids) does not name: the
   * replicas of collections dropped, or shards moved away, while this node was down. Call at
   * startup, before any replica opens.
   */
  removeStrays(wanted: ReadonlySet<string>): Promise<string[]>;
  /** Groups with Raft state on this node's disk. */
  storedGroups(): Set<string>;
  /** Limits the bytes per second of snapshots this node receives (0: no limit): its share of the cluster's copy rate. */
  setSnapshotRate(bytesPerSec: number): void;
  /** Points per open group, for metrics. */
  pointCounts(): [string, number][];
  /** Leadership changes seen per open group since this process started, for metrics. */
  leaderChanges(): [string, number][];
  /** Index checkpoints recorded per open group since this process started, for metrics. */
  checkpointCounts(): [string, number][];
  /** Closes every replica's resources (node shutdown); Raft state and data stay on disk. */
  closeAll(): Promise<void>;
  /** Index workers, for metrics. */
  readonly indexHosts: readonly IndexHost[];
  readonly requestBound: RequestBound;
}

/** Every replica of a group builds its HNSW graph with the same seed (DESIGN.md, Storage). */
export function indexSeedOf(uid: string, shard: number): number {
  return murmur3(`${uid}/${shard}`);
}

/** A group a running reshard creates starts begun, owning nothing until it switches (docs/resharding.md). */
function initialReshardOf(r: CollectionRecord, group: string): ReshardState | undefined {
  const rs = r.resharding;
  return rs && rs.to.groups.includes(group) && !rs.from.groups.includes(group) ? newShardState(rs.from, rs.to) : undefined;
}

export function createReplicaFactory(deps: ReplicaFactoryDeps): NodeReplicaFactory {
  const hosts = Array.from({ length: Math.max(1, deps.indexWorkers) }, () => IndexHost.start());
  let nextHost = 0;
  const opened = new Map<string, Opened>();
  const opening = new Map<string, Promise<Opened>>();

  const openStateMachine = (r: CollectionRecord, shard: number): Promise<ShardStateMachine> => {
    const group = groupOf(r, shard);
    const host = hosts[nextHost++ % hosts.length] as IndexHost;
    return ShardStateMachine.open({
      env: deps.env,
      group,
      dir: join(deps.dataDir, 'shards', group),
      dim: r.dim,
      metric: r.metric,
      hnsw: r.hnsw,
      seed: indexSeedOf(r.uid, shard),
      host,
      shard,
      ownerOf: ownerOfFor(r.sharding),
      initialReshard: initialReshardOf(r, group),
    });
  };

  const openGroup = async (r: CollectionRecord, shard: number, start: ReplicaStart): Promise<Opened> => {
    const group = groupOf(r, shard);
    const sm = await openStateMachine(r, shard);
    const listeners = new Set<(ev: RoleChange) => void>();
    // With state on disk, the host reopens it and ignores these; without, it bootstraps or joins.
    await deps.raft.createGroup(group, 'join' in start ? { voters: [deps.raft.nodeId], join: true, stateMachine: raftAdapter(sm) } : { voters: start.bootstrap, stateMachine: raftAdapter(sm) });
    let lastLeader: string | null = null;
    const o: Opened = { sm, listeners, leaderChanges: 0, unsubscribeRaft: () => undefined };
    o.unsubscribeRaft = deps.raft.onRoleChange(group, (ev) => {
      if (ev.leader !== lastLeader && ev.leader !== null) o.leaderChanges++;
      lastLeader = ev.leader ?? lastLeader;
      for (const l of listeners) l(ev);
    });
    return o;
  };

  return {
    indexHosts: hosts,
    requestBound: new RequestBound(deps.raft.nodeId, deps.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS),
    pointCounts: () => [...opened].map(([g, o]) => [g, o.sm.count()]),
    leaderChanges: () => [...opened].map(([g, o]) => [g, o.leaderChanges]),
    checkpointCounts: () => [...opened].map(([g, o]) => [g, o.sm.checkpoints]),

    setSnapshotRate: (bps) => deps.raft.setSnapshotRate(bps),
    storedGroups: () => new Set(new LmdbRaftLogStore(deps.env).groups()),

    async open(r, shard, start, onRole) {
      const group = groupOf(r, shard);
      let o = opened.get(group);
      if (!o) {
        let p = opening.get(group);
        if (!p) {
          p = openGroup(r, shard, start).finally(() => opening.delete(group));
          opening.set(group, p);
        }
        o = await p;
        opened.set(group, o);
      }
      const own = o;
      const roleListeners: ((ev: RoleChange) => void)[] = [onRole];
      for (const l of roleListeners) own.listeners.add(l);
      const store: ShardStore = {
        get appliedIndex() {
          return own.sm.appliedIndex;
        },
        count: () => own.sm.count(),
        get servingEpoch() {
          return own.sm.servingEpoch;
        },
        get reshard() {
          return own.sm.reshard;
        },
        pull: (req) => own.sm.pull(req),
        search: (q) => own.sm.search({ ...q, filter: q.filter as Filter | undefined }) as Promise<Hit[]>,
        get: (ids, opts) => own.sm.get(ids, opts),
      };
      const group_: ReplicatedGroup = {
        propose: (data, opts) => deps.raft.propose(group, data, opts),
        transferLeadership: (to) => deps.raft.transferLeadership(group, to),
        changeMembership: (change) => deps.raft.changeMembership(group, change),
        readBarrier: (opts) => deps.raft.readBarrier(group, opts),
        readIndex: (opts) => deps.raft.readIndex(group, opts),
        term: () => deps.raft.termOf(group),
        waitApplied: (index, timeoutMs) => deps.raft.waitApplied(group, index, timeoutMs),
        leaseRead: (timeoutMs) => deps.raft.leaseRead(group, timeoutMs),
        onRoleChange: (listener) => {
          own.listeners.add(listener);
          roleListeners.push(listener);
          // tell the newcomer where things stand now
          listener(deps.raft.roleOf(group));
          return () => own.listeners.delete(listener);
        },
        status: () => {
          const st = deps.raft.status(group);
          return {
            role: st.role,
            term: st.term,
            leader: st.leader,
            commitIndex: st.commitIndex,
            appliedIndex: st.appliedIndex,
            lastIndex: st.lastIndex,
            voters: st.voters,
            learners: st.learners,
            snapshot: st.snapshot ?? null,
            reads: st.reads,
            progress: st.progress.map((p) => ({ node: p.node, matchIndex: p.matchIndex, lastContactMs: p.lastContactMs, role: p.role })),
          };
        },
      };
      const resources: ReplicaResources = {
        store,
        group: group_,
        parseFilter: (f) => parseFilter(f),
        // The actor's incarnation ends; the replica itself lives on.
        close: () => {
          for (const l of roleListeners) own.listeners.delete(l);
          return Promise.resolve();
        },
      };
      return resources;
    },

    async destroy(r, shard) {
      const group = groupOf(r, shard);
      const o = opened.get(group) ?? (await opening.get(group));
      opened.delete(group);
      await deps.raft.removeGroup(group);
      o?.unsubscribeRaft();
      const sm = o?.sm ?? (await openStateMachine(r, shard));
      await sm.drop();
    },

    async removeStrays(wanted) {
      const local = new Set([...new LmdbRaftLogStore(deps.env).groups(), ...ShardStateMachine.groups(deps.env), ...shardDirs(deps.dataDir)]);
      const strays = [...local].filter((g) => !wanted.has(g) && !opened.has(g));
      for (const group of strays) {
        await deps.raft.removeGroup(group);
        await ShardStateMachine.destroy(deps.env, group, join(deps.dataDir, 'shards', group));
        deps.log.warn('removed the data of a replica no collection places here', { group });
      }
      return strays;
    },

    async closeAll() {
      const all = [...opened.values()];
      opened.clear();
      for (const o of all) o.unsubscribeRaft();
      await Promise.all(all.map((o) => o.sm.close()));
      await Promise.all(hosts.map((h) => h.close()));
    },
  };
}

function shardDirs(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, 'shards'));
  } catch {
    return [];
  }
}

/** The Raft host's view of a shard state machine: a `normal` entry's data is a logged command; other entries apply as no-ops. */
function raftAdapter(sm: ShardStateMachine): StateMachine {
  return {
    get appliedIndex() {
      return sm.appliedIndex;
    },
    apply(entries: AppliedEntry[]) {
      return sm.apply(
        entries.map((e) => ({
          index: e.index,
          command: e.type === 'normal' ? decodeCommand(e.data) : { type: 'noop' },
        })),
      );
    },
    snapshot: () => sm.snapshot(),
    restore: (appliedIndex, chunks) => sm.restore(appliedIndex, chunks),
  };
}
