/**
 * A router's view of the collections: kept current by watching the metadata bucket, and read
 * through to the bucket on a miss (a collection created a moment ago through another router may
 * not have reached this watcher yet).
 */
import type { MetadataStore, CollectionRecord } from './metadata.js';
import { activeMap, sharderOf } from './shard-map.js';
import type { Sharder } from './sharding.js';

export interface CachedCollection {
  record: CollectionRecord;
  revision: number;
  /** The sharder and the epoch of the record's active map (docs/resharding.md). */
  sharder: Sharder;
  epoch: number;
}

export class CollectionCache {
  private readonly byName = new Map<string, CachedCollection>();
  private stopWatch: (() => void) | undefined;
  private epochSeen = 0;

  constructor(private readonly meta: MetadataStore) {}

  async start(): Promise<void> {
    this.stopWatch = await this.meta.watch((ev) => {
      this.epochSeen = Math.max(this.epochSeen, ev.revision);
      if (ev.kind !== 'collection') return;
      if (ev.record) this.put(ev.record, ev.revision);
      else this.byName.delete(ev.name);
    });
  }

  stop(): void {
    this.stopWatch?.();
  }

  /** The collection, or undefined if it does not exist (checked against the bucket on a miss). */
  async get(name: string): Promise<CachedCollection | undefined> {
    const hit = this.byName.get(name);
    if (hit) return hit;
    const fresh = await this.meta.getCollection(name);
    return fresh ? this.put(fresh.value, fresh.revision) : undefined;
  }

  /** The collection read from the bucket now (not waiting for the watch), or undefined if it does not exist. */
  async refresh(name: string): Promise<CachedCollection | undefined> {
    const fresh = await this.meta.getCollection(name);
    return fresh ? this.put(fresh.value, fresh.revision) : undefined;
  }

  /** The map epoch held now for a collection (no bucket read), or undefined. */
  epochOf(name: string): number | undefined {
    return this.byName.get(name)?.epoch;
  }

  /** Forgets a collection (after a drop through this router). */
  forget(name: string): void {
    this.byName.delete(name);
  }

  all(): CachedCollection[] {
    return [...this.byName.values()].sort((a, b) => (a.record.name < b.record.name ? -1 : 1));
  }

  private put(record: CollectionRecord, revision: number): CachedCollection {
    const current = this.byName.get(record.name);
    if (current && current.revision >= revision) return current;
    const map = activeMap(record);
    const entry = { record, revision, sharder: sharderOf(record.sharding, map), epoch: map.epoch };
    this.byName.set(record.name, entry);
    return entry;
  }
}
