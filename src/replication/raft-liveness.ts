/**
 * Node-level liveness for a Raft host: when anything last arrived from each peer node, which
 * nodes share a group with this one, and which of them have been silent for an election
 * timeout. Idle groups quiesce (their leader stops heartbeating), so the host keeps one ping per
 * peer node instead, and wakes a quiesced follower whose leader's node went silent.
 */
import type { GroupReplica } from './raft-group.js';

/** How often (in ticks) the set of peer nodes to ping is recomputed from the groups' configurations. */
const PEERS_EVERY_TICKS = 20;

export class PeerLiveness {
  private readonly heard = new Map<string, number>();
  private peerSet = new Set<string>();
  private ticks = 0;

  constructor(
    private readonly self: string,
    /** When the host started: a peer never heard from counts as silent from then. */
    private readonly startedAt: number,
  ) {}

  /** Something arrived from `node` at `now`. */
  heardFrom(node: string, now: number): void {
    this.heard.set(node, now);
  }

  /** Milliseconds since anything arrived from `node`; null if nothing ever did. */
  sinceHeard(node: string, now: number): number | null {
    const at = this.heard.get(node);
    return at === undefined ? null : now - at;
  }

  /** Every node that shares a group with this one (recomputed every {@link PEERS_EVERY_TICKS} ticks). */
  peers(): ReadonlySet<string> {
    return this.peerSet;
  }

  /** One tick: the peer nodes silent for `silentMs` or more, if any. */
  tick(groups: Iterable<GroupReplica>, now: number, silentMs: number): Set<string> | undefined {
    if (this.ticks++ % PEERS_EVERY_TICKS === 0) this.peerSet = this.collect(groups);
    let silent: Set<string> | undefined;
    for (const p of this.peerSet) {
      if (now - (this.heard.get(p) ?? this.startedAt) >= silentMs) (silent ??= new Set()).add(p);
    }
    return silent;
  }

  private collect(groups: Iterable<GroupReplica>): Set<string> {
    const peers = new Set<string>();
    for (const g of groups) {
      for (const n of g.core.conf.voters) peers.add(n);
      for (const n of g.core.conf.learners) peers.add(n);
    }
    peers.delete(this.self);
    return peers;
  }
}
