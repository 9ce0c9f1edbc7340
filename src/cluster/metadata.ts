/**
 * Cluster metadata in a JetStream KV bucket (`<prefix>-meta`): collections with their shard
 * maps, and the registry of nodes that ever joined. Every change is a compare-and-set on the
 * key's revision, so two admins (or two routers) cannot both win; nodes watch the bucket and
 * move their replicas to match. The epoch is the bucket's revision: it grows with every change.
 */
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CollectionSpec } from '../api/types.js';
import { AlreadyExistsError, UnavailableError, describeError } from '../runtime/errors.js';
import type { ShardPlacement } from './placement.js';

/** A collection as the control plane holds it. */
export interface CollectionRecord extends CollectionSpec {
  /**
   * Unique per creation: a dropped and re-created collection of the same name gets a new uid,
   * so its Raft groups and data never mix with the old ones.
   */
  uid: string;
  createdAt: string;
  placement: ShardPlacement[];
}

export interface NodeRecord {
  id: string;
  registeredAt: string;
}

export interface Versioned<T> {
  value: T;
  revision: number;
}

export type MetadataEvent =
  | { kind: 'collection'; name: string; record: CollectionRecord | null; revision: number }
  | { kind: 'node'; id: string; record: NodeRecord | null; revision: number };

export interface MetadataOptions {
  /** Replicas of the KV bucket's stream (3 in a clustered NATS). Default 1. */
  replicas?: number;
}

const COLLECTION_PREFIX = 'collections.';
const NODE_PREFIX = 'nodes.';

export class MetadataStore {
  private constructor(
    private readonly kv: KV,
    readonly bucket: string,
  ) {}

  static bucketName(prefix: string): string {
    return `${prefix}-meta`;
  }

  /** Opens the bucket, creating it when missing. */
  static async open(nc: NatsConnection, prefix: string, opts: MetadataOptions = {}): Promise<MetadataStore> {
    const bucket = MetadataStore.bucketName(prefix);
    try {
      const kv = await new Kvm(nc).create(bucket, { history: 5, replicas: opts.replicas ?? 1, storage: 'file' } as never);
      return new MetadataStore(kv, bucket);
    } catch (err) {
      throw new UnavailableError(`cannot open the metadata bucket ${bucket} (is JetStream enabled?): ${describeError(err)}`, { cause: err });
    }
  }

  async getCollection(name: string): Promise<Versioned<CollectionRecord> | undefined> {
    return this.read<CollectionRecord>(COLLECTION_PREFIX + name);
  }

  async listCollections(): Promise<Versioned<CollectionRecord>[]> {
    return this.readAll<CollectionRecord>(COLLECTION_PREFIX);
  }

  /** Creates a collection; fails with AlreadyExistsError if the key exists (CAS on "absent"). */
  async createCollection(record: CollectionRecord): Promise<number> {
    try {
      return await this.kv.create(COLLECTION_PREFIX + record.name, JSON.stringify(record));
    } catch (err) {
      if (isWrongRevision(err)) throw new AlreadyExistsError(`collection '${record.name}' was created concurrently`, { cause: err });
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** Replaces a collection's record if it is still at `revision`. */
  async updateCollection(record: CollectionRecord, revision: number): Promise<number> {
    try {
      return await this.kv.update(COLLECTION_PREFIX + record.name, JSON.stringify(record), revision);
    } catch (err) {
      if (isWrongRevision(err)) throw new AlreadyExistsError(`collection '${record.name}' changed concurrently`, { cause: err });
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** Deletes a collection's record if it is still at `revision`. Returns false if it changed meanwhile. */
  async deleteCollection(name: string, revision: number): Promise<boolean> {
    try {
      await this.kv.delete(COLLECTION_PREFIX + name, { previousSeq: revision });
      return true;
    } catch (err) {
      if (isWrongRevision(err)) return false;
      throw new UnavailableError(`metadata write failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** Records a node in the registry (idempotent). */
  async registerNode(id: string): Promise<void> {
    if (await this.read<NodeRecord>(NODE_PREFIX + id)) return;
    try {
      await this.kv.create(NODE_PREFIX + id, JSON.stringify({ id, registeredAt: new Date().toISOString() } satisfies NodeRecord));
    } catch (err) {
      if (!isWrongRevision(err)) throw new UnavailableError(`node registration failed: ${describeError(err)}`, { cause: err });
    }
  }

  async listNodes(): Promise<NodeRecord[]> {
    return (await this.readAll<NodeRecord>(NODE_PREFIX)).map((v) => v.value);
  }

  /** The bucket's latest revision: it grows with every metadata change. */
  async epoch(): Promise<number> {
    const status = await this.kv.status();
    return Number((status as unknown as { streamInfo: { state: { last_seq: number } } }).streamInfo.state.last_seq);
  }

  /**
   * Calls `onEvent` with every current record and then every change, in revision order, until
   * the returned function is called.
   */
  async watch(onEvent: (ev: MetadataEvent) => void): Promise<() => void> {
    // One filter on every key: several filters need nats-server 2.10, and Debian's is 2.9.
    const iter = await this.kv.watch({ key: '>' });
    void (async () => {
      for await (const e of iter) {
        const ev = toEvent(e);
        if (ev) onEvent(ev);
      }
    })();
    return () => iter.stop();
  }

  private async read<T>(key: string): Promise<Versioned<T> | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    return { value: e.json<T>(), revision: e.revision };
  }

  private async readAll<T>(prefix: string): Promise<Versioned<T>[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${prefix}>`)) keys.push(k);
    keys.sort();
    const out: Versioned<T>[] = [];
    for (const k of keys) {
      const v = await this.read<T>(k);
      if (v) out.push(v);
    }
    return out;
  }
}

function toEvent(e: KvEntry): MetadataEvent | undefined {
  const live = e.operation === 'PUT';
  if (e.key.startsWith(COLLECTION_PREFIX)) {
    return { kind: 'collection', name: e.key.slice(COLLECTION_PREFIX.length), record: live ? e.json<CollectionRecord>() : null, revision: e.revision };
  }
  if (e.key.startsWith(NODE_PREFIX)) {
    return { kind: 'node', id: e.key.slice(NODE_PREFIX.length), record: live ? e.json<NodeRecord>() : null, revision: e.revision };
  }
  return undefined;
}

function isWrongRevision(err: unknown): boolean {
  const text = `${describeError(err)} ${describeError((err as { cause?: unknown })?.cause ?? '')}`;
  return /wrong last sequence|key exists|10071/i.test(text);
}
