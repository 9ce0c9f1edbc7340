/**
 * One Shoal node (`shoal node`): one NATS connection and actor system, one LMDB environment,
 * and the actors of a node — membership heartbeats, the replica manager (and through it the
 * replicas placed here), and a router serving the public API in the routers' queue group.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { CollectionCache } from '../../cluster/collection-cache.js';
import { DEFAULT_DOWN_AFTER_MS, DEFAULT_REPLACE_AFTER_MS, MembershipView, type NodeState } from '../../cluster/membership.js';
import { MetadataStore, whenJetStreamAnswers, type RebalanceRecord } from '../../cluster/metadata.js';
import { groupOf } from '../../cluster/shard-map.js';
import { ChangeStreams } from '../../cluster/change-streams.js';
import { Coordinator, DEFAULT_REBALANCE } from '../coordinator/coordinator.js';
import { coordinatorBehavior } from '../coordinator/coordinator-actor.js';
import { CopyRates } from '../coordinator/copy-rates.js';
import type { ActorSystem } from '../../runtime/actor-system.js';
import { MicroService } from '../../runtime/micro-service.js';
import type { MetricsRegistry } from '../../runtime/metrics.js';
import { LeaderWatch } from '../router/leader-watch.js';
import { membershipBehavior } from '../membership/membership-actor.js';
import { routerMetrics } from './node-metrics.js';
import { NodeReadiness, type ExpectedReplica } from './node-readiness.js';
import { leaderSubject, type ShardStatus } from '../shard-protocol.js';
import type { RaftHost } from '../../replication/raft-host.js';
import type { NodeReplicaFactory } from '../replica/replica-factory.js';
import { replicaManagerBehavior, hostingOf, type ReplicaFactory, type ReplicaManagerMsg, type ReplicaManagerState } from '../replica/replica-manager.js';
import { AdminRouter } from '../router/router-admin.js';
import type { BackupStore } from '../../cluster/backup-store.js';
import { BackupsRouter } from '../router/router-backups.js';
import { routerBehavior } from '../router/router-actor.js';
import { DataRouter } from '../router/router-data.js';

export interface NodeParts {
  system: ActorSystem;
  factory: NodeReplicaFactory;
  version: string;
  metrics?: MetricsRegistry;
  /** Replicas of the metadata bucket's stream (3 on a clustered NATS). */
  kvReplicas?: number;
  /** The node's Raft host: readiness reads its replicas' state. */
  raft: RaftHost;
  /** The node's zone label (`--zone`): a shard's replicas go to distinct zones first. */
  zone?: string | null;
  /** A node not heard from for this long is `down` (PROTOCOL.md, node states). Default 5000. */
  downAfterMs?: number;
  /** A node down for longer than this is `dead` and its replicas are rebuilt elsewhere, unless `rebalance.configure` set another value. Default 60000. */
  replaceAfterMs?: number;
  /** The backups object store, opened on first use (docs/backups.md). */
  backups?: () => Promise<BackupStore>;
}

export interface RunningNode {
  readonly id: string;
  readonly membership: MembershipView;
  hosting(): { replicas: number; leaders: number };
  /** The replicas placed here with their collections (hosted, and those on disk still waiting for their collection's record). */
  replicas(): ExpectedReplica[] | undefined;
  /** The node's state as its own membership view holds it (PROTOCOL.md, node states). */
  state(): NodeState;
  /** Whether the node's NATS connection is up (not disconnected, not closed). */
  natsConnected(): boolean;
  /** `/readyz`: connected to NATS, every replica loaded and caught up to its leader. */
  readonly readiness: NodeReadiness;
  /** The coordinator's figures while this node's is the active one; null on standby. */
  coordinatorStats(): ReturnType<Coordinator['stats']>;
  stop(): Promise<void>;
}

export async function runNode(parts: NodeParts): Promise<RunningNode> {
  const { system } = parts;
  const nc: NatsConnection = system.nc;
  const meta = await MetadataStore.openWhenReady(nc, system.subjects.prefix, system.name, { ...(parts.kvReplicas ? { replicas: parts.kvReplicas } : {}), log: system.log, zone: parts.zone ?? null });
  const replaceAfterMs = parts.replaceAfterMs ?? DEFAULT_REPLACE_AFTER_MS;
  const membership = new MembershipView({ downAfterMs: parts.downAfterMs ?? DEFAULT_DOWN_AFTER_MS, replaceAfterMs });
  // Every read of the bucket while starting waits for JetStream as the open did: a bucket just
  // opened can still time out a request (its stream electing a leader), which would end the node.
  const ready = <T>(what: string, fn: () => Promise<T>): Promise<T> => whenJetStreamAnswers(nc, what, system.log, {}, fn);
  for (const n of await ready('list the nodes', () => meta.listNodes())) membership.know(n.id, n);
  const collections = new CollectionCache(meta);
  await ready('watch the collections', () => collections.start());

  // Before any replica opens: delete the replicas of collections dropped while this node was
  // down. Replicas of live collections stay, placed here or not: the replica manager removes one
  // only once its shard's configuration no longer holds this node. Safe against a concurrent
  // create: nothing of a collection created after this snapshot is on this node yet.
  const wanted = new Set<string>();
  for (const { value: r } of await ready('list the collections', () => meta.listCollections())) {
    for (const p of r.placement) wanted.add(groupOf(r, p.shard));
  }
  await parts.factory.removeStrays(wanted);
  const stored = new Set([...parts.factory.storedGroups()].filter((g) => wanted.has(g)));

  const faults = new Set((process.env['SHOAL_FAULTS'] ?? '').split(',').filter(Boolean));
  const coordinator = new Coordinator({ node: system.name, meta, membership, requester: system, subjects: system.subjects, clock: system.clock, log: system.log, replaceAfterMs, faults });
  const rates = new CopyRates(system.name, (bps) => parts.factory.setSnapshotRate(bps));

  let managerState: ReplicaManagerState | undefined;
  const factory = faults.has('shard-internal') ? withShardFault(parts.factory) : parts.factory;
  const manager = system.spawn<ReplicaManagerState, ReplicaManagerMsg>(
    'replicas',
    replicaManagerBehavior(
      { node: system.name, subjects: system.subjects, requester: system, factory, stored, publish: (subject, msg) => system.publish(subject, msg), coordinatorEpoch: () => coordinator.lease.knownEpoch, ...(parts.backups ? { backups: parts.backups } : {}), importRate: (uid, shard) => rates.importRate(uid, shard) },
      (s) => (managerState = s),
    ),
    { mailboxCapacity: 65_536 },
  );
  const stopWatch = await ready('watch the metadata', () => meta.watch((ev) => {
    if (ev.kind === 'node') membership.know(ev.id, ev.record, system.clock.now());
    if (ev.kind === 'control' && ev.key === 'rebalance') {
      const r = ev.value as RebalanceRecord | null;
      membership.setReplaceAfterMs(r?.replaceAfterMs ?? replaceAfterMs);
      rates.configure(r?.maxBytesPerSec ?? DEFAULT_REBALANCE.maxBytesPerSec);
    }
    if (ev.kind === 'control' && ev.key === 'coordinator') coordinator.lease.knownEpoch = Math.max(coordinator.lease.knownEpoch, (ev.value as { epoch?: number } | null)?.epoch ?? 0);
    if (ev.kind === 'move') rates.move(ev.id, ev.record);
    if (ev.kind === 'collection') rates.collection(ev.name, ev.record);
    system.post(manager, { type: 'meta', ev });
  }));

  system.spawn('membership', membershipBehavior({ system, view: membership, hosting: () => ({ ...hostingOf(managerState), damaged: parts.factory.damaged() }), state: () => (membership.admin(system.name) === 'maintenance' ? 'maintenance' : 'up') }));
  system.spawn('coordinator', coordinatorBehavior(coordinator, system.subjects));

  const service = new MicroService(nc, {
    name: 'shoal',
    version: parts.version,
    description: 'Shoal vector database: the public API of PROTOCOL.md',
    metadata: { node: system.name },
  });
  const requester = system;
  const rm = parts.metrics ? routerMetrics(parts.metrics) : undefined;
  const leaders = new LeaderWatch();
  leaders.start(system.nc, system.subjects, system.log);
  const data = new DataRouter({ requester, maxPayload: () => nc.info?.max_payload ?? 1024 * 1024, servesLocally: (subject) => system.servesLocally(subject), subjects: system.subjects, clock: system.clock, metrics: rm, faults, leaders, refresh: (name) => collections.refresh(name), cachedEpoch: (name) => collections.epochOf(name) });
  const changeStreams = new ChangeStreams(nc, system.subjects, parts.kvReplicas ?? 1);
  const admin = new AdminRouter({ requester, subjects: system.subjects, meta, collections, membership, clock: system.clock, coordinator, changeStreams });
  const backups = parts.backups ? new BackupsRouter({ requester, subjects: system.subjects, meta, collections, membership, clock: system.clock, coordinator, changeStreams, admin, backups: parts.backups, version: parts.version }) : undefined;
  system.spawn('router', routerBehavior({ subjects: system.subjects, data, admin, backups, collections, service, metrics: rm }), { mailboxCapacity: 65_536 });
  await system.flush();

  let connected = !nc.isClosed();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      else if (s.type === 'reconnect') connected = true;
      else if (s.type === 'close') connected = false;
    }
  })().catch(() => undefined);
  const natsConnected = (): boolean => connected && !nc.isClosed();
  const replicas = (): ExpectedReplica[] | undefined => (managerState ? expectedReplicas(managerState) : undefined);
  const readiness = new NodeReadiness({
    node: system.name,
    natsConnected,
    expected: replicas,
    local: (group) => {
      if (!parts.raft.groupIds().includes(group)) return undefined;
      try {
        return parts.raft.status(group);
      } catch {
        return undefined;
      }
    },
    leaderCommit: async (uid, shard, timeoutMs) => {
      const st = await system.request<ShardStatus>(leaderSubject(system.subjects, uid, shard), { type: 'status' }, { timeoutMs });
      return { node: st.node, commitIndex: st.commitIndex };
    },
    now: () => system.clock.now(),
  });

  return {
    id: system.name,
    membership,
    hosting: () => hostingOf(managerState),
    replicas,
    state: () => membership.stateOf(system.name, system.clock.now()),
    natsConnected,
    readiness,
    coordinatorStats: () => coordinator.stats(),
    async stop() {
      await coordinator.stop();
      stopWatch();
      leaders.stop();
      collections.stop();
      service.stop();
      await system.shutdown();
    },
  };
}

/** The replicas a node's manager hosts, and those on disk that wait for their collection's record (group `<uid>-<shard>`). */
function expectedReplicas(state: ReplicaManagerState): ExpectedReplica[] {
  const out: ExpectedReplica[] = [];
  for (const [group, h] of state.hosted) out.push({ group, collection: h.record.name, uid: h.record.uid, shard: h.shard });
  for (const group of state.stored) {
    if (state.hosted.has(group)) continue;
    const cut = group.lastIndexOf('-');
    out.push({ group, collection: '', uid: group.slice(0, cut), shard: Number(group.slice(cut + 1)) });
  }
  return out;
}

/**
 * Fault injection for tests, off unless the node's SHOAL_FAULTS names `shard-internal`: the
 * replicas of shard 0 of a collection named `fault-shard` fail every search as a bug would.
 */
function withShardFault(factory: ReplicaFactory): ReplicaFactory {
  return {
    destroy: (record, shard) => factory.destroy(record, shard),
    async open(record, shard, start, onRole) {
      const res = await factory.open(record, shard, start, onRole);
      if (record.name !== 'fault-shard' || shard !== 0) return res;
      const store = res.store;
      return {
        ...res,
        store: {
          get appliedIndex() {
            return store.appliedIndex;
          },
          get servingEpoch() {
            return store.servingEpoch;
          },
          get reshard() {
            return store.reshard;
          },
          pull: (req) => store.pull(req),
          count: () => store.count(),
          get: (ids, opts) => store.get(ids, opts),
          search: () => Promise.reject(new Error('injected fault (SHOAL_FAULTS=shard-internal)')),
        },
      };
    },
  };
}
