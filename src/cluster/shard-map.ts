/**
 * A collection's shard map (docs/resharding.md): the shard count, the `range` boundaries, the Raft
 * group of each shard, and an epoch that grows by one with each reshard. Pure: what routers,
 * shards and the coordinator compute from a map, so that all of them compute it alike.
 */
import type { CollectionSpec, ShardingConfig } from '../api/types.js';
import { compareUtf8 } from '../index/utf8.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import { createSharder, type Sharder } from './sharding.js';

/** Shard counts a map may have (PROTOCOL.md: 1 to 256). */
export const SHARDS_MIN = 1;
export const SHARDS_MAX = 256;

export interface ShardMap {
  epoch: number;
  shards: number;
  /** `range` only: shards - 1 strictly increasing keys. */
  boundaries?: string[];
  /** The Raft group of each shard, by shard number. */
  groups: string[];
}

/** The group of `shard` in a collection's first map (epoch 0), as every collection had before resharding. */
export function initialGroupId(uid: string, shard: number): string {
  return `${uid}-${shard}`;
}

/** The map of a collection created with `shards` shards: epoch 0, groups `<uid>-<shard>`. */
export function initialMap(uid: string, sharding: ShardingConfig, shards: number): ShardMap {
  const map: ShardMap = { epoch: 0, shards, groups: Array.from({ length: shards }, (_, s) => initialGroupId(uid, s)) };
  if (sharding.strategy === 'range') map.boundaries = [...sharding.boundaries];
  return map;
}

/**
 * The map a reshard to `shards` (and, for `range`, `boundaries`) makes of `from`: the next epoch;
 * a shard number in both maps keeps its group, a new one gets `<uid>-e<epoch>-<shard>` (never an
 * id a dropped shard had, since the epoch is in it). Throws {@link InvalidArgumentError} naming
 * the field for a count out of 1..256, the current count (with the same boundaries), or bad boundaries.
 */
export function reshardedMap(uid: string, sharding: ShardingConfig, from: ShardMap, shards: number, boundaries?: readonly string[]): ShardMap {
  if (!Number.isInteger(shards) || shards < SHARDS_MIN || shards > SHARDS_MAX) {
    throw new InvalidArgumentError(`shards must be an integer from ${SHARDS_MIN} to ${SHARDS_MAX}, got ${JSON.stringify(shards)}`);
  }
  if (sharding.strategy !== 'range' && boundaries !== undefined) {
    throw new InvalidArgumentError(`boundaries is only for the 'range' strategy, not '${sharding.strategy}'`);
  }
  const epoch = from.epoch + 1;
  const to: ShardMap = {
    epoch,
    shards,
    groups: Array.from({ length: shards }, (_, s) => from.groups[s] ?? `${uid}-e${epoch}-${s}`),
  };
  if (sharding.strategy === 'range') {
    if (boundaries === undefined) throw new InvalidArgumentError(`boundaries is required for the 'range' strategy: shards - 1 = ${shards - 1} strictly increasing strings`);
    if (boundaries.length !== shards - 1) throw new InvalidArgumentError(`boundaries must have exactly shards - 1 = ${shards - 1} strings, got ${boundaries.length}`);
    for (let i = 1; i < boundaries.length; i++) {
      if (compareUtf8(boundaries[i - 1] as string, boundaries[i] as string) >= 0) {
        throw new InvalidArgumentError(`boundaries must be strictly increasing (by UTF-8 bytes): [${i - 1}] '${boundaries[i - 1]}' is not below [${i}] '${boundaries[i]}'`);
      }
    }
    to.boundaries = [...boundaries];
    if (shards === from.shards && to.boundaries.every((b, i) => b === from.boundaries?.[i])) {
      throw new InvalidArgumentError(`the collection already has ${shards} shards with these boundaries`);
    }
  } else if (shards === from.shards) {
    throw new InvalidArgumentError(`the collection already has ${shards} shards`);
  }
  return to;
}

/** The sharder of one map: which shard number owns a key (the id, or `shardKey` for `custom`). */
export function sharderOf(sharding: ShardingConfig, map: ShardMap): Sharder {
  return createSharder(sharding.strategy === 'range' ? { strategy: 'range', boundaries: map.boundaries ?? [] } : sharding, map.shards);
}

/** Which shard number owns a key under a map, for the shard's reshard decisions (src/shard/reshard-state.ts's OwnerOf). */
export function ownerOfFor(sharding: ShardingConfig): (map: ShardMap) => (key: string) => number {
  return (map) => {
    const s = sharderOf(sharding, map);
    return (key) => s.shardOf(key);
  };
}

/** A collection record's active map (records written before maps existed: epoch 0). */
export function activeMap(r: { uid: string; shards: number; sharding: ShardingConfig; map?: ShardMap | undefined }): ShardMap {
  return r.map ?? initialMap(r.uid, r.sharding, r.shards);
}

/**
 * The group of shard number `shard` of a collection, while a reshard runs too: a shard number is
 * in both maps with the same group, or in one of them only (a shard the new map adds, or one it
 * drops), so it names one group at any time.
 */
export function groupOf(r: { uid: string; shards: number; sharding: ShardingConfig; map?: ShardMap | undefined; resharding?: { from: ShardMap; to: ShardMap } | null | undefined }, shard: number): string {
  const active = activeMap(r);
  if (shard < active.shards) return active.groups[shard] as string;
  const rs = r.resharding;
  if (rs) {
    const other = rs.to.epoch === active.epoch ? rs.from : rs.to;
    if (shard < other.shards) return other.groups[shard] as string;
  }
  return initialGroupId(r.uid, shard);
}

/** The groups of `from` that `to` does not keep (dropped at a reshard's cleanup). */
export function droppedGroups(from: ShardMap, to: ShardMap): string[] {
  const kept = new Set(to.groups);
  return from.groups.filter((g) => !kept.has(g));
}

/**
 * The (source, target) shard pairs between which keys may move: for `hash`, `range` and the
 * rings, every pair whose key sets can intersect. Computed by sampling is not good enough for the
 * coordinator (a pair missed is a key lost), so this is by construction: every source to every
 * target but itself, except where the strategy proves a pair empty (a ring that only grew moves
 * keys only to the new shards; one that only shrank, only from the removed ones).
 */
export function movePairs(sharding: ShardingConfig, from: ShardMap, to: ShardMap): { source: number; target: number }[] {
  const pairs: { source: number; target: number }[] = [];
  const ring = sharding.strategy === 'consistent-hash' || sharding.strategy === 'custom';
  for (let source = 0; source < from.shards; source++) {
    for (let target = 0; target < to.shards; target++) {
      if (source === target && source < to.shards) continue;
      if (ring && to.shards > from.shards && target < from.shards) continue;
      if (ring && to.shards < from.shards && source < to.shards) continue;
      pairs.push({ source, target });
    }
  }
  return pairs;
}

/** A reshard as the coordinator drives it (src/actors/coordinator/reshard-driver.ts), kept in the collection's record. */
export interface ReshardRecord {
  collection: string;
  uid: string;
  sharding: CollectionSpec['sharding'];
  from: ShardMap;
  to: ShardMap;
  phase: 'prepare' | 'copy' | 'catch-up' | 'fence' | 'switch' | 'cleanup' | 'done';
  /** The coordinator's lease epoch at its last write. */
  epoch: number;
  startedAt: string;
  /** Per source shard: the index of its `fence` entry (from the `fence` phase on). */
  fences: Record<number, number>;
  /** Bytes to copy and copied over every pair, for describe's `progress` (the coordinator's estimate; see reshard-progress.ts). */
  bytesTotal?: number;
  bytesCopied?: number;
  /**
   * Per (source, target) pair that moves keys: what `rebalance.status` shows as a move of reason
   * `reshard`, and what every node's copy-rate split counts. Written by the coordinator with the
   * phases and at most once a second while the copy and catch-up run; absent until the first write.
   */
  pairs?: ReshardPairRecord[];
}

/** One (source, target) pair of a reshard (ReshardRecord.pairs). */
export interface ReshardPairRecord {
  source: number;
  target: number;
  /** The node of the source's leader, and of the target's (whose importer pulls), as last seen; null before. */
  from: string | null;
  to: string | null;
  /** Bytes of points (keys and encoded values) the target's importers proposed from this source, copy and journal. */
  bytesCopied: number;
  /** The estimate of the bytes to copy (exact once the copy is done); null before anything is known. */
  bytesTotal: number | null;
  /** Whether the copy of this pair is done (the target's cursor for the source is set): it no longer shares the copy rate. */
  copied: boolean;
}
