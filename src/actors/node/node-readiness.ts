/**
 * A node's readiness (`/readyz` on the metrics port, docs/metrics.md): connected to NATS, and
 * every replica placed on the node loaded and caught up to its leader. A replica is caught up
 * once it has applied its leader's commit index less at most {@link READY_MAX_LAG_ENTRIES}
 * entries; a leader is caught up with itself. An orchestrator gates a rolling restart on it: the
 * next node is stopped only once this one's replicas would keep their shards' quorums.
 */

/**
 * A follower is ready once it has applied all but at most this many of its leader's committed
 * entries. Small (an entry is a whole upsert or delete request), yet above what a follower trails
 * by under steady load, so readiness does not flap while writes flow.
 */
export const READY_MAX_LAG_ENTRIES = 32;
/** A leader that does not answer this node's status request within this is taken as unknown (not ready). */
export const READY_LEADER_ASK_MS = 1_000;
/** Probes within this of the last check share its answer (several probes, or a probe and a scrape, at once). */
export const READY_CACHE_MS = 250;

/** A replica this node should serve. */
export interface ExpectedReplica {
  group: string;
  collection: string;
  uid: string;
  shard: number;
}

/** What the node's Raft host says of one of its replicas (a subset of GroupStatus). */
export interface LocalReplicaStatus {
  role: string;
  leader: string | null;
  appliedIndex: number;
  failed: string | null;
  snapshot?: { bytes: number; totalBytes: number | null } | null;
}

export interface ReadinessDeps {
  node: string;
  natsConnected(): boolean;
  /** Replicas placed here (hosted, or on disk and waiting for their collection's record); undefined before the replica manager runs. */
  expected(): ExpectedReplica[] | undefined;
  /** This node's Raft state of `group`, or undefined when the group is not open on the Raft host. */
  local(group: string): LocalReplicaStatus | undefined;
  /** The commit index of the shard's leader, asked over NATS; rejects when no leader answers. */
  leaderCommit(uid: string, shard: number, timeoutMs: number): Promise<{ node: string; commitIndex: number }>;
  now(): number;
  maxLagEntries?: number;
}

export interface ReplicaNotReady {
  group: string;
  collection: string;
  shard: number;
  reason: string;
}

export interface Readiness {
  ready: boolean;
  node: string;
  nats: 'connected' | 'disconnected';
  /** Replicas placed on this node. */
  replicas: number;
  notReady: ReplicaNotReady[];
  /** The bound a follower's lag is held to, in entries. */
  maxLagEntries: number;
}

export class NodeReadiness {
  private last: { at: number; value: Promise<Readiness> } | undefined;

  constructor(private readonly deps: ReadinessDeps) {}

  /** Readiness now (shared with checks started within {@link READY_CACHE_MS}). */
  check(): Promise<Readiness> {
    const now = this.deps.now();
    if (this.last && now - this.last.at < READY_CACHE_MS) return this.last.value;
    const value = this.compute();
    this.last = { at: now, value };
    return value;
  }

  private async compute(): Promise<Readiness> {
    const maxLag = this.deps.maxLagEntries ?? READY_MAX_LAG_ENTRIES;
    const connected = this.deps.natsConnected();
    const expected = this.deps.expected();
    const base = { node: this.deps.node, nats: connected ? 'connected' : 'disconnected', maxLagEntries: maxLag } as const;
    if (expected === undefined) {
      return { ...base, ready: false, replicas: 0, notReady: [{ group: '*', collection: '*', shard: -1, reason: 'the replica manager has not started' }] };
    }
    const notReady = (await Promise.all(expected.map((r) => this.replicaProblem(r, connected, maxLag)))).filter((p): p is ReplicaNotReady => p !== null);
    return { ...base, ready: connected && notReady.length === 0, replicas: expected.length, notReady };
  }

  private async replicaProblem(r: ExpectedReplica, connected: boolean, maxLag: number): Promise<ReplicaNotReady | null> {
    const problem = (reason: string): ReplicaNotReady => ({ group: r.group, collection: r.collection, shard: r.shard, reason });
    const st = this.deps.local(r.group);
    if (!st) return problem('not loaded yet (its state machine and Raft group are opening)');
    if (st.failed) return problem(`failed: ${st.failed}`);
    if (st.snapshot) {
      const of = st.snapshot.totalBytes === null ? '' : ` of about ${st.snapshot.totalBytes}`;
      return problem(`catching up: receiving a snapshot from its leader (${st.snapshot.bytes}${of} bytes so far)`);
    }
    if (st.role === 'leader') return null;
    if (!connected) return problem('cannot reach its leader: not connected to NATS');
    let leader: { node: string; commitIndex: number };
    try {
      leader = await this.deps.leaderCommit(r.uid, r.shard, READY_LEADER_ASK_MS);
    } catch (err) {
      return problem(`no leader answered within ${READY_LEADER_ASK_MS} ms (${err instanceof Error ? err.message : String(err)})`);
    }
    if (leader.node === this.deps.node) return null; // it became leader meanwhile
    const behind = leader.commitIndex - st.appliedIndex;
    if (behind > maxLag) {
      return problem(`catching up: applied ${st.appliedIndex}, its leader ${leader.node} has committed ${leader.commitIndex} (${behind} entries behind; ready at ${maxLag} or fewer)`);
    }
    return null;
  }
}
