/** The record a shard state machine keeps about itself in LMDB (`[group, 'meta']`). */
import type { Metric } from '../index/mod.js';

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
}

export function freshMeta(dim: number, metric: Metric): ShardMeta {
  return { format: META_FORMAT, dim, metric, appliedIndex: 0, count: 0, maxAt: Number.NEGATIVE_INFINITY, checkpointIndex: 0, restoring: false };
}
