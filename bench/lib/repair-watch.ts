/**
 * Watches a cluster repair itself after a node is killed for good, from outside, by polling what
 * an operator can see: `cluster.status` (the victim's state), `rebalance.status` (the moves and
 * their phases), each move target's replica status (the bytes of the snapshot it is receiving:
 * the count the receiving Raft host keeps, which stays visible until the restore is done), and at
 * the end `describe` + `cluster.health` (every shard 3 voters on live nodes, healthy). Times are
 * performance.now() of the poll that first saw a thing, so each carries up to one poll interval.
 */
import { performance } from 'node:perf_hooks';
import type { ShoalClient } from '../../src/client/client.js';
import type { OpsClient } from '../../src/client/ops.js';
import { replicaActorName, type ShardStatus } from '../../src/actors/shard-protocol.js';
import type { ActorSystem } from '../../src/runtime/actor-system.js';

export const POLL_MS = 200;

export interface MoveTimeline {
  id: string;
  shard: number;
  from: string | null;
  to: string;
  reason: string;
  seenAt: number;
  /** When each phase was first seen. */
  phaseAt: Record<string, number>;
  doneAt: number | null;
  /** The sender's estimate of the image's size (the move's `bytesTotal`). */
  bytesTotal: number | null;
  /** Bytes the target counted for its current stream (the largest seen). */
  bytes: number;
  /** Bytes of earlier streams to this target that were restarted (a failed stream). */
  wastedBytes: number;
  /** First poll that saw bytes arrive; first poll that saw the final count; first poll after the restore ended. */
  firstByteAt: number | null;
  lastByteAt: number | null;
  restoredAt: number | null;
}

export interface RepairFigures {
  killAt: number;
  deadAt: number | null;
  redundantAt: number | null;
  moves: MoveTimeline[];
}

export interface RepairWatchDeps {
  client: ShoalClient;
  ops: OpsClient;
  probe: ActorSystem;
  collection: string;
  uid: string;
  replicas: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every shard has `replicas` members, all voters on up nodes, a leader, and cluster.health says healthy. */
export async function fullyReplicated(client: ShoalClient, collection: string, replicas: number): Promise<boolean> {
  const status = await client.clusterStatus(2_000);
  const up = new Set(status.nodes.filter((n) => n.state === 'up').map((n) => n.id));
  const d = await client.describeCollection(collection, 2_000);
  for (const s of d.shards) {
    if (s.leader === null || s.replicas.length !== replicas) return false;
    if (!s.replicas.every((r) => up.has(r.node) && (r.role === 'leader' || r.role === 'follower'))) return false;
  }
  return (await client.clusterHealth(2_000)).healthy;
}

/** Polls from `killAt` until the victim's replicas are back on live nodes (or `timeoutMs` passes). */
export async function watchRepair(d: RepairWatchDeps, victim: string, killAt: number, timeoutMs: number): Promise<RepairFigures> {
  const out: RepairFigures = { killAt, deadAt: null, redundantAt: null, moves: [] };
  const byId = new Map<string, MoveTimeline>();
  const end = killAt + timeoutMs;
  while (performance.now() < end) {
    const tick = performance.now();
    if (out.deadAt === null) {
      const st = await d.client.clusterStatus(2_000).catch(() => undefined);
      if (st?.nodes.find((n) => n.id === victim)?.state === 'dead') out.deadAt = tick;
    }
    const rs = await d.ops.rebalanceStatus(2_000).catch(() => undefined);
    if (rs) {
      const live = new Set<string>();
      for (const m of rs.moves) {
        if (m.collection !== d.collection) continue;
        live.add(m.id);
        let t = byId.get(m.id);
        if (!t) {
          t = { id: m.id, shard: m.shard, from: m.from, to: m.to, reason: m.reason, seenAt: tick, phaseAt: {}, doneAt: null, bytesTotal: null, bytes: 0, wastedBytes: 0, firstByteAt: null, lastByteAt: null, restoredAt: null };
          byId.set(m.id, t);
          out.moves.push(t);
        }
        t.phaseAt[m.phase] ??= tick;
        t.to = m.to;
        if (m.bytesTotal !== null && m.bytesTotal > 0) t.bytesTotal = m.bytesTotal;
      }
      for (const t of out.moves) if (t.doneAt === null && !live.has(t.id)) t.doneAt = tick;
      // the learners' own counts, while they receive (and restore) their snapshot
      await Promise.all(
        out.moves
          .filter((t) => t.doneAt === null && t.restoredAt === null && (t.phaseAt['copy'] !== undefined || t.phaseAt['catch-up'] !== undefined))
          .map(async (t) => {
            const sent = performance.now();
            const st = await d.probe
              .request<ShardStatus>(d.probe.subjects.actor(t.to, replicaActorName(d.uid, t.shard)), { type: 'status' }, { timeoutMs: 2_000 })
              .catch(() => undefined);
            if (!st) return;
            const at = (sent + performance.now()) / 2;
            const bytes = st.snapshot?.bytes ?? 0;
            if (st.snapshot && bytes > 0) {
              if (bytes < t.bytes) {
                t.wastedBytes += t.bytes; // a new stream replaced a failed one
                t.bytes = 0;
                t.lastByteAt = null;
              }
              t.firstByteAt ??= at;
              if (bytes > t.bytes) {
                t.bytes = bytes;
                t.lastByteAt = at;
              }
            } else if (t.firstByteAt !== null && !st.snapshot) {
              t.restoredAt = at;
            }
          }),
      );
    }
    for (const t of out.moves) {
      // a restore that ended between two polls of its target: the next phase (or the end) bounds it
      if (t.firstByteAt !== null && t.restoredAt === null) t.restoredAt = t.phaseAt['catch-up'] ?? t.phaseAt['switch'] ?? t.phaseAt['cleanup'] ?? t.doneAt;
    }
    const movesDone = out.moves.length > 0 && out.moves.every((t) => t.doneAt !== null);
    if (out.deadAt !== null && movesDone && (await fullyReplicated(d.client, d.collection, d.replicas).catch(() => false))) {
      out.redundantAt = performance.now();
        return out;
    }
    await sleep(Math.max(0, POLL_MS - (performance.now() - tick)));
  }
  return out;
}

/**
 * Replicas that have not applied what their shard's leader had committed, or hold another count
 * of points, `withinMs` after full redundancy: cluster.health looks at Raft progress only, so a
 * replica whose state machine stopped applying passes it. Empty when every replica caught up.
 */
export async function laggingReplicas(d: RepairWatchDeps, withinMs: number): Promise<string[]> {
  const status = (node: string, shard: number): Promise<ShardStatus | undefined> =>
    d.probe.request<ShardStatus>(d.probe.subjects.actor(node, replicaActorName(d.uid, shard)), { type: 'status' }, { timeoutMs: 2_000 }).catch(() => undefined);
  const end = performance.now() + withinMs;
  let problems: string[] = [];
  do {
    problems = [];
    for (const s of (await d.client.describeCollection(d.collection, 2_000)).shards) {
      const lead = s.leader === null ? undefined : await status(s.leader, s.shard);
      if (!lead) {
        problems.push(`shard ${s.shard}: no leader status`);
        continue;
      }
      for (const r of s.replicas) {
        const st = r.node === lead.node ? lead : await status(r.node, s.shard);
        if (!st) problems.push(`shard ${s.shard} on ${r.node}: no status`);
        else if (st.appliedIndex < lead.commitIndex || st.count !== lead.count) {
          problems.push(`shard ${s.shard} on ${r.node}: applied ${st.appliedIndex} of ${lead.commitIndex}, ${st.count} of ${lead.count} points`);
        }
      }
    }
    if (problems.length > 0) await sleep(500);
  } while (problems.length > 0 && performance.now() < end);
  return problems;
}
