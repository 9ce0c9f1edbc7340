/**
 * The rebalance coordinator's planner: the cluster view in, the moves and leadership transfers to
 * make out. Pure (no I/O, no clock, no randomness) and deterministic: ties break by node id, then
 * collection, shard and uid, and the order of the input lists does not matter. The executor carries
 * each move through its phases; this file only decides which.
 *
 * Counting:
 * - A shard's holders are its voters, plus the targets of its moves in flight, minus their sources.
 *   A node's load is the number of shards it holds; moves planned earlier in the same call count as
 *   in flight, so one batch does not pile onto one node. Learners count for no load, but a node
 *   that is a learner of a shard never receives that shard.
 * - A node the input does not list counts as `down`. A null zone is a zone of its own.
 *
 * Moves (at most `limit`, most urgent first: repair, then decommission, then rebalance; within a
 * kind, the shard with the fewest live voters for its replication factor first):
 * - Only `up` nodes receive replicas, and never a node that holds the shard, is its learner or the
 *   target of its move in flight.
 * - One move per shard at a time: a shard with a move in flight gets none, and a call plans at most
 *   one per shard. A shard whose voters on live nodes (up, maintenance, draining) are fewer than a
 *   quorum (floor(n/2)+1 of its voters) gets none: it cannot change its configuration.
 * - repair: a holder on a `dead` node is replaced (`from` = the dead node, lowest id first);
 *   otherwise a shard with fewer holders than `replicas` gets one added (`from` null). A `down`
 *   node is not repaired: it may come back, and becomes `dead` after `replaceAfterMs`.
 * - decommission: a holder on a `draining` node is moved off it.
 * - rebalance (only with `input.rebalance`), while some up node's load is more than one away from
 *   the mean over up nodes (PROTOCOL.md's "even"; a cluster that is even is left alone): move a
 *   replica of a healthy shard (every voter up or in maintenance, nothing to repair or
 *   decommission) off the most loaded up node that can give one, to a node whose load is at least
 *   two lower, so the sum of squared loads strictly falls: repeated plans converge, and nothing
 *   moves onto a node with equal or more load. The move must not lower the number of distinct
 *   zones the shard spans. Each of the source's shards gets its target as below; of those, the
 *   least loaded target wins, then a shard the source does not lead (no leadership to hand over),
 *   then collection and shard. Replicas on maintenance nodes stay where they are.
 * - target, for every kind: the node with the fewest of the shard's remaining holders in its zone
 *   (holders on dead or draining nodes are leaving and do not count), then the least loaded, then
 *   the lowest id.
 *
 * Leadership (shards with a move in flight are left alone; leaders reported on down or dead nodes
 * are stale and count for nothing): a leader on a maintenance or draining node hands over to the up
 * voter of that shard that leads least. Then, as long as one can, a shard led by the up node
 * leading most hands over to one of its up voters leading at least two fewer (leaderships are
 * cheap to move, so they go further than "within one of the mean"): the sum of squares strictly falls, so repeated
 * plans converge and never oscillate. One transfer per shard per call; targets are always voters
 * of the shard on up nodes.
 */
import {
  PlanView, compareIds, compareShards, withinOneOfMean,
  type PlanInput, type PlannedMove, type PlannedTransfer, type PlannerShard,
} from './planner-view.js';

export type {
  MoveInFlight, MoveReason, PlanInput, PlannedMove, PlannedTransfer, PlannerNode, PlannerNodeState, PlannerShard,
} from './planner-view.js';

/** At most `limit` new moves, most urgent first: repair, then decommission, then rebalance. */
export function planMoves(input: PlanInput, limit: number): PlannedMove[] {
  const view = new PlanView(input);
  const out: PlannedMove[] = [];
  const max = Math.max(0, Math.floor(limit));
  const plan = (s: PlannerShard, from: string | null, to: string, reason: PlannedMove['reason']): void => {
    out.push({ collection: s.collection, uid: s.uid, shard: s.shard, from, to, reason });
    view.applyMove(s, from, to);
  };

  const live = (s: PlannerShard): number => s.voters.filter((n) => view.isLive(n)).length;
  const urgent = view.shards
    .filter((s) => !view.isBusy(s) && view.hasQuorum(s))
    .flatMap((s) => {
      const need = view.need(s);
      return need === null ? [] : [{ s, ...need }];
    })
    .sort((a, b) =>
      (a.reason === b.reason ? 0 : a.reason === 'repair' ? -1 : 1)
      || (live(a.s) - a.s.replicas) - (live(b.s) - b.s.replicas)
      || compareShards(a.s, b.s));
  for (const { s, from, reason } of urgent) {
    if (out.length >= max) return out;
    const to = view.target(s, from);
    if (to !== undefined) plan(s, from, to, reason);
  }

  if (!input.rebalance) return out;
  // healthy shards by the up nodes holding them; a shard moved becomes busy and is skipped after
  const healthy = new Map<string, PlannerShard[]>(view.up.map((n) => [n, []]));
  for (const s of view.shards) {
    if (view.isBusy(s) || view.need(s) !== null || !view.hasQuorum(s)) continue;
    if (!s.voters.every((n) => view.state(n) === 'up' || view.state(n) === 'maintenance')) continue;
    for (const n of s.voters) healthy.get(n)?.push(s);
  }
  while (out.length < max && !replicasEven(view)) {
    const move = rebalanceMove(view, healthy);
    if (move === undefined) break;
    plan(move.s, move.from, move.to, 'rebalance');
  }
  return out;
}

function replicasEven(view: PlanView): boolean {
  const total = view.up.reduce((sum, n) => sum + view.load(n), 0);
  return withinOneOfMean(view.up, (n) => view.load(n), total);
}

/** The best rebalance move off the most loaded up node that has one, or undefined. */
function rebalanceMove(view: PlanView, healthy: Map<string, PlannerShard[]>): { s: PlannerShard; from: string; to: string } | undefined {
  const sources = [...view.up].sort((a, b) => view.load(b) - view.load(a) || compareIds(a, b));
  const least = Math.min(...view.up.map((n) => view.load(n)));
  for (const from of sources) {
    const lighter = view.up.filter((n) => view.load(n) <= view.load(from) - 2);
    if (lighter.length === 0) return undefined; // nor for any source after this one, less loaded
    let best: { s: PlannerShard; from: string; to: string } | undefined;
    const rank = (m: { s: PlannerShard; to: string }): [number, number] => [view.load(m.to), m.s.leader === from ? 1 : 0];
    for (const s of healthy.get(from) ?? []) {
      if (view.isBusy(s)) continue;
      // the shard keeps its zones if another holder shares the source's zone, or the target brings a new one
      const zones = new Set([...view.holders(s)].filter((n) => n !== from).map((n) => view.zone(n)));
      const keeps = zones.has(view.zone(from));
      const to = view.target(s, from, lighter, (n) => keeps || !zones.has(view.zone(n)));
      if (to === undefined) continue;
      const candidate = { s, from, to };
      if (best === undefined) best = candidate;
      else {
        const [a, b] = [rank(candidate), rank(best)];
        if (a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])) best = candidate;
      }
      const [load, leads] = rank(best);
      if (load === least && leads === 0) break; // nothing can beat it
    }
    if (best !== undefined) return best;
  }
  return undefined;
}

/** Leaders per up node, and the leaders on live nodes in all (the mean's numerator). */
function leaderCounts(view: PlanView): { leads: Map<string, number>; total: number } {
  const leads = new Map(view.up.map((n) => [n, 0]));
  let total = 0;
  for (const s of view.shards) {
    if (s.leader === null || !view.isLive(s.leader)) continue;
    total++;
    if (view.state(s.leader) === 'up') leads.set(s.leader, (leads.get(s.leader) ?? 0) + 1);
  }
  return { leads, total };
}

/** Leadership transfers that even out leaders (and empty maintenance/draining nodes of leaderships). */
export function planLeaderTransfers(input: PlanInput): PlannedTransfer[] {
  const view = new PlanView(input);
  const { leads, total } = leaderCounts(view);
  const count = (n: string): number => leads.get(n) ?? 0;
  const out: PlannedTransfer[] = [];
  const open = new Set(view.shards.filter((s) =>
    !view.isBusy(s) && s.leader !== null && view.isLive(s.leader)));
  const transfer = (s: PlannerShard, from: string, to: string): void => {
    out.push({ collection: s.collection, uid: s.uid, shard: s.shard, from, to });
    open.delete(s);
    if (leads.has(from)) leads.set(from, count(from) - 1);
    leads.set(to, count(to) + 1);
  };
  /** The shard's voter on an up node, other than `from`, that leads least (then lowest id). */
  const heir = (s: PlannerShard, from: string): string | undefined => {
    let best: string | undefined;
    for (const n of s.voters) {
      if (n === from || view.state(n) !== 'up') continue;
      if (best === undefined || count(n) < count(best) || (count(n) === count(best) && n < best)) best = n;
    }
    return best;
  };

  for (const s of [...open]) {
    const from = s.leader as string;
    if (view.state(from) === 'up') continue;
    const to = heir(s, from);
    if (to !== undefined) transfer(s, from, to);
  }
  const ledBy = new Map<string, PlannerShard[]>(view.up.map((n) => [n, []]));
  for (const s of open) ledBy.get(s.leader as string)?.push(s);
  // Leaderships are cheap to move: even them out as far as the voters allow (every transfer goes
  // from the node leading most to one leading at least two fewer), not just to within one of the mean.
  for (;;) {
    const sources = [...view.up].sort((a, b) => count(b) - count(a) || compareIds(a, b));
    const least = Math.min(...view.up.map(count));
    let found: { s: PlannerShard; from: string; to: string } | undefined;
    for (const from of sources) {
      if (least > count(from) - 2) break; // no up node leads two fewer than this one, nor than those after it
      for (const s of ledBy.get(from) ?? []) {
        if (!open.has(s)) continue;
        const to = heir(s, from);
        if (to === undefined || count(to) > count(from) - 2) continue;
        if (found === undefined || count(to) < count(found.to)) found = { s, from, to };
        if (count(to) === least) break; // nothing can beat it
      }
      if (found !== undefined) break;
    }
    if (found === undefined) break;
    transfer(found.s, found.from, found.to);
  }
  return out;
}

/**
 * Whether the cluster is even (PROTOCOL.md), counting moves in flight as done: nothing to repair
 * or decommission, every up node within one replica of the mean and within one leadership of the
 * mean, and no leader on a maintenance or draining node. When it holds, planMoves and
 * planLeaderTransfers plan nothing.
 */
export function isEven(input: PlanInput): boolean {
  const view = new PlanView(input);
  if (view.shards.some((s) => view.need(s) !== null)) return false;
  if (view.shards.some((s) => s.leader !== null && ['maintenance', 'draining'].includes(view.state(s.leader)))) return false;
  const { leads, total } = leaderCounts(view);
  return replicasEven(view) && withinOneOfMean(view.up, (n) => leads.get(n) ?? 0, total) && planLeaderTransfers(input).length === 0;
}

/** Shards with fewer voters on live nodes (up/maintenance/draining) than `replicas`, or with a voter on a down/dead node: for status and health. */
export function underReplicated(input: PlanInput): PlannerShard[] {
  const view = new PlanView(input);
  return view.shards.filter((s) =>
    s.voters.filter((n) => view.isLive(n)).length < s.replicas || s.voters.some((n) => !view.isLive(n)));
}
