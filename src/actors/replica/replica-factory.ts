/**
 * Builds a replica's resources: the shard state machine (points in LMDB, the HNSW index in an
 * index worker) under its Raft group on this node's RaftHost. Resources outlive the replica
 * actor's restarts (an actor that crashes on a bad message should not disturb Raft or reload an
 * index); they are closed when the node stops and destroyed when the replica leaves the node.
 *
 * Damaged data (docs/operations.md, Corruption): a state machine that finds its stored data
 * damaged, when it opens or later, is rebuilt in place from its peers while its group has
 * another voter: its data is deleted, its Raft state is kept to its term and vote and marked
 * repairing (RaftHost.resetForRepair), and it starts empty, so that its leader sends it a
 * snapshot and the log. Meanwhile it serves no reads and votes for no one. With no other voter
 * (a shard of one replica) nothing is deleted: the replica is `failed`, serves nothing, and says
 * so in its status. Either way the node logs the shard, the file and what was wrong, and the
 * node's other replicas go on serving.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Hit } from '../../api/types.js';
import type { CollectionRecord } from '../../cluster/metadata.js';
import type { DamagedReplica } from '../../cluster/membership.js';
import { murmur3 } from '../../cluster/hash.js';
import { groupOf, ownerOfFor } from '../../cluster/shard-map.js';
import { newShardState, type ReshardState } from '../../shard/reshard-state.js';
import { IndexHost, parseFilter, type Filter } from '../../index/mod.js';
import type { Logger } from '../../runtime/logger.js';
import { CorruptDataError, describeError } from '../../runtime/errors.js';
import { decodeCommand, encodeCommand, ShardStateMachine } from '../../shard/mod.js';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Subjects } from '../../runtime/subjects.js';
import { ChangePublisher, changeIdPrefix } from './change-publisher.js';
import { changeStreamName } from '../../cluster/change-streams.js';
import { LmdbRaftLogStore } from '../../storage/lmdb-raft-log-store.js';
import type { NodeEnv } from '../../storage/node-env.js';
import type { RaftHost } from '../../replication/raft-host.js';
import type { AppliedEntry, RoleChange, StateMachine } from '../../replication/raft-state-machine.js';
import type { ReplicaFactory, ReplicaStart } from './replica-manager.js';
import type { ReplicaResources, ReplicatedGroup, ShardStore } from './replica-actor.js';
import type { ReplicaDamage, ReplicaHealth, ShardPlan } from '../shard-protocol.js';
import { brokenResources, type Broken } from './broken-replica.js';
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
  /** A backup image's bytes by object name (the backups bucket), for `restore` entries; absent: they fail. */
  images?: (object: string) => AsyncIterable<Uint8Array>;
  /** Where leaders publish the change streams of collections that have one (docs/changes.md); without it nothing is published. */
  changes?: { js: JetStreamClient; subjects: Subjects };
}

interface Opened {
  collection: string;
  shard: number;
  /** Replaced when the replica is rebuilt (the store's calls read it each time). */
  sm: ShardStateMachine;
  leaderChanges: number;
  listeners: Set<(ev: RoleChange) => void>;
  unsubscribeRaft: () => void;
  /** The damage found in this replica's data since the node started, or null. */
  damage: ReplicaDamage | null;
  /** A rebuild from the peers under way (deleting and reopening). */
  rebuilding: Promise<void> | null;
  /** Rebuilt, not caught up yet: set at the rebuild, cleared once its log is repaired and it applied its commit index. */
  catchingUp: boolean;
  /** Its data is damaged and no other voter can rebuild it: it serves nothing. */
  failed: boolean;
}

function damageOf(err: CorruptDataError): ReplicaDamage {
  return { file: err.file, problem: err.message, at: new Date().toISOString() };
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
  /** Change-stream outbox records per open group of a collection with a change stream, for metrics. */
  changeOutboxSizes(): [string, number][];
  /** Change-stream messages JetStream stored as new, per such group, published from this node since it started. */
  changesPublished(): [string, number][];
  /** Closes every replica's resources (node shutdown); Raft state and data stay on disk. */
  closeAll(): Promise<void>;
  /** Replicas whose data was found damaged that do not serve (yet), for the node's heartbeat. */
  damaged(): DamagedReplica[];
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
  const opening = new Map<string, Promise<Opened | Broken>>();
  const broken = new Map<string, Broken>();
  const self = deps.raft.nodeId;
  const dirOf = (group: string): string => join(deps.dataDir, 'shards', group);
  /** The change-stream publishers of open groups whose collection has one, and what they published. */
  const publishers = new Map<string, ChangePublisher>();
  const publishedCount = new Map<string, number>();

  const startPublisher = (r: CollectionRecord, shard: number, o: { sm: ShardStateMachine }): void => {
    const group = groupOf(r, shard);
    if (!r.changeStream || !deps.changes || publishers.has(group)) return;
    const { js, subjects } = deps.changes;
    publishedCount.set(group, publishedCount.get(group) ?? 0);
    const p = new ChangePublisher({
      js,
      subject: subjects.changes(r.name),
      stream: changeStreamName(r.name),
      idPrefix: changeIdPrefix(group, shard),
      shard,
      read: (after, limit) => o.sm.changes(after, limit),
      propose: async (upTo) => {
        await deps.raft.propose(group, encodeCommand({ type: 'changes-published', upTo, at: Date.now() }), { concern: 'majority', timeoutMs: 5_000 });
      },
      log: deps.log,
      published: () => publishedCount.set(group, (publishedCount.get(group) ?? 0) + 1),
    });
    publishers.set(group, p);
    const role = deps.raft.roleOf(group);
    p.setLeading(role.role === 'leader' && role.ready);
  };
  const stopPublisher = (group: string): void => {
    publishers.get(group)?.stop();
    publishers.delete(group);
  };

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
      indexes: r.indexes,
      seed: indexSeedOf(r.uid, shard),
      host,
      shard,
      ownerOf: ownerOfFor(r.sharding),
      initialReshard: initialReshardOf(r, group),
      onCorrupt: (err) => rebuild(r, shard, err),
      images: deps.images,
      changeStream: r.changeStream === true,
      onChanges: () => publishers.get(group)?.poke(),
    });
  };

  /** Other voters the group has, as this node knows them (stored or running); null without Raft state. */
  const otherVoters = (group: string): string[] | null => {
    const voters = deps.raft.votersOf(group);
    return voters === undefined ? null : voters.filter((v) => v !== self);
  };

  const logDamage = (r: CollectionRecord, shard: number, err: CorruptDataError, action: string): void => {
    deps.log.error('replica data is damaged', { collection: r.name, shard, group: groupOf(r, shard), file: err.file, problem: err.message, action });
  };

  /** Deletes the state machine's data and opens it empty. */
  const reopenEmpty = async (r: CollectionRecord, shard: number): Promise<ShardStateMachine> => {
    const group = groupOf(r, shard);
    await ShardStateMachine.destroy(deps.env, group, dirOf(group));
    return openStateMachine(r, shard);
  };

  const subscribe = (group: string, o: Opened): void => {
    let lastLeader: string | null = null;
    o.unsubscribeRaft = deps.raft.onRoleChange(group, (ev) => {
      if (ev.leader !== lastLeader && ev.leader !== null) o.leaderChanges++;
      lastLeader = ev.leader ?? lastLeader;
      publishers.get(group)?.setLeading(ev.role === 'leader' && ev.ready);
      for (const l of o.listeners) l(ev);
    });
  };

  const openGroup = async (r: CollectionRecord, shard: number, start: ReplicaStart): Promise<Opened | Broken> => {
    const group = groupOf(r, shard);
    let sm: ShardStateMachine;
    let damage: ReplicaDamage | null = null;
    try {
      sm = await openStateMachine(r, shard);
    } catch (err) {
      if (!(err instanceof CorruptDataError)) throw err;
      damage = damageOf(err);
      const others = otherVoters(group);
      // Without Raft state a replica that joins is copied whole anyway; one that bootstraps has nobody to copy from.
      const rebuildable = others === null ? 'join' in start : others.length > 0;
      if (!rebuildable) {
        const why = `its data is damaged and shard ${r.name}/${shard} has no other replica to rebuild it from; restore it from a backup`;
        logDamage(r, shard, err, 'serving nothing: no other replica to rebuild it from');
        return { collection: r.name, shard, damage, why };
      }
      logDamage(r, shard, err, 'rebuilding it from its peers');
      if (others !== null) await deps.raft.resetForRepair(group);
      sm = await reopenEmpty(r, shard);
    }
    // With state on disk, the host reopens it and ignores these; without, it bootstraps or joins.
    await deps.raft.createGroup(group, 'join' in start ? { voters: [self], join: true, stateMachine: raftAdapter(sm) } : { voters: start.bootstrap, stateMachine: raftAdapter(sm) });
    const o: Opened = { collection: r.name, shard, sm, listeners: new Set(), leaderChanges: 0, unsubscribeRaft: () => undefined, damage, rebuilding: null, catchingUp: damage !== null, failed: false };
    subscribe(group, o);
    startPublisher(r, shard, o);
    return o;
  };

  /**
   * An open replica's state machine found damage: rebuild it in place from its peers (see the
   * file's comment), or, with no other voter, leave it failed (it already serves nothing).
   */
  const rebuild = (r: CollectionRecord, shard: number, err: CorruptDataError): void => {
    const group = groupOf(r, shard);
    const o = opened.get(group);
    if (!o || o.rebuilding) return;
    o.damage = damageOf(err);
    if ((otherVoters(group) ?? []).length === 0) {
      o.failed = true;
      logDamage(r, shard, err, 'serving nothing: no other replica to rebuild it from');
      return;
    }
    logDamage(r, shard, err, 'rebuilding it from its peers');
    o.catchingUp = true;
    o.rebuilding = (async () => {
      // A leader hands over first: the followers of an idle group count no ticks, and would wait
      // for it for good once its group restarts empty.
      if (deps.raft.roleOf(group).role === 'leader') {
        await deps.raft.transferLeadership(group).catch((e: unknown) => deps.log.warn('a damaged replica could not hand its leadership over before its rebuild', { collection: r.name, shard, error: describeError(e) }));
      }
      o.unsubscribeRaft();
      // it restarts as a learner: it publishes again only once it leads again
      publishers.get(group)?.setLeading(false);
      await deps.raft.resetForRepair(group);
      await o.sm.close();
      o.sm = await reopenEmpty(r, shard);
      await deps.raft.createGroup(group, { voters: [self], join: true, stateMachine: raftAdapter(o.sm) });
      subscribe(group, o);
      // the replica's role changed with its new group (it starts as a learner): tell its listeners now
      const role = deps.raft.roleOf(group);
      for (const l of o.listeners) l(role);
    })()
      .catch((e: unknown) => {
        // it serves nothing until the node restarts (and opens it again, finding what is left)
        o.failed = true;
        deps.log.error('could not rebuild a damaged replica; restart the node to try again', { collection: r.name, shard, error: describeError(e) });
      })
      .finally(() => {
        o.rebuilding = null;
      });
  };

  /**
   * Whether a replica serves. One being rebuilt is `repairing` until its Raft log is repaired and
   * its state machine has applied its commit index: until then it may hold only part of what was
   * acknowledged, which even an `eventual` read must not see.
   */
  const healthOf = (group: string, o: Opened): { health: ReplicaHealth; why: string | null; logRepair?: boolean } => {
    if (o.failed) return { health: 'failed', why: `its data is damaged and could not be rebuilt from another replica: ${o.damage?.problem ?? 'unknown damage'}` };
    const why = o.damage ? `rebuilding it: ${o.damage.file} was damaged` : 'its log is being repaired';
    if (o.rebuilding) return { health: 'repairing', why };
    if (deps.raft.isDamaged(group)) return { health: 'repairing', why, logRepair: true };
    if (o.catchingUp) {
      if (o.sm.appliedIndex < deps.raft.inspect(group).log.committed) return { health: 'repairing', why };
      o.catchingUp = false;
      deps.log.info('damaged replica rebuilt', { collection: o.collection, shard: o.shard, appliedIndex: o.sm.appliedIndex });
    }
    return { health: 'ok', why: null };
  };

  return {
    indexHosts: hosts,
    requestBound: new RequestBound(deps.raft.nodeId, deps.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS),
    pointCounts: () => [...opened].map(([g, o]) => [g, o.sm.count()]),
    damaged: () => [
      ...[...opened].flatMap(([g, o]) => {
        if (!o.damage) return [];
        const { health } = healthOf(g, o);
        return health === 'ok' ? [] : [{ collection: o.collection, shard: o.shard, health, ...o.damage }];
      }),
      ...[...broken.values()].map((b) => ({ collection: b.collection, shard: b.shard, health: 'failed' as const, ...b.damage })),
    ],
    leaderChanges: () => [...opened].map(([g, o]) => [g, o.leaderChanges]),
    checkpointCounts: () => [...opened].map(([g, o]) => [g, o.sm.checkpoints]),
    changeOutboxSizes: () => [...opened].filter(([g]) => publishers.has(g)).map(([g, o]) => [g, o.sm.outboxSize()]),
    changesPublished: () => [...publishedCount],

    setSnapshotRate: (bps) => deps.raft.setSnapshotRate(bps),
    storedGroups: () => new Set(new LmdbRaftLogStore(deps.env).groups()),

    async open(r, shard, start, onRole) {
      const group = groupOf(r, shard);
      const b = broken.get(group);
      if (b) return brokenResources(r, shard, self, b);
      let o = opened.get(group);
      if (!o) {
        let p = opening.get(group);
        if (!p) {
          p = openGroup(r, shard, start).finally(() => opening.delete(group));
          opening.set(group, p);
        }
        const got = await p;
        if (!('sm' in got)) {
          broken.set(group, got);
          return brokenResources(r, shard, self, got);
        }
        o = got;
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
        searchExplained: (q) => own.sm.searchExplained({ ...q, filter: q.filter as Filter | undefined }) as Promise<{ hits: Hit[]; explain: ShardPlan }>,
        get: (ids, opts) => own.sm.get(ids, opts),
        snapshot: (opts) => own.sm.snapshot(opts),
        outboxHead: () => own.sm.outboxHead(),
      };
      const group_: ReplicatedGroup = {
        propose: (data, opts) => deps.raft.propose(group, data, opts),
        transferLeadership: (to) => deps.raft.transferLeadership(group, to),
        changeMembership: (change) => deps.raft.changeMembership(group, change),
        readBarrier: (opts) => deps.raft.readBarrier(group, opts),
        readIndex: (opts) => deps.raft.readIndex(group, opts),
        followerReadIndex: (opts) => deps.raft.followerReadIndex(group, opts),
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
        health: () => healthOf(group, own),
        status: () => {
          const st = deps.raft.status(group);
          const { health } = healthOf(group, own);
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
            health,
            damage: own.damage,
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
      const got = opened.get(group) ?? (await opening.get(group)?.catch(() => undefined));
      const o = got && 'sm' in got ? got : undefined;
      opened.delete(group);
      broken.delete(group);
      stopPublisher(group);
      publishedCount.delete(group);
      await o?.rebuilding;
      await deps.raft.removeGroup(group);
      o?.unsubscribeRaft();
      // a replica that is not open (or whose data is damaged) is deleted without loading its index
      if (o) await o.sm.drop();
      else await ShardStateMachine.destroy(deps.env, group, dirOf(group));
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
      for (const g of [...publishers.keys()]) stopPublisher(g);
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
