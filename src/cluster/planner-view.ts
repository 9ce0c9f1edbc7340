/**
 * The planner's counting (see planner.ts for the rules): the cluster as it will be once the moves
 * in flight, and those planned so far in one call, are done. Pure; ties break by node id, then
 * collection, shard and uid, so the same input always gives the same plan.
 */
import type { MoveReason as RecordMoveReason } from './metadata.js';

export type PlannerNodeState = 'up' | 'down' | 'dead' | 'maintenance' | 'draining';

export interface PlannerNode {
  id: string;
  state: PlannerNodeState;
  /** The node's `--zone` label; null counts as a zone of its own (no two null-zone nodes share one). */
  zone: string | null;
}

export interface PlannerShard {
  collection: string;
  uid: string;
  shard: number;
  /** the collection's replication factor */
  replicas: number;
  /** the shard's voters now (Raft configuration as last known) */
  voters: string[];
  learners: string[];
  leader: string | null;
}

/** The reasons the planner moves a replica for (resharding is not the planner's). */
export type MoveReason = Exclude<RecordMoveReason, 'reshard'>;

export interface PlannedMove {
  collection: string;
  uid: string;
  shard: number;
  /** null: a replica added from nothing */
  from: string | null;
  to: string;
  reason: MoveReason;
}

export interface PlannedTransfer {
  collection: string;
  uid: string;
  shard: number;
  from: string;
  to: string;
}

export interface MoveInFlight {
  uid: string;
  shard: number;
  from: string | null;
  to: string;
}

export interface PlanInput {
  nodes: PlannerNode[];
  shards: PlannerShard[];
  /** moves already running: their shards get no other move; their targets count as holding a replica, their sources as not */
  inFlight: MoveInFlight[];
  /** include 'rebalance' moves (auto mode, or rebalance.start); repair and decommission are always planned */
  rebalance: boolean;
}

/** States whose replicas are alive: they count toward a shard's quorum. */
const LIVE: ReadonlySet<PlannerNodeState> = new Set<PlannerNodeState>(['up', 'maintenance', 'draining']);

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareShards(a: PlannerShard, b: PlannerShard): number {
  return compareIds(a.collection, b.collection) || a.shard - b.shard || compareIds(a.uid, b.uid);
}

/** The cluster as the planner counts it; {@link applyMove} updates it as moves are planned. */
export class PlanView {
  /** up nodes, by id */
  readonly up: string[];
  /** every shard of the input, by collection, shard, uid */
  readonly shards: PlannerShard[];
  private readonly nodes = new Map<string, PlannerNode>();
  /** replicas per node: voters, plus in-flight and planned targets, minus their sources */
  private readonly loads = new Map<string, number>();
  /** per shard: the nodes holding it once its moves are done */
  private readonly holding = new Map<string, Set<string>>();
  /** per shard: where a new replica may not go (holders, learners, in-flight targets) */
  private readonly taken = new Map<string, Set<string>>();
  /** shards with a move in flight or planned in this call */
  private readonly busy = new Set<string>();

  constructor(input: PlanInput) {
    for (const n of input.nodes) this.nodes.set(n.id, n);
    this.up = [...this.nodes.values()].filter((n) => n.state === 'up').map((n) => n.id).sort(compareIds);
    this.shards = [...input.shards].sort(compareShards);
    for (const s of this.shards) {
      this.holding.set(keyOf(s), new Set(s.voters));
      this.taken.set(keyOf(s), new Set([...s.voters, ...s.learners]));
    }
    for (const m of input.inFlight) {
      const k = `${m.uid}/${m.shard}`;
      this.busy.add(k);
      const holders = this.holding.get(k);
      if (holders === undefined) continue; // a move of a shard the input does not list counts for nothing
      if (m.from !== null) holders.delete(m.from);
      holders.add(m.to);
      this.taken.get(k)?.add(m.to);
    }
    for (const holders of this.holding.values()) for (const n of holders) this.loads.set(n, this.load(n) + 1);
  }

  /** A node the input does not list is taken as down: never repaired, never a target. */
  state(node: string): PlannerNodeState {
    return this.nodes.get(node)?.state ?? 'down';
  }

  isLive(node: string): boolean {
    return LIVE.has(this.state(node));
  }

  /** The node's zone, or (null zone) a key no other node shares. */
  zone(node: string): string {
    return this.nodes.get(node)?.zone ?? `\u0000${node}`;
  }

  load(node: string): number {
    return this.loads.get(node) ?? 0;
  }

  holders(s: PlannerShard): ReadonlySet<string> {
    return this.holding.get(keyOf(s)) ?? new Set();
  }

  isBusy(s: PlannerShard): boolean {
    return this.busy.has(keyOf(s));
  }

  /** Voters on live nodes number at least floor(n/2)+1 of the voters: the group can change its configuration. */
  hasQuorum(s: PlannerShard): boolean {
    return s.voters.filter((n) => this.isLive(n)).length >= Math.floor(s.voters.length / 2) + 1;
  }

  /** What a shard needs, most urgent first: a dead holder replaced, a missing replica added, a draining holder moved off. */
  need(s: PlannerShard): { reason: 'repair' | 'decommission'; from: string | null } | null {
    const holders = [...this.holders(s)].sort(compareIds);
    const dead = holders.find((n) => this.state(n) === 'dead');
    if (dead !== undefined) return { reason: 'repair', from: dead };
    if (holders.length < s.replicas) return { reason: 'repair', from: null };
    const draining = holders.find((n) => this.state(n) === 'draining');
    if (draining !== undefined) return { reason: 'decommission', from: draining };
    return null;
  }

  /**
   * The best node of `among` (by default every up node) to take a replica of `s` in place of
   * `from`, among those that do not hold it and `allow` accepts: the
   * fewest of the shard's remaining holders in its zone (holders on dead or draining nodes are
   * leaving and do not count), then the least loaded, then the lowest id.
   */
  target(s: PlannerShard, from: string | null, among: readonly string[] = this.up, allow: (node: string) => boolean = () => true): string | undefined {
    const taken = this.taken.get(keyOf(s)) ?? new Set<string>();
    const candidates = among.filter((n) => !taken.has(n) && allow(n));
    if (candidates.length === 0) return undefined;
    const inZone = new Map<string, number>();
    for (const n of this.holders(s)) {
      if (n === from || this.state(n) === 'dead' || this.state(n) === 'draining') continue;
      inZone.set(this.zone(n), (inZone.get(this.zone(n)) ?? 0) + 1);
    }
    let best: string | undefined;
    let bestRank: [number, number] = [Infinity, Infinity];
    for (const n of candidates) {
      const rank: [number, number] = [inZone.get(this.zone(n)) ?? 0, this.load(n)];
      if (rank[0] < bestRank[0] || (rank[0] === bestRank[0] && rank[1] < bestRank[1])) [best, bestRank] = [n, rank];
    }
    return best;
  }

  /** Counts a planned move as if it were in flight. */
  applyMove(s: PlannerShard, from: string | null, to: string): void {
    const k = keyOf(s);
    const holders = this.holding.get(k);
    if (holders === undefined) return;
    if (from !== null && holders.delete(from)) this.loads.set(from, this.load(from) - 1);
    holders.add(to);
    this.taken.get(k)?.add(to);
    this.loads.set(to, this.load(to) + 1);
    this.busy.add(k);
  }
}

function keyOf(s: PlannerShard): string {
  return `${s.uid}/${s.shard}`;
}

/** Every up node's count is within one of the mean over up nodes (in integers: |count·n − total| ≤ n). */
export function withinOneOfMean(up: readonly string[], count: (node: string) => number, total: number): boolean {
  const n = up.length;
  return up.every((node) => Math.abs(count(node) * n - total) <= n);
}
