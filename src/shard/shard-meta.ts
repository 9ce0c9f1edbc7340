/** The record a shard state machine keeps about itself in LMDB (`[group, 'meta']`). */
import type { Metric } from '../index/mod.js';
import type { ReshardState } from './reshard-state.js';

export const META_FORMAT = 1;

export interface ShardMeta {
  format: number;
  dim: number;
  metric: Metric;
  /** Last log index applied (0 = none). Committed in the same transaction as the entries' effects. */
  appliedIndex: number;
  /** Live points. */
  count: number;
  /** Highest command `at` applied: the clock of dedup expiry. */
  maxAt: number;
  /** Log index of the newest durable index checkpoint (0 = none: the journal starts at the beginning). */
  checkpointIndex: number;
  /** True while a snapshot is being installed: a restart finding it wipes the group and starts empty. */
  restoring: boolean;
  /**
   * The shard's maps (docs/resharding.md); null (or absent, in records written before) for a
   * shard that has never taken part in a reshard: it serves epoch 0 and checks no ownership.
   */
  reshard?: ReshardState | null;
  /** Points stored but not visible at the epoch the shard serves (a target's imports, a source's moved points): `count` excludes them. */
  hidden?: number;
}

export function freshMeta(dim: number, metric: Metric): ShardMeta {
  return { format: META_FORMAT, dim, metric, appliedIndex: 0, count: 0, maxAt: Number.NEGATIVE_INFINITY, checkpointIndex: 0, restoring: false };
}
