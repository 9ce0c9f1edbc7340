/**
 * A node's Prometheus metrics (DESIGN.md, Observability): Raft term, commit and apply index,
 * leadership and replication lag per group; points per shard; what the node hosts. Router
 * metrics (requests and latency by op, fan-out, merge time) are recorded by the router through
 * {@link RouterMetrics}.
 */
import type { MetricsRegistry } from '../../runtime/metrics.js';
import type { RunningNode } from './node.js';
import type { RaftHost } from '../../replication/raft-host.js';

export interface RouterMetrics {
  request(op: string, ms: number, code: string): void;
  fanout(shards: number): void;
  merge(ms: number): void;
}

export function routerMetrics(m: MetricsRegistry): RouterMetrics {
  const requests = m.counter('shoal_requests_total', 'Public API requests answered by this node\'s router, by operation and result code.');
  const latency = m.histogram('shoal_request_duration_ms', 'Time from a request\'s arrival at the router to its answer, by operation.');
  const fanout = m.histogram('shoal_search_fanout_shards', 'Shards one search request was sent to.', [1, 2, 4, 8, 16, 32, 64, 128, 256]);
  const merge = m.histogram('shoal_search_merge_ms', 'Time to merge the shards\' hits of one search.', [0.01, 0.05, 0.1, 0.5, 1, 5, 10]);
  return {
    request: (op, ms, code) => {
      requests.inc({ op, code });
      latency.observe({ op }, ms);
    },
    fanout: (n) => fanout.observe({}, n),
    merge: (ms) => merge.observe({}, ms),
  };
}

export interface NodeMetricSources {
  raft: RaftHost;
  node: RunningNode;
  /** Points per group (shard state machine counts). */
  points?: () => [string, number][];
  /** Leadership changes seen per group. */
  leaderChanges?: () => [string, number][];
}

export function registerNodeMetrics(m: MetricsRegistry, src: NodeMetricSources): void {
  const perGroup = (pick: (s: ReturnType<RaftHost['status']>) => number): (() => [Record<string, string>, number][]) => () =>
    src.raft.groupIds().flatMap((g) => {
      try {
        return [[{ group: g }, pick(src.raft.status(g))] as [Record<string, string>, number]];
      } catch {
        return [];
      }
    });
  m.gauge('shoal_raft_term', 'Current Raft term, per group.', perGroup((s) => s.term));
  m.gauge('shoal_raft_commit_index', 'Raft commit index, per group.', perGroup((s) => s.commitIndex));
  m.gauge('shoal_raft_applied_index', 'Index applied to the state machine, per group.', perGroup((s) => s.appliedIndex));
  m.gauge('shoal_raft_is_leader', '1 when this node leads the group.', perGroup((s) => (s.role === 'leader' ? 1 : 0)));
  m.gauge('shoal_raft_replication_lag_entries', 'On the leader: entries each follower is behind the commit index.', () =>
    src.raft.groupIds().flatMap((g) => {
      const s = src.raft.status(g);
      if (s.role !== 'leader') return [];
      return s.progress.filter((p) => p.node !== src.raft.nodeId).map((p) => [{ group: g, peer: p.node }, Math.max(0, s.commitIndex - p.matchIndex)] as [Record<string, string>, number]);
    }),
  );
  if (src.leaderChanges) m.gauge('shoal_raft_leader_changes', 'Leadership changes seen by this replica since it started, per group.', () => (src.leaderChanges?.() ?? []).map(([g, n]) => [{ group: g }, n]));
  if (src.points) m.gauge('shoal_shard_points', 'Points in each shard replica on this node.', () => (src.points?.() ?? []).map(([g, n]) => [{ group: g }, n]));
  m.gauge('shoal_node_replicas', 'Replicas hosted by this node.', () => [[{}, src.node.hosting().replicas]]);
  m.gauge('shoal_snapshot_received_bytes', 'Snapshot bytes this node received since it started (replicas copied here by moves, followers caught up by snapshot).', () => [
    [{}, src.raft.groupIds().reduce((n, g) => n + src.raft.snapshotBytesReceived(g), 0)],
  ]);
  const coord = (pick: (s: NonNullable<ReturnType<RunningNode['coordinatorStats']>>) => number): (() => [Record<string, string>, number][]) => () => {
    const st = src.node.coordinatorStats();
    return st ? [[{}, pick(st)]] : [];
  };
  m.gauge('shoal_coordinator_active', '1 on the node whose coordinator is the active one, 0 on the others.', () => [[{}, src.node.coordinatorStats() ? 1 : 0]]);
  m.gauge('shoal_rebalance_moves_in_flight', 'Moves running now (reported by the active coordinator only).', coord((s) => s.movesInFlight));
  m.gauge('shoal_rebalance_moves_pending', 'Moves planned but waiting for a free slot (active coordinator only).', coord((s) => s.pending));
  m.gauge('shoal_rebalance_moves_done', 'Moves completed since the cluster was created (active coordinator only).', coord((s) => s.done));
  m.gauge('shoal_rebalance_moves_failed', 'Moves given up (no target fits) since the cluster was created (active coordinator only).', coord((s) => s.failed));
  m.gauge('shoal_rebalance_under_replicated_shards', 'Shards with a replica on a node that is not up, or fewer voters than their collection\'s replicas (active coordinator only).', coord((s) => s.underReplicated));
  m.gauge('shoal_node_leaders', 'Replicas on this node that lead their shard.', () => [[{}, src.node.hosting().leaders]]);
}
