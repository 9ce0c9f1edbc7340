/**
 * The bytes of a reshard's pairs, from the shard statuses the driver polls anyway (no request of
 * its own): each target's leader reports what its importers proposed per source
 * (`ReshardStatus.imported`, counted in memory per run: a new leader or a restarted replica
 * starts a new run at 0), and each source's leader its point count.
 *
 * - `bytesCopied` of a pair: the sum over the runs seen of each run's last figure, plus what the
 *   record held before this coordinator saw any (a coordinator that took over: the record's
 *   figure less the runs it sees at first, so that those are not counted twice).
 * - `bytesTotal`: once the pair's copy is done (the target's cursor for the source is set), the
 *   bytes copied (the copy's bytes are then known; catch-up adds journal bytes to both). Before
 *   that an estimate: the source's point count × the share of the source's keys that go to this
 *   target × the average bytes of a point imported so far (this pair's, else the reshard's),
 *   never below the bytes copied. The share is sampled on 4,096 keys for the hash strategies
 *   (exact to a percent or so); for `range` the keys' spread is unknown, so a source's keys are
 *   taken as split evenly among its targets.
 */
import type { ShardingConfig } from '../../api/types.js';
import type { ReshardPairRecord, ReshardRecord } from '../../cluster/metadata.js';
import { sharderOf, type ShardMap } from '../../cluster/shard-map.js';
import type { ReshardShardStatus } from './reshard-driver.js';
import { pairsOf } from './reshard-moves.js';

/** Keys sampled to estimate the share of a source's keys that go to each target. */
export const SHARE_SAMPLE_KEYS = 4_096;

/**
 * Per pair `source:target`, the share of the source's keys that go to the target. For the hash
 * strategies by hashing {@link SHARE_SAMPLE_KEYS} sample keys under both maps; for `range`, an
 * even split of each source among its targets.
 */
export function pairShares(sharding: ShardingConfig, from: ShardMap, to: ShardMap, pairs: readonly { source: number; target: number }[]): Map<string, number> {
  const out = new Map<string, number>();
  if (sharding.strategy === 'range') {
    const targets = new Map<number, number>();
    for (const p of pairs) targets.set(p.source, (targets.get(p.source) ?? 0) + 1);
    for (const p of pairs) out.set(`${p.source}:${p.target}`, 1 / (targets.get(p.source) ?? 1));
    return out;
  }
  const a = sharderOf(sharding, from);
  const b = sharderOf(sharding, to);
  const owned = new Map<number, number>();
  const moving = new Map<string, number>();
  for (let i = 0; i < SHARE_SAMPLE_KEYS; i++) {
    const key = `key-${i}`;
    const s = a.shardOf(key);
    const t = b.shardOf(key);
    owned.set(s, (owned.get(s) ?? 0) + 1);
    if (s !== t) moving.set(`${s}:${t}`, (moving.get(`${s}:${t}`) ?? 0) + 1);
  }
  for (const p of pairs) {
    const k = `${p.source}:${p.target}`;
    out.set(k, (moving.get(k) ?? 0) / Math.max(1, owned.get(p.source) ?? 0));
  }
  return out;
}

interface PairTally {
  /** Per importer run: its last figures for this pair. */
  runs: Map<string, { bytes: number; points: number }>;
  /** Bytes counted before this coordinator saw the pair (null: not seen yet). */
  base: number | null;
}

export class ReshardProgress {
  private readonly tallies = new Map<string, PairTally>();
  private shares: Map<string, number> | null = null;

  /**
   * The pairs of `rec` after the statuses `st` of every group of both maps (by group id), from
   * the figures `rec.pairs` held (kept where a status says nothing new).
   */
  observe(rec: ReshardRecord, st: ReadonlyMap<string, ReshardShardStatus>): ReshardPairRecord[] {
    const before = pairsOf(rec);
    this.shares ??= pairShares(rec.sharding, rec.from, rec.to, before);
    const of = (map: ShardMap, shard: number): ReshardShardStatus | undefined => st.get(map.groups[shard] as string);
    const next = before.map((p) => {
      const key = `${p.source}:${p.target}`;
      const src = of(rec.from, p.source);
      const tgt = of(rec.to, p.target);
      const tally = this.tallies.get(key) ?? { runs: new Map(), base: null };
      this.tallies.set(key, tally);
      const imp = tgt?.imported;
      const fig = imp && imp.epoch === rec.to.epoch ? imp.bySource[p.source] : undefined;
      if (imp && fig) tally.runs.set(imp.run, { bytes: fig.bytes, points: fig.points });
      let seen = 0;
      for (const r of tally.runs.values()) seen += r.bytes;
      tally.base ??= Math.max(0, p.bytesCopied - seen);
      const bytesCopied = tally.base + seen;
      const copied = p.copied || (tgt?.state?.next?.epoch === rec.to.epoch && (tgt.state.cursors[p.source] ?? 0) > 0) || tgt?.state?.active.epoch === rec.to.epoch;
      return { ...p, from: src?.node ?? p.from, to: tgt?.node ?? p.to, bytesCopied, copied, bytesTotal: p.bytesTotal };
    });
    const avgAll = this.average(null);
    for (const p of next) {
      if (p.copied) {
        p.bytesTotal = p.bytesCopied;
        continue;
      }
      const count = of(rec.from, p.source)?.count;
      const avg = this.average(`${p.source}:${p.target}`) ?? avgAll;
      const share = this.shares.get(`${p.source}:${p.target}`) ?? 0;
      const estimate = count !== undefined && avg !== null ? Math.round(count * share * avg) : null;
      if (estimate !== null) p.bytesTotal = Math.max(estimate, p.bytesCopied);
      else if (p.bytesTotal !== null) p.bytesTotal = Math.max(p.bytesTotal, p.bytesCopied);
    }
    return next;
  }

  /** The average bytes of a point imported, for one pair (`source:target`) or all (null); null before any. */
  private average(key: string | null): number | null {
    let bytes = 0;
    let points = 0;
    for (const [k, t] of this.tallies) {
      if (key !== null && k !== key) continue;
      for (const r of t.runs.values()) {
        bytes += r.bytes;
        points += r.points;
      }
    }
    return points > 0 ? bytes / points : null;
  }
}
