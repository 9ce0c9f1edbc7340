/**
 * Which shard a point lives in, for the four strategies of PROTOCOL.md:
 * - `consistent-hash`: the id's hash on a ring where every shard owns `vnodes` points;
 * - `hash`: the id's hash modulo the shard count;
 * - `range`: shard i holds ids from boundary i-1 (inclusive) to boundary i (exclusive), by UTF-8 bytes;
 * - `custom`: like consistent-hash, but over the point's `shardKey`, so one key's points live together.
 */
import type { ShardingConfig } from '../api/types.js';
import { compareUtf8 } from '../index/utf8.js';
import { murmur3 } from './hash.js';

export interface Sharder {
  readonly shards: number;
  /** The shard of a point; `key` is the shard key for `custom` and the id otherwise. */
  shardOf(key: string): number;
}

export function createSharder(config: ShardingConfig, shards: number): Sharder {
  switch (config.strategy) {
    case 'consistent-hash':
    case 'custom':
      return new HashRing(shards, config.vnodes);
    case 'hash':
      return { shards, shardOf: (key) => murmur3(key) % shards };
    case 'range':
      return new RangeSharder(shards, config.boundaries);
  }
}

/** A consistent-hash ring: `vnodes` positions per shard; a key belongs to the first position at or after its hash. */
export class HashRing implements Sharder {
  private readonly positions: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(
    readonly shards: number,
    vnodes: number,
  ) {
    const entries: [number, number][] = [];
    for (let s = 0; s < shards; s++) {
      for (let v = 0; v < vnodes; v++) entries.push([murmur3(`shard-${s}-vnode-${v}`), s]);
    }
    // ties (vanishingly rare) broken by shard so the ring is the same everywhere
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.positions = Uint32Array.from(entries, (e) => e[0]);
    this.owners = Uint16Array.from(entries, (e) => e[1]);
  }

  shardOf(key: string): number {
    const h = murmur3(key);
    let lo = 0;
    let hi = this.positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.positions[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === this.positions.length ? 0 : lo] as number;
  }
}

export class RangeSharder implements Sharder {
  constructor(
    readonly shards: number,
    private readonly boundaries: string[],
  ) {}

  shardOf(key: string): number {
    // the number of boundaries <= key
    let lo = 0;
    let hi = this.boundaries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareUtf8(this.boundaries[mid] as string, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
