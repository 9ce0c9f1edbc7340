/**
 * This node's shares of the cluster's copy rate (`maxBytesPerSec`, PROTOCOL.md rebalance.configure).
 * What shares it: each move in `prepare` or `copy`, and each (source, target) pair of a reshard
 * whose copy is not done while the reshard is in `prepare` or `copy` (reshard-moves.ts,
 * copyingPairs) — one share each, evenly. A node limits the snapshots it receives to the shares
 * of the moves that target it, and a reshard target's importer on it paces its copy pages to the
 * shares of the pairs that target its shard (importer.ts; its pulls are one at a time, so one
 * bucket for all its sources). Every node computes the same split from the moves and collection
 * records in the metadata bucket, so the whole cluster copies at most `maxBytesPerSec` (up to
 * the lag of each node's watch, and of the coordinator's writes of a pair's copy being done, at
 * most a second).
 */
import type { CollectionRecord, MoveRecord } from '../../cluster/metadata.js';
import { DEFAULT_REBALANCE } from './coordinator.js';
import { copyingPairs } from './reshard-moves.js';

export class CopyRates {
  /** Moves sharing the rate: id → target node. */
  private readonly copying = new Map<string, string>();
  /** Per collection name: its uid and the target shards of its reshard's pairs sharing the rate. */
  private readonly reshards = new Map<string, { uid: string; targets: number[] }>();
  private maxBytesPerSec = DEFAULT_REBALANCE.maxBytesPerSec;
  private applied = -1;

  constructor(
    private readonly node: string,
    private readonly apply: (bytesPerSec: number) => void,
  ) {
    this.update();
  }

  configure(maxBytesPerSec: number): void {
    this.maxBytesPerSec = maxBytesPerSec;
    this.update();
  }

  move(id: string, record: MoveRecord | null): void {
    if (record && (record.phase === 'prepare' || record.phase === 'copy')) this.copying.set(id, record.to);
    else this.copying.delete(id);
    this.update();
  }

  /** A collection's record changed (null: dropped): its reshard's copying pairs. */
  collection(name: string, record: CollectionRecord | null): void {
    const pairs = copyingPairs(record?.resharding);
    if (record && pairs.length > 0) this.reshards.set(name, { uid: record.uid, targets: pairs.map((p) => p.target) });
    else this.reshards.delete(name);
    this.update();
  }

  /** The rate this node receives snapshots at now (0: unlimited). */
  rate(): number {
    if (this.maxBytesPerSec === 0) return 0;
    const total = this.shares();
    const mine = [...this.copying.values()].filter((to) => to === this.node).length;
    if (total === 0 || mine === 0) return this.maxBytesPerSec;
    return Math.max(1, Math.floor((this.maxBytesPerSec * mine) / total));
  }

  /**
   * The rate shard `shard` of collection `uid` may import its reshard copy at now (0: unlimited):
   * the shares of its pairs. A target the records do not show copying yet (this node's watch
   * lags the coordinator) gets one share.
   */
  importRate(uid: string, shard: number): number {
    if (this.maxBytesPerSec === 0) return 0;
    let mine = 0;
    for (const r of this.reshards.values()) if (r.uid === uid) mine += r.targets.filter((t) => t === shard).length;
    const total = this.shares();
    if (mine === 0) return Math.max(1, Math.floor(this.maxBytesPerSec / (total + 1)));
    return Math.max(1, Math.floor((this.maxBytesPerSec * mine) / total));
  }

  /** How many share the rate now. */
  private shares(): number {
    let n = this.copying.size;
    for (const r of this.reshards.values()) n += r.targets.length;
    return n;
  }

  private update(): void {
    const r = this.rate();
    if (r === this.applied) return;
    this.applied = r;
    this.apply(r);
  }
}
