/**
 * Who is up: every node publishes a heartbeat every {@link HEARTBEAT_INTERVAL_MS}; a node whose
 * last heartbeat is older than {@link DOWN_AFTER_MS} is down. Pure bookkeeping over the
 * heartbeats seen, on the observer's own clock (never the sender's).
 */

export const HEARTBEAT_INTERVAL_MS = 500;
export const DOWN_AFTER_MS = 2_000;

export type NodeState = 'up' | 'down' | 'maintenance';

export interface Heartbeat {
  node: string;
  /** What the node says of itself: `up`, or `maintenance` when an operator drains it. */
  state: 'up' | 'maintenance';
  replicas: number;
  leaders: number;
}

export interface NodeView {
  id: string;
  state: NodeState;
  /** Milliseconds since its last heartbeat; null if never heard. */
  lastHeartbeatMs: number | null;
  replicas: number;
  leaders: number;
}

export class MembershipView {
  private readonly seen = new Map<string, { hb: Heartbeat; at: number }>();
  private readonly known = new Set<string>();
  private startedAt: number | undefined;

  constructor(private readonly downAfterMs = DOWN_AFTER_MS) {}

  /** Starts the clock of {@link warmAt}: the view listens from `now`. */
  start(now: number): void {
    this.startedAt = now;
  }

  /**
   * When the view will have heard every live node at least once (two heartbeat intervals after it
   * started listening). Placement decided before that could miss nodes that are up.
   */
  warmAt(): number {
    return (this.startedAt ?? 0) + 2 * HEARTBEAT_INTERVAL_MS;
  }

  observe(hb: Heartbeat, now: number): void {
    this.seen.set(hb.node, { hb, at: now });
    this.known.add(hb.node);
  }

  /** A node from the registry, shown as down until it is heard from. */
  know(id: string): void {
    this.known.add(id);
  }

  nodes(now: number): NodeView[] {
    return [...this.known].sort().map((id) => {
      const s = this.seen.get(id);
      if (!s) return { id, state: 'down', lastHeartbeatMs: null, replicas: 0, leaders: 0 };
      const age = now - s.at;
      const state: NodeState = age > this.downAfterMs ? 'down' : s.hb.state;
      return { id, state, lastHeartbeatMs: age, replicas: s.hb.replicas, leaders: s.hb.leaders };
    });
  }

  /** Nodes up now (maintenance nodes are alive but take no new replicas). */
  up(now: number): string[] {
    return this.nodes(now).filter((n) => n.state === 'up').map((n) => n.id);
  }

  isAlive(id: string, now: number): boolean {
    const s = this.seen.get(id);
    return s !== undefined && now - s.at <= this.downAfterMs;
  }
}
