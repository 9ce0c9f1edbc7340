/**
 * The status and counters of a {@link RaftHost}: what it reports of its groups (each one's
 * status, the reads they served) and of itself (turns, snapshot streams, transport, the writes
 * its gate refused). Reads only, apart from counting the refusals; nothing here is on the turn
 * path.
 */
import type { Clock } from '../runtime/clock.js';
import type { GroupReplica } from './raft-group.js';
import type { PeerLiveness } from './raft-liveness.js';
import type { SnapshotStreams } from './raft-snapshots.js';
import type { GroupStatus } from './raft-state-machine.js';
import type { RaftTransport, TransportStats } from './raft-transport.js';
import type { TurnPipeline, TurnStats } from './raft-turns.js';

/** What the status and counters get from their host (raft-host.ts). */
export interface StatusDeps {
  groups: ReadonlyMap<string, GroupReplica>;
  clock: Clock;
  liveness: PeerLiveness;
  snapshots: SnapshotStreams;
  transport: RaftTransport;
  turns: TurnPipeline;
  /** Why the host stopped itself (fail-stop), if it did. */
  fatal(): string | null;
}

/**
 * Linearizable reads since the host started: those of the groups it holds now, and of those it
 * held before (HostCounters.retire), so that the counts never go down.
 */
export interface ReadCounters {
  /** Read indexes it gave as leader from its lease. */
  leaseHits: number;
  /** Read indexes it gave as leader otherwise. */
  others: number;
  /** Heartbeat rounds it started as leader to confirm them. */
  rounds: number;
  /** Read-index requests it sent as follower. */
  requests: number;
}

/** The status and counters of one host (what RaftHost's status methods return). */
export class HostCounters {
  /** Proposals the write gate refused since the host started, by the `limit` its error names ('other' when it names none). */
  private readonly refusedProposals = new Map<string, number>();
  /** The counters of the replicas that left the host (removed, or reset for repair). */
  private readonly retired = { leaseHits: 0, others: 0, rounds: 0, requests: 0, probes: 0 };

  constructor(private readonly deps: StatusDeps) {}

  /** Replica `g` leaves the host: its counters stay in the host's totals. */
  retire(g: GroupReplica): void {
    const st = g.core.status();
    this.retired.leaseHits += g.readStats.leaseHits;
    this.retired.others += g.readStats.others;
    this.retired.rounds += st.readRounds;
    this.retired.requests += st.readRequests;
    this.retired.probes += st.probes;
  }

  /** The turn pipeline's counters (raft-turns.ts), live. */
  get turns(): TurnStats {
    return this.deps.turns.stats;
  }

  /** The status of this node's replica `g`, with how long ago each peer node was heard from. */
  status(g: GroupReplica): GroupStatus {
    const now = this.deps.clock.now();
    return g.status(this.deps.fatal(), (node) => this.deps.liveness.sinceHeard(node, now));
  }

  /** The write gate refused a proposal with `refused`: counted by the `limit` it names. */
  refused(refused: Error): void {
    const limit = (refused as { limit?: unknown }).limit;
    const k = typeof limit === 'string' ? limit : 'other';
    this.refusedProposals.set(k, (this.refusedProposals.get(k) ?? 0) + 1);
  }

  /** The refusals counted, by limit. */
  writesRefused(): [string, number][] {
    return [...this.refusedProposals];
  }

  /** The reads of the groups the host holds and held, summed. */
  readCounters(): ReadCounters {
    const r = this.retired;
    const out = { leaseHits: r.leaseHits, others: r.others, rounds: r.rounds, requests: r.requests };
    for (const g of this.deps.groups.values()) {
      const st = g.core.status();
      out.leaseHits += g.readStats.leaseHits;
      out.others += g.readStats.others;
      out.rounds += st.readRounds;
      out.requests += st.readRequests;
    }
    return out;
  }

  /** Times the leaders of the groups the host holds and held stopped pipelining to a follower and probed again (RaftStatus.probes), summed. */
  probes(): number {
    let n = this.retired.probes;
    for (const g of this.deps.groups.values()) n += g.core.status().probes;
    return n;
  }

  /** A copy of the snapshot streams' counters (raft-snapshots.ts). */
  snapshotStats(): { sent: number; received: number; failed: number; bytesReceived: number } {
    return { ...this.deps.snapshots.stats };
  }

  /** A copy of the transport's counters. */
  transportStats(): TransportStats {
    return { ...this.deps.transport.stats };
  }
}
