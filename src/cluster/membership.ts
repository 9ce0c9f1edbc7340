/**
 * Who is up: every node publishes a heartbeat every {@link HEARTBEAT_INTERVAL_MS}; a node whose
 * last heartbeat is older than `downAfterMs` is `down`, and one down for longer than
 * `replaceAfterMs` is `dead` (the coordinator rebuilds its replicas elsewhere). What an operator
 * made of a node (maintenance, draining, removed) comes from its record in the metadata bucket.
 * Pure bookkeeping over what was seen, on the observer's own clock (never the sender's).
 */
import type { NodeAdminState, NodeRecord } from './metadata.js';

export const HEARTBEAT_INTERVAL_MS = 500;
/** PROTOCOL.md: `down` after 5 s without a heartbeat. */
export const DEFAULT_DOWN_AFTER_MS = 5_000;
/** PROTOCOL.md: `dead` once down for longer than 60 s. */
export const DEFAULT_REPLACE_AFTER_MS = 60_000;

export type NodeState = 'up' | 'down' | 'dead' | 'maintenance' | 'draining';

export interface Heartbeat {
  node: string;
  /** What the node says of itself: `up`, or `maintenance` when an operator drains it. */
  state: 'up' | 'maintenance';
  replicas: number;
  leaders: number;
  /** Its replicas whose data was found damaged and that do not serve yet (absent from nodes before this field). */
  damaged?: DamagedReplica[];
}

/** A replica whose data its node found damaged (docs/operations.md, Corruption), while it is rebuilt or if it cannot be. */
export interface DamagedReplica {
  collection: string;
  shard: number;
  /** `repairing`: being rebuilt from its peers; `failed`: no other replica to rebuild it from. */
  health: 'repairing' | 'failed';
  /** The damaged file: a checkpoint file, or the node's LMDB data file. */
  file: string;
  problem: string;
  /** When the node found it (ISO time). */
  at: string;
}

export interface NodeView {
  id: string;
  state: NodeState;
  /** Milliseconds since its last heartbeat; null if never heard. */
  lastHeartbeatMs: number | null;
  replicas: number;
  leaders: number;
  zone: string | null;
  /** What its last heartbeat said of damaged replicas. */
  damaged: DamagedReplica[];
}

export interface MembershipOptions {
  downAfterMs?: number;
  replaceAfterMs?: number;
}

export class MembershipView {
  private readonly seen = new Map<string, { hb: Heartbeat; at: number }>();
  private readonly records = new Map<string, NodeRecord>();
  /** When this view first learned of each node (a node never heard from is down from then, not from long before). */
  private readonly knownAt = new Map<string, number>();
  private startedAt: number | undefined;
  readonly downAfterMs: number;
  private replaceMs: number;

  constructor(o: MembershipOptions = {}) {
    this.downAfterMs = o.downAfterMs ?? DEFAULT_DOWN_AFTER_MS;
    this.replaceMs = o.replaceAfterMs ?? DEFAULT_REPLACE_AFTER_MS;
  }

  /** Starts the clock of {@link warmAt}: the view listens from `now`. */
  start(now: number): void {
    this.startedAt = now;
  }

  get replaceAfterMs(): number {
    return this.replaceMs;
  }

  /** The cluster's `replaceAfterMs` changed (rebalance.configure). */
  setReplaceAfterMs(ms: number): void {
    this.replaceMs = ms;
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
    if (!this.records.has(hb.node)) this.records.set(hb.node, { id: hb.node, registeredAt: '', zone: null, admin: 'active' });
  }

  /** A node from the registry (its zone and admin state), shown as down until it is heard from. */
  know(id: string, record?: NodeRecord | null, now?: number): void {
    if (now !== undefined && !this.knownAt.has(id)) this.knownAt.set(id, now);
    if (record === null) {
      this.records.delete(id);
      return;
    }
    if (record) this.records.set(id, record);
    else if (!this.records.has(id)) this.records.set(id, { id, registeredAt: '', zone: null, admin: 'active' });
  }

  admin(id: string): NodeAdminState {
    return this.records.get(id)?.admin ?? 'active';
  }

  zone(id: string): string | null {
    return this.records.get(id)?.zone ?? null;
  }

  /** Every node not removed, by id. */
  nodes(now: number): NodeView[] {
    return [...this.records.values()]
      .filter((r) => (r.admin ?? 'active') !== 'removed')
      .map((r) => r.id)
      .sort()
      .map((id) => {
        const s = this.seen.get(id);
        const age = s ? now - s.at : null;
        return { id, state: this.stateOf(id, now), lastHeartbeatMs: age, replicas: s?.hb.replicas ?? 0, leaders: s?.hb.leaders ?? 0, zone: this.zone(id), damaged: Array.isArray(s?.hb.damaged) ? s.hb.damaged : [] };
      });
  }

  stateOf(id: string, now: number): NodeState {
    const admin = this.admin(id);
    const alive = this.isAlive(id, now);
    if (admin === 'draining') return 'draining';
    if (admin === 'maintenance') return alive ? 'maintenance' : 'down';
    if (alive) return 'up';
    const lastSeen = this.seen.get(id)?.at ?? Math.max(this.startedAt ?? now, this.knownAt.get(id) ?? -Infinity);
    return now - lastSeen - this.downAfterMs > this.replaceMs ? 'dead' : 'down';
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
