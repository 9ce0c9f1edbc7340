/**
 * The TypeScript client for Shoal's public protocol (PROTOCOL.md): every subject, JSON or CBOR,
 * and every error code revived as its own class (`InvalidArgumentError`, `NotFoundError`, …).
 */
import { connect, headers as natsHeaders, RequestError, TimeoutError as NatsTimeoutError, type NatsConnection } from '@nats-io/transport-node';
import type { CollectionSpec, Consistency, Coverage, Hit, Metric, Point, SearchReply, ShardingConfig, WriteConcern } from '../api/types.js';
import { CBOR_CONTENT_TYPE, decodeBody, encodeBody, encodingOf, type Encoding } from '../runtime/codec.js';
import { errorFromCode, InternalError, isWireError, TimeoutError, UnavailableError, describeError } from '../runtime/errors.js';
import { Subjects } from '../runtime/subjects.js';

export interface ClientOptions {
  /** NATS URL(s); ignored when `nc` is given. Default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /** An existing connection (the client will not close it). */
  nc?: NatsConnection;
  /** Subject prefix of the cluster (default `shoal`). */
  prefix?: string;
  /** Request encoding (default `json`). */
  encoding?: Encoding;
  /** Default deadline of a request, sent as `timeoutMs` (default 5000). */
  timeoutMs?: number;
}

/** How much longer than the request's own deadline the client waits for the cluster's answer. */
export const REPLY_GRACE_MS = 1_000;

export interface CreateCollectionOptions {
  name: string;
  dim: number;
  metric?: Metric;
  shards?: number;
  replicas?: number;
  sharding?: Partial<ShardingConfig> & { strategy: ShardingConfig['strategy'] };
  hnsw?: { m?: number; efConstruction?: number; ef?: number };
}

export interface ShardDescription {
  shard: number;
  leader: string | null;
  term: number;
  commitIndex: number;
  count: number;
  replicas: { node: string; role: 'leader' | 'follower' | 'learner' | 'down'; matchIndex: number; lagMs: number | null }[];
}

export interface CollectionDescription extends Omit<CollectionSpec, 'shards'> {
  count: number;
  shards: ShardDescription[];
}

export interface CollectionSummary {
  name: string;
  dim: number;
  metric: Metric;
  shards: number;
  replicas: number;
  count: number;
}

export interface ClusterStatus {
  nodes: { id: string; state: 'up' | 'down' | 'maintenance'; lastHeartbeatMs: number | null; replicas: number; leaders: number }[];
  epoch: number;
}

export interface ClusterHealth {
  healthy: boolean;
  shards: { collection: string; shard: number; leader: string | null; healthyFollowers: number; totalFollowers: number }[];
}

export interface WriteOptions {
  writeConcern?: WriteConcern;
  requestId?: string;
  timeoutMs?: number;
}

export interface ReadOptions {
  consistency?: Consistency;
  timeoutMs?: number;
}

export interface SearchOptions extends ReadOptions {
  k?: number;
  ef?: number;
  filter?: Record<string, unknown>;
  withVector?: boolean;
  withMetadata?: boolean;
  shardKeys?: string[];
}

export interface UpsertPoint {
  id: string;
  vector: number[] | Float32Array;
  metadata?: Record<string, unknown>;
  shardKey?: string;
}

export type { Coverage, Hit, Point, SearchReply };

export class ShoalClient {
  private readonly subjects: Subjects;
  private readonly encoding: Encoding;
  private readonly timeoutMs: number;

  private constructor(
    readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    opts: ClientOptions,
  ) {
    this.subjects = new Subjects(opts.prefix);
    this.encoding = opts.encoding ?? 'json';
    this.timeoutMs = opts.timeoutMs ?? 5_000;
  }

  static async connect(opts: ClientOptions = {}): Promise<ShoalClient> {
    if (opts.nc) return new ShoalClient(opts.nc, false, opts);
    const servers = opts.servers ?? 'nats://127.0.0.1:4222';
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, name: 'shoal-client', noAsyncTraces: true });
    } catch (err) {
      throw new UnavailableError(`cannot connect to NATS at ${String(servers)}: ${describeError(err)}`, { cause: err });
    }
    return new ShoalClient(nc, true, opts);
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.nc.drain();
  }

  // ---- admin ----

  createCollection(spec: CreateCollectionOptions, timeoutMs?: number): Promise<CollectionDescription> {
    return this.admin<{ collection: CollectionDescription }>('collections', 'create', { ...spec }, timeoutMs).then((r) => r.collection);
  }

  listCollections(timeoutMs?: number): Promise<CollectionSummary[]> {
    return this.admin<{ collections: CollectionSummary[] }>('collections', 'list', {}, timeoutMs).then((r) => r.collections);
  }

  describeCollection(name: string, timeoutMs?: number): Promise<CollectionDescription> {
    return this.admin<{ collection: CollectionDescription }>('collections', 'describe', { name }, timeoutMs).then((r) => r.collection);
  }

  dropCollection(name: string, timeoutMs?: number): Promise<boolean> {
    return this.admin<{ dropped: boolean }>('collections', 'drop', { name }, timeoutMs).then((r) => r.dropped);
  }

  clusterStatus(timeoutMs?: number): Promise<ClusterStatus> {
    return this.admin<ClusterStatus>('cluster', 'status', {}, timeoutMs);
  }

  clusterHealth(timeoutMs?: number): Promise<ClusterHealth> {
    return this.admin<ClusterHealth>('cluster', 'health', {}, timeoutMs);
  }

  // ---- data ----

  collection(name: string): CollectionClient {
    return new CollectionClient(this, name);
  }

  /** One request to `<prefix>.v1.<collection>.<op>` (or an admin subject); errors thrown as their classes. */
  async request<T>(subject: string, body: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    const deadline = timeoutMs ?? (body['timeoutMs'] as number | undefined) ?? this.timeoutMs;
    const payload = encodeBody({ ...body, timeoutMs: deadline }, this.encoding);
    let h;
    if (this.encoding === 'cbor') {
      h = natsHeaders();
      h.set('Content-Type', CBOR_CONTENT_TYPE);
    }
    let res;
    try {
      res = await this.nc.request(subject, payload, { timeout: deadline + REPLY_GRACE_MS, ...(h ? { headers: h } : {}) });
    } catch (err) {
      if (err instanceof RequestError && err.isNoResponders()) {
        throw new UnavailableError(`no Shoal router answers on ${subject}: is a cluster running with prefix '${this.subjects.prefix}'?`, { cause: err });
      }
      if (err instanceof NatsTimeoutError || (err instanceof RequestError && err.cause instanceof NatsTimeoutError)) {
        throw new TimeoutError(`no answer on ${subject} within ${deadline + REPLY_GRACE_MS} ms`, { cause: err });
      }
      throw new UnavailableError(`request on ${subject} failed: ${describeError(err)}`, { cause: err });
    }
    const decoded = decodeBody(res.data, encodingOf(res.headers));
    if (isWireError(decoded)) throw errorFromCode(decoded.error.code, decoded.error.message);
    if (typeof decoded !== 'object' || decoded === null) throw new InternalError(`unexpected reply on ${subject}: ${JSON.stringify(decoded)}`);
    return decoded as T;
  }

  apiSubject(collection: string, op: string): string {
    return this.subjects.api(collection, op);
  }

  private admin<T>(area: string, op: string, body: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    return this.request<T>(this.subjects.admin(area, op), body, timeoutMs);
  }
}

/** The data operations of one collection. */
export class CollectionClient {
  constructor(
    private readonly client: ShoalClient,
    readonly name: string,
  ) {}

  async upsert(points: UpsertPoint[], opts: WriteOptions = {}): Promise<number> {
    const r = await this.call<{ upserted: number }>('upsert', { points, ...opts });
    return r.upserted;
  }

  async delete(ids: string[], opts: WriteOptions = {}): Promise<number> {
    const r = await this.call<{ deleted: number }>('delete', { ids, ...opts });
    return r.deleted;
  }

  async get(ids: string[], opts: ReadOptions & { withVector?: boolean; withMetadata?: boolean } = {}): Promise<Point[]> {
    const r = await this.call<{ points: Point[] }>('get', { ids, ...opts });
    return r.points;
  }

  search(vector: number[] | Float32Array, opts: SearchOptions = {}): Promise<SearchReply> {
    return this.call<SearchReply>('search', { vector, ...opts });
  }

  async searchBatch(queries: (SearchOptions & { vector: number[] | Float32Array })[], timeoutMs?: number): Promise<SearchReply[]> {
    const r = await this.call<{ results: SearchReply[] }>('search-batch', { queries, ...(timeoutMs ? { timeoutMs } : {}) });
    return r.results;
  }

  async count(opts: ReadOptions = {}): Promise<number> {
    const r = await this.call<{ count: number }>('count', { ...opts });
    return r.count;
  }

  private call<T>(op: string, body: Record<string, unknown>): Promise<T> {
    const clean = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    return this.client.request<T>(this.client.apiSubject(this.name, op), clean, body['timeoutMs'] as number | undefined);
  }
}
