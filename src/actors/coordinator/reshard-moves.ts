/**
 * What a running reshard looks like from outside (PROTOCOL.md, Operations): in
 * `rebalance.status`, one move of reason `reshard` per (source, target) pair that moves keys;
 * in the collection's describe, `resharding` with its phase and progress; to the throttles, one
 * move per pair. Pure: computed from the collection's record alone, so that any node answers alike.
 */
import type { CollectionRecord, MovePhase, MoveRecord, ReshardPairRecord, ReshardRecord } from '../../cluster/metadata.js';
import { movePairs } from '../../cluster/shard-map.js';

/** A move as `rebalance.status` shows it. */
export type ShownMove = Omit<MoveRecord, 'uid' | 'epoch' | 'failedTargets'>;

/** The id of a pair's move: `r-<collection>-<source>-<target>`. */
export function reshardMoveId(collection: string, source: number, target: number): string {
  return `r-${collection}-${source}-${target}`;
}

/**
 * The move phase a pair of a reshard in `phase` is in: a pair whose copy is done is in `catch-up`
 * while others still copy; `fence` and `switch` are the move's `switch`; null once done.
 */
export function movePhaseOf(phase: ReshardRecord['phase'], copied: boolean): MovePhase | null {
  switch (phase) {
    case 'prepare':
      return 'prepare';
    case 'copy':
      return copied ? 'catch-up' : 'copy';
    case 'catch-up':
      return 'catch-up';
    case 'fence':
    case 'switch':
      return 'switch';
    case 'cleanup':
      return 'cleanup';
    case 'done':
      return null;
  }
}

/** The pairs of a reshard: as the coordinator last wrote them, else as the maps give them, nothing known yet. */
export function pairsOf(rs: ReshardRecord): ReshardPairRecord[] {
  if (rs.pairs) return rs.pairs;
  return movePairs(rs.sharding, rs.from, rs.to).map(({ source, target }) => ({ source, target, from: null, to: null, bytesCopied: 0, bytesTotal: null, copied: false }));
}

/** Whether a reshard still runs (its record names it and it is not done). */
function running(rs: ReshardRecord | null | undefined): rs is ReshardRecord {
  return rs !== null && rs !== undefined && rs.phase !== 'done';
}

/**
 * The moves of a collection's running reshard. `from` and `to` are the nodes of the source's and
 * the target's leaders as the coordinator last saw them (the target's leader runs the importer,
 * which pulls from the source's leader: the bytes go between those two), or before it has seen
 * them, the first replica of each shard's placement.
 */
export function reshardMoves(r: CollectionRecord): ShownMove[] {
  const rs = r.resharding;
  if (!running(rs)) return [];
  const first = (shard: number): string | null => r.placement.find((p) => p.shard === shard)?.replicas[0] ?? null;
  const out: ShownMove[] = [];
  for (const p of pairsOf(rs)) {
    const phase = movePhaseOf(rs.phase, p.copied);
    if (phase === null) continue;
    out.push({
      id: reshardMoveId(r.name, p.source, p.target),
      collection: r.name,
      shard: p.target,
      from: p.from ?? first(p.source),
      to: p.to ?? first(p.target) ?? '?',
      reason: 'reshard',
      phase,
      bytesCopied: p.bytesCopied,
      bytesTotal: p.bytesTotal,
      startedAt: rs.startedAt,
    });
  }
  return out;
}

/** How many moves the running reshards of `records` count as, against `maxConcurrentMoves`: one per pair. */
export function reshardMovesInFlight(records: readonly CollectionRecord[]): number {
  let n = 0;
  for (const r of records) if (running(r.resharding)) n += pairsOf(r.resharding).length;
  return n;
}

/**
 * The pairs of a reshard that share the cluster's copy rate now, as `{target}` each: those whose
 * copy is not done while the reshard is in `prepare` or `copy` (a move shares it in `prepare` and
 * `copy` too).
 */
export function copyingPairs(rs: ReshardRecord | null | undefined): { source: number; target: number }[] {
  if (!running(rs) || (rs.phase !== 'prepare' && rs.phase !== 'copy')) return [];
  return pairsOf(rs)
    .filter((p) => !p.copied)
    .map(({ source, target }) => ({ source, target }));
}

/** The phase's share of a reshard, for describe's `progress` (the copy is most of it). */
const PROGRESS: Record<ReshardRecord['phase'], number> = { prepare: 0, copy: 0.05, 'catch-up': 0.7, fence: 0.85, switch: 0.9, cleanup: 0.97, done: 1 };

/**
 * describe's `progress`, 0..1: by phase, and during the copy by bytes, from the copy's start
 * (0.05) to the catch-up's (0.7) as the bytes copied reach the bytes to copy.
 */
export function reshardProgress(rs: ReshardRecord): number {
  const at = PROGRESS[rs.phase];
  if (rs.phase !== 'copy' || !rs.bytesTotal || rs.bytesTotal <= 0) return at;
  const f = Math.min(1, Math.max(0, (rs.bytesCopied ?? 0) / rs.bytesTotal));
  return Math.round((at + (PROGRESS['catch-up'] - at) * f) * 1000) / 1000;
}

/** A reshard's totals over its pairs: bytes copied, and bytes to copy (absent while any pair's is unknown). */
export function pairTotals(pairs: readonly ReshardPairRecord[]): { bytesCopied: number; bytesTotal?: number } {
  const bytesCopied = pairs.reduce((n, p) => n + p.bytesCopied, 0);
  if (pairs.some((p) => p.bytesTotal === null)) return { bytesCopied };
  return { bytesCopied, bytesTotal: pairs.reduce((n, p) => n + (p.bytesTotal ?? 0), 0) };
}
