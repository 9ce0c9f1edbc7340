/**
 * This node's share of the cluster's copy rate (`maxBytesPerSec`, PROTOCOL.md rebalance.configure):
 * the moves in their copy phase share it evenly, and each node limits the snapshots it receives
 * to the share of the moves that target it. Every node computes the same split from the moves in
 * the metadata bucket, so the whole cluster copies at most `maxBytesPerSec`.
 */
import type { MoveRecord } from '../../cluster/metadata.js';
import { DEFAULT_REBALANCE } from './coordinator.js';

export class CopyRates {
  private readonly copying = new Map<string, string>();
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

  /** The rate this node receives snapshots at now (0: unlimited). */
  rate(): number {
    if (this.maxBytesPerSec === 0) return 0;
    const total = this.copying.size;
    const mine = [...this.copying.values()].filter((to) => to === this.node).length;
    if (total === 0 || mine === 0) return this.maxBytesPerSec;
    return Math.max(1, Math.floor((this.maxBytesPerSec * mine) / total));
  }

  private update(): void {
    const r = this.rate();
    if (r === this.applied) return;
    this.applied = r;
    this.apply(r);
  }
}
