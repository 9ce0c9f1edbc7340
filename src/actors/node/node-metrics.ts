/**
 * A node's Prometheus metrics (DESIGN.md, Observability; every one is listed in docs/metrics.md):
 * Raft term, commit and applied index, leadership, log size and replication lag per group; points
 * and checkpoints per shard; snapshots; what the node hosts, its state and readiness; disk, memory
 * and the write refusals of its resource limits; the coordinator's moves. Router metrics
 * (requests and latency by op, fan-out, merge time) are recorded by the router through
 * {@link RouterMetrics}.
 *
 * Gauges and counters kept elsewhere are read when scraped: nothing here runs on the request path
 * except {@link RouterMetrics}.
 */
import { LATENCY_BUCKETS_SECONDS, type MetricsRegistry, type Sample } from '../../runtime/metrics.js';
import type { RunningNode } from './node.js';
import type { RaftHost } from '../../replication/raft-host.js';
import type { NodeState } from '../../cluster/membership.js';

export interface RouterMetrics {
  /** One request answered: its op, milliseconds from arrival to answer, and its result code (`OK` or an error code). */
  request(op: string, ms: number, code: string): void;
  fanout(shards: number): void;
  /** Milliseconds to merge one search's hits. */
  merge(ms: number): void;
}

export function routerMetrics(m: MetricsRegistry): RouterMetrics {
  const requests = m.counter('shoal_requests_total', 'Public API requests answered by this node\'s router, by operation and result code (OK, or the error code).', ['op', 'code']);
  const latency = m.histogram('shoal_request_duration_seconds', 'Time from a request\'s arrival at the router to its answer, by operation.', ['op'], LATENCY_BUCKETS_SECONDS);
  const fanout = m.histogram('shoal_search_fanout_shards', 'Shards one search request was sent to.', [], [1, 2, 4, 8, 16, 32, 64, 128, 256]);
  const merge = m.histogram('shoal_search_merge_duration_seconds', 'Time to merge the shards\' hits of one search.', [], [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01]);
  return {
    request: (op, ms, code) => {
      requests.inc({ op, code });
      latency.observe({ op }, ms / 1000);
    },
    fanout: (n) => fanout.observe(n),
    merge: (ms) => merge.observe(ms / 1000),
  };
}

/** What the node's resource guard and request bound report (runtime/resource-guard.ts, replica/request-bound.ts). */
export interface ResourceSources {
  sample(): { freeDiskBytes: number; diskBytes: number; memoryBytes: number };
  minFreeDiskBytes: number;
  maxMemoryBytes: number | undefined;
  /** Client requests the node's replicas work on now, and the bound (--max-pending-requests). */
  pending(): number;
  maxPending: number;
  /** Requests refused at the bound since the node started. */
  refusedPending(): number;
}

export interface NodeMetricSources {
  raft: RaftHost;
  node: RunningNode;
  version: string;
  /** Points per group (shard state machine counts). */
  points: () => [string, number][];
  /** Leadership changes seen per group since the process started. */
  leaderChanges: () => [string, number][];
  /** Index checkpoints recorded per group since the process started. */
  checkpoints: () => [string, number][];
  /** Change-stream outbox records per group of a collection with a change stream (docs/changes.md). */
  changeOutbox?: () => [string, number][];
  /** Change-stream messages JetStream stored as new, per such group, published from this node since it started. */
  changesPublished?: () => [string, number][];
  resources?: ResourceSources;
  /** Bytes the node's LMDB environment takes on disk. */
  storageBytes?: () => number;
  /** Shard searches the node's index workers answered since the process started, by the plan their index chose. */
  searchPlans?: () => [string, number][];
  /** Of those, searches whose `hnsw-postfilter` attempt found too few matches and planned again. */
  postfilterFallbacks?: () => number;
}

/** Searches by plan, summed over a node's index hosts (IndexHost.plans). */
export function searchPlanCounts(hosts: readonly { readonly plans: Readonly<Record<string, number>> }[]): [string, number][] {
  const sum = new Map<string, number>();
  for (const h of hosts) for (const [plan, n] of Object.entries(h.plans)) sum.set(plan, (sum.get(plan) ?? 0) + n);
  return [...sum];
}

const NODE_STATES: readonly NodeState[] = ['up', 'down', 'dead', 'maintenance', 'draining'];

export function registerNodeMetrics(m: MetricsRegistry, src: NodeMetricSources): void {
  const { raft, node } = src;
  const perGroup = (pick: (s: ReturnType<RaftHost['status']>) => number): (() => Sample[]) => () =>
    raft.groupIds().flatMap((g) => {
      try {
        return [[{ group: g }, pick(raft.status(g))] as Sample];
      } catch {
        return [];
      }
    });
  const byGroup = (read: () => [string, number][]) => (): Sample[] => read().map(([g, n]) => [{ group: g }, n]);
  const one = (v: number): Sample[] => [[{}, v]];

  // Raft, per group (`group` is `<collection uid>-<shard>`; shoal_shard_info names its collection)
  m.gauge('shoal_raft_term', 'Current Raft term, per group.', ['group'], perGroup((s) => s.term));
  m.gauge('shoal_raft_commit_index', 'Raft commit index, per group.', ['group'], perGroup((s) => s.commitIndex));
  m.gauge('shoal_raft_applied_index', 'Index applied to the state machine, per group.', ['group'], perGroup((s) => s.appliedIndex));
  m.gauge('shoal_raft_is_leader', '1 when this node\'s replica leads the group, else 0.', ['group'], perGroup((s) => (s.role === 'leader' ? 1 : 0)));
  m.gauge('shoal_raft_log_entries', 'Entries in the group\'s Raft log on this node (from the first kept after compaction to the last).', ['group'], perGroup((s) => Math.max(0, s.lastIndex - s.firstIndex + 1)));
  m.gauge('shoal_raft_replication_lag_entries', 'On the leader: entries each follower (peer) is behind the commit index.', ['group', 'peer'], () =>
    raft.groupIds().flatMap((g) => {
      const s = raft.status(g);
      if (s.role !== 'leader') return [];
      return s.progress.filter((p) => p.node !== raft.nodeId).map((p) => [{ group: g, peer: p.node }, Math.max(0, s.commitIndex - p.matchIndex)] as Sample);
    }),
  );
  m.counterFrom('shoal_raft_leader_changes_total', 'Leadership changes this replica saw since the process started, per group.', ['group'], byGroup(src.leaderChanges));
  m.counterFrom('shoal_raft_snapshots_sent_total', 'Snapshots this node streamed whole to a follower since it started.', [], () => one(raft.snapshotStats().sent));
  m.counterFrom('shoal_raft_snapshots_received_total', 'Snapshots this node received whole and installed since it started.', [], () => one(raft.snapshotStats().received));
  m.counterFrom('shoal_raft_snapshots_failed_total', 'Snapshot streams that failed, sending or receiving, since the node started.', [], () => one(raft.snapshotStats().failed));
  m.counterFrom('shoal_raft_frames_sent_total', 'Frames of Raft messages this node sent to peer nodes since it started: as requests of their own (each answered by a reply), riding on replies to a peer\'s request, or published with no reply wanted.', ['kind'], () => {
    const t = raft.transportStats();
    return [[{ kind: 'request' }, t.requests], [{ kind: 'reply' }, t.replies], [{ kind: 'publish' }, t.publishes]];
  });
  m.counterFrom('shoal_raft_read_rounds_total', 'Heartbeat rounds this node started as leader to confirm read indexes (strong reads, leased reads out of lease), since the node started, over every group it hosts or hosted.', [], () => one(raft.readCounters().rounds));
  m.counterFrom('shoal_raft_probes_total', 'Times this node, as leader, stopped pipelining appends to a follower and probed it again (a rejected, lost or unacknowledged append, a follower that lost entries or could not be reached), since the node started, over every group it hosts or hosted; each resends from the follower\'s match.', [], () => one(raft.probes()));
  m.counterFrom('shoal_raft_read_requests_total', 'Read-index requests this node sent as follower to its groups\' leaders, since the node started, over every group it hosts or hosted (each carries every read waiting for one).', [], () => one(raft.readCounters().requests));
  m.counterFrom('shoal_raft_snapshot_received_bytes_total', 'Snapshot bytes this node received since it started (replicas copied here by moves, followers caught up by snapshot).', [], () => one(raft.snapshotStats().bytesReceived));

  // shards
  m.gauge('shoal_shard_info', 'Always 1: the collection and shard number of each group this node hosts (join on group).', ['group', 'collection', 'shard'], () =>
    (node.replicas() ?? []).filter((r) => r.collection !== '').map((r) => [{ group: r.group, collection: r.collection, shard: String(r.shard) }, 1]),
  );
  m.gauge('shoal_shard_points', 'Points in each shard replica on this node.', ['group'], byGroup(src.points));
  if (src.searchPlans) {
    const plans = src.searchPlans;
    m.counterFrom('shoal_search_plans_total', 'Shard searches this node\'s index workers answered since the process started, by the plan the shard\'s index chose (exact, hnsw, hnsw-postfilter, hnsw-filtered).', ['plan'], () => plans().map(([plan, n]) => [{ plan }, n]));
  }
  if (src.postfilterFallbacks) {
    const fallbacks = src.postfilterFallbacks;
    m.counterFrom('shoal_search_postfilter_fallbacks_total', 'Shard searches that tried the hnsw-postfilter plan, found fewer than k matches among its candidates and planned again (counted in shoal_search_plans_total under the plan they answered with).', [], () => one(fallbacks()));
  }
  m.counterFrom('shoal_shard_checkpoints_total', 'Index checkpoints each shard replica recorded since the process started.', ['group'], byGroup(src.checkpoints));

  // change streams (docs/changes.md), per group of a collection with one
  if (src.changeOutbox) m.gauge('shoal_changes_outbox_entries', 'Change-stream outbox records of each shard replica not yet published and pruned (grows while its leader cannot reach JetStream).', ['group'], byGroup(src.changeOutbox));
  if (src.changesPublished) m.counterFrom('shoal_changes_published_total', 'Change-stream messages this node published as leader that JetStream stored as new (duplicates not counted), since the process started, per group.', ['group'], byGroup(src.changesPublished));

  // the node
  m.gauge('shoal_build_info', 'Always 1: the Shoal version this node runs.', ['version'], () => [[{ version: src.version }, 1]]);
  m.gauge('shoal_node_state', '1 for the node\'s state as its own membership view holds it, 0 for the others.', ['state'], () => {
    const now = node.state();
    return NODE_STATES.map((s) => [{ state: s }, s === now ? 1 : 0]);
  });
  m.gauge('shoal_node_ready', '1 while /readyz answers 200 (connected to NATS, every replica loaded and caught up), else 0.', [], async () => one((await node.readiness.check()).ready ? 1 : 0));
  m.gauge('shoal_nats_connected', '1 while the node\'s NATS connection is up, else 0.', [], () => one(node.natsConnected() ? 1 : 0));
  m.gauge('shoal_node_replicas', 'Replicas hosted by this node.', [], () => one(node.hosting().replicas));
  m.gauge('shoal_node_leaders', 'Replicas on this node that lead their shard.', [], () => one(node.hosting().leaders));
  if (src.storageBytes) {
    const bytes = src.storageBytes;
    m.gauge('shoal_storage_lmdb_bytes', 'Bytes the node\'s LMDB environment (Raft logs, points, dedup table) takes on disk.', [], () => one(bytes()));
  }

  // resource limits (docs/operations.md, Resource limits)
  const res = src.resources;
  if (res) {
    m.gauge('shoal_disk_free_bytes', 'Free bytes an unprivileged process may still write on the data directory\'s filesystem (sampled every 250 ms).', [], () => one(res.sample().freeDiskBytes));
    m.gauge('shoal_disk_size_bytes', 'Size of the data directory\'s filesystem.', [], () => one(res.sample().diskBytes));
    m.gauge('shoal_disk_min_free_bytes', 'Free bytes kept (--min-free-disk): at or below them writes are refused.', [], () => one(res.minFreeDiskBytes));
    m.gauge('shoal_memory_bytes', 'The process\'s memory as its limit counts it (anonymous resident memory on Linux).', [], () => one(res.sample().memoryBytes));
    if (res.maxMemoryBytes !== undefined) {
      const max = res.maxMemoryBytes;
      m.gauge('shoal_memory_limit_bytes', 'The memory limit (--max-memory); writes are refused from 90% of it.', [], () => one(max));
    }
    m.counterFrom('shoal_writes_refused_total', 'Writes refused by a resource limit since the node started, by limit (min_free_disk, max_memory).', ['limit'], () => {
      const counts = new Map<string, number>([['min_free_disk', 0], ['max_memory', 0]]);
      for (const [limit, n] of raft.writesRefused()) counts.set(limit, (counts.get(limit) ?? 0) + n);
      return [...counts].map(([limit, n]) => [{ limit }, n]);
    });
    m.gauge('shoal_pending_requests', 'Client requests this node\'s replicas work on now (writes waiting to commit, searches and applies in the index worker\'s queue).', [], () => one(res.pending()));
    m.gauge('shoal_pending_requests_limit', 'The bound on them (--max-pending-requests).', [], () => one(res.maxPending));
    m.counterFrom('shoal_requests_refused_total', 'Client requests refused at once since the node started, by limit (max_pending_requests).', ['limit'], () => [[{ limit: 'max_pending_requests' }, res.refusedPending()]]);
  }

  // the coordinator (reported by the active one only, except shoal_coordinator_active)
  const coord = (pick: (s: NonNullable<ReturnType<RunningNode['coordinatorStats']>>) => number) => (): Sample[] => {
    const st = node.coordinatorStats();
    return st ? one(pick(st)) : [];
  };
  m.gauge('shoal_coordinator_active', '1 on the node whose coordinator is the active one, 0 on the others.', [], () => one(node.coordinatorStats() ? 1 : 0));
  m.gauge('shoal_rebalance_moves_in_flight', 'Moves running now (active coordinator only).', [], coord((s) => s.movesInFlight));
  m.gauge('shoal_rebalance_moves_pending', 'Moves planned but waiting for a free slot (active coordinator only).', [], coord((s) => s.pending));
  m.counterFrom('shoal_rebalance_moves_completed_total', 'Moves completed since the cluster was created (active coordinator only).', [], coord((s) => s.done));
  m.counterFrom('shoal_rebalance_moves_failed_total', 'Moves given up (no target fits) since the cluster was created (active coordinator only).', [], coord((s) => s.failed));
  const perMove = (pick: (mv: NonNullable<ReturnType<RunningNode['coordinatorStats']>>['moves'][number]) => number) => (): Sample[] =>
    (node.coordinatorStats()?.moves ?? []).map((mv) => [{ move: mv.id, collection: mv.collection, shard: String(mv.shard) }, pick(mv)]);
  m.gauge('shoal_rebalance_move_last_progress_timestamp_seconds', 'Per move in flight (reshard pairs included): Unix time at which its phase, target or bytes copied last changed (active coordinator only).', ['move', 'collection', 'shard'], perMove((mv) => mv.lastProgressMs / 1000));
  m.gauge('shoal_rebalance_move_copied_bytes', 'Per move in flight (reshard pairs included): bytes its copy has moved so far (active coordinator only).', ['move', 'collection', 'shard'], perMove((mv) => mv.bytesCopied));
  m.gauge('shoal_rebalance_under_replicated_shards', 'Shards with a replica on a node that is not up, or fewer voters than their collection\'s replicas (active coordinator only).', [], coord((s) => s.underReplicated));
}
