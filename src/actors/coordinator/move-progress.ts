/**
 * When each move in flight last made progress, for the metrics and the alert on a move that makes
 * none (deploy/prometheus/alerts.yml, ShoalMoveNoProgress; docs/metrics.md, Moves). The active
 * coordinator shows it every tick the moves it runs and the pairs of running reshards; a move has
 * progressed when it is first seen, or when its phase, its target or its bytes copied changed
 * since the last tick. A move stuck in one phase — a copy whose bytes stay put, a catch-up that
 * never comes within reach, a switch whose leadership transfer never takes — stops progressing.
 * Pure: time comes from the caller.
 */

/** What the tracker reads of a move (a MoveRecord or a reshard pair's shown move). */
export interface MoveSeen {
  id: string;
  collection: string;
  shard: number;
  to: string;
  phase: string;
  bytesCopied: number;
}

export interface MoveProgressEntry {
  id: string;
  collection: string;
  shard: number;
  bytesCopied: number;
  /** Milliseconds (the caller's clock) at which the move last progressed. */
  lastProgressMs: number;
}

export class MoveProgress {
  private readonly moves = new Map<string, { key: string; entry: MoveProgressEntry }>();

  /** The moves in flight now, at `nowMs`; those not in `moves` are done and forgotten. */
  observe(moves: readonly MoveSeen[], nowMs: number): void {
    const seen = new Set<string>();
    for (const m of moves) {
      seen.add(m.id);
      const key = `${m.phase}\u0000${m.to}\u0000${m.bytesCopied}`;
      const cur = this.moves.get(m.id);
      if (cur && cur.key === key) continue;
      this.moves.set(m.id, { key, entry: { id: m.id, collection: m.collection, shard: m.shard, bytesCopied: m.bytesCopied, lastProgressMs: nowMs } });
    }
    for (const id of [...this.moves.keys()]) if (!seen.has(id)) this.moves.delete(id);
  }

  list(): MoveProgressEntry[] {
    return [...this.moves.values()].map((v) => ({ ...v.entry }));
  }

  /** Forgets every move (this coordinator is no longer the active one). */
  clear(): void {
    this.moves.clear();
  }
}
