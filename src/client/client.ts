/**
 * The TypeScript client for Shoal's public protocol (PROTOCOL.md): every subject, JSON or CBOR,
 * and every error code revived as its own class (`InvalidArgumentError`, `NotFoundError`, …).
 */
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { CollectionDescription, Consistency, Coverage, Hit, Metric, Point, SearchReply, ShardDescription, ShardingConfig, WriteConcern } from '../api/types.js';
import { CBOR_CONTENT_TYPE, decodeBody, encodeBody, encodingOf, type Encoding } from '../runtime/codec.js';
import { InboxRequester, isMaxPayload, isNoResponders, isRequestTimeout } from '../runtime/inbox-requester.js';
import { errorFromCode, InternalError, isWireError, PayloadTooLargeError, ShoalError, TimeoutError, UnavailableError, describeError, type ErrorCode } from '../runtime/errors.js';
import type { NatsSecurity } from '../runtime/nats-security.js';
import { Subjects } from '../runtime/subjects.js';
import { injectTrace } from '../runtime/tracing.js';
import { AnswerTimes } from './answer-times.js';
import { CollectionClient } from './collection-client.js';
import { DEFAULT_MAX_PAYLOAD } from './payload-split.js';

export interface ClientOptions {
  /** NATS URL(s); ignored when `nc` is given. Default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /** An existing connection (the client will not close it). */
  nc?: NatsConnection;
  /**
   * TLS (`{caFile, certFile, keyFile}`), an authenticator (`credsAuthenticator(...)`) or
   * `user`/`pass` for the connection the client opens; ignored when `nc` is given. Shoal's CLI
   * builds it from its flags (docs/security.md).
   */
  security?: NatsSecurity;
  /** How long to wait for the connection to the NATS server (default nats.js's, 20 s). */
  connectTimeoutMs?: number;
  /** Subject prefix of the cluster (default `shoal`). */
  prefix?: string;
  /** Request encoding (default `json`). */
  encoding?: Encoding;
  /** Default deadline of a request, sent as `timeoutMs` (default 5000). */
  timeoutMs?: number;
  /**
   * Send one more copy of a request that got no answer after this many milliseconds; the first
   * success wins, and an error reply from one copy waits for the other (unless it is about the
   * request itself). A NATS queue group keeps giving requests to a router that is paused (or
   * stuck) until the server notices it, and those requests would wait for the whole deadline; the
   * copy most likely reaches another router. Reads are idempotent, and writes carry a requestId
   * (the client adds one), so a copy never applies a write twice. 0 turns hedging off.
   *
   * Default: a quarter of the request's deadline, at most 1 s, or, when answers on the same subject
   * have lately taken longer, 1.5 times their 95th percentile (at most half the deadline): a copy
   * of a request that is only slow, as a bulk load's batches are, costs the cluster its work again
   * and gains nothing (answer-times.ts).
   */
  hedgeAfterMs?: number;
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
  /** Publish every committed write to the collection's JetStream stream (PROTOCOL.md, Change streams). */
  changeStream?: boolean;
  /** Metadata fields to index, by type (PROTOCOL.md, collections.create `indexes`). */
  indexes?: Record<string, 'keyword' | 'integer' | 'float' | 'bool'>;
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
  nodes: {
    id: string; state: 'up' | 'down' | 'dead' | 'maintenance' | 'draining'; lastHeartbeatMs: number | null; replicas: number; leaders: number; zone: string | null; moves: number;
    /** Its replicas whose data was found damaged and that do not serve yet (docs/operations.md, Corruption); absent from older nodes. */
    damaged?: { collection: string; shard: number; health: 'repairing' | 'failed'; file: string; problem: string; at: string }[];
  }[];
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
  /** Reply with each shard's plan in `explain` (docs/protocol.md). */
  explain?: boolean;
}

export interface UpsertPoint {
  id: string;
  vector: number[] | Float32Array;
  metadata?: Record<string, unknown>;
  shardKey?: string;
}

export type { CollectionDescription, Coverage, Hit, Point, SearchReply, ShardDescription };
export { CollectionClient, type GetOptions } from './collection-client.js';

export class ShoalClient {
  private readonly subjects: Subjects;
  /** The encoding of requests (and so of replies). */
  readonly encoding: Encoding;
  /** The default deadline of a request. */
  readonly timeoutMs: number;
  private readonly hedgeAfterMs: number | undefined;
  private readonly answerTimes = new AnswerTimes();
  private readonly requests: InboxRequester;

  private constructor(
    readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    opts: ClientOptions,
  ) {
    this.subjects = new Subjects(opts.prefix);
    this.encoding = opts.encoding ?? 'json';
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.hedgeAfterMs = opts.hedgeAfterMs;
    this.requests = new InboxRequester(nc);
  }

  static async connect(opts: ClientOptions = {}): Promise<ShoalClient> {
    if (opts.nc) return new ShoalClient(opts.nc, false, opts);
    const servers = opts.servers ?? 'nats://127.0.0.1:4222';
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, name: 'shoal-client', noAsyncTraces: true, ...(opts.connectTimeoutMs !== undefined ? { timeout: opts.connectTimeoutMs } : {}), ...opts.security });
    } catch (err) {
      // A server that requires client certificates closes a TLS connection without one after the
      // handshake, and nats.js then only reports a timeout.
      const hint = opts.security?.tls && !opts.security.tls.certFile ? ' (no client certificate was given: a server that requires one closes the connection)' : '';
      throw new UnavailableError(`cannot connect to NATS at ${String(servers)}: ${describeError(err)}${hint}`, { cause: err });
    }
    return new ShoalClient(nc, true, opts);
  }

  /**
   * The largest message the NATS server takes (its `max_payload`, 1 MiB unless configured):
   * every request and reply must fit, and the data operations split themselves to fit it.
   */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  }

  async close(): Promise<void> {
    this.requests.close();
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
  async request<T>(subject: string, body: Record<string, unknown>, timeoutMs?: number, opts: { hedge?: boolean } = {}): Promise<T> {
    const deadlineMs = timeoutMs ?? (body['timeoutMs'] as number | undefined) ?? this.timeoutMs;
    const start = Date.now();
    let bytes = 0;
    let h: MsgHdrs | undefined;
    if (this.encoding === 'cbor') {
      h = natsHeaders();
      h.set('Content-Type', CBOR_CONTENT_TYPE);
    }
    // The caller's trace, if it is in one: the router's span becomes its child.
    h = injectTrace(h);
    const attempt = async (): Promise<unknown> => {
      // a later copy asks for what is left of the deadline, so its answer is still in time
      const remaining = Math.max(1, deadlineMs - (Date.now() - start));
      const payload = encodeBody({ ...body, timeoutMs: remaining }, this.encoding);
      bytes = payload.length;
      const sent = performance.now();
      const res = await this.requests.request(subject, payload, { timeout: remaining + REPLY_GRACE_MS, headers: h });
      this.answerTimes.record(subject, performance.now() - sent);
      return decodeBody(res.data, encodingOf(res.headers));
    };
    // `hedge: false`: a request that must not run twice (a backup), whatever the client's setting
    const hedgeAfter = opts.hedge === false ? 0 : (this.hedgeAfterMs ?? this.answerTimes.hedgeDelay(subject, deadlineMs, Math.min(1_000, deadlineMs / 4)));
    let decoded: unknown;
    try {
      decoded = await (hedgeAfter > 0 ? hedged(attempt, hedgeAfter, answersAtOnce) : attempt());
    } catch (err) {
      if (err instanceof ShoalError) throw err;
      if (isMaxPayload(err)) {
        throw new PayloadTooLargeError(`the request on ${subject} (${bytes} bytes) is over the NATS server's max payload (${this.maxPayload} bytes): send fewer points or ids`, { cause: err });
      }
      if (isNoResponders(err)) {
        throw new UnavailableError(`no Shoal router answers on ${subject}: is a cluster running with prefix '${this.subjects.prefix}'?`, { cause: err });
      }
      if (isRequestTimeout(err)) {
        throw new TimeoutError(`no answer on ${subject} within ${deadlineMs + REPLY_GRACE_MS} ms`, { cause: err });
      }
      throw new UnavailableError(`request on ${subject} failed: ${describeError(err)}`, { cause: err });
    }
    if (isWireError(decoded)) throw errorFromCode(decoded.error.code, decoded.error.message);
    if (typeof decoded !== 'object' || decoded === null) throw new InternalError(`unexpected reply on ${subject}: ${JSON.stringify(decoded)}`);
    return decoded as T;
  }

  apiSubject(collection: string, op: string): string {
    return this.subjects.api(collection, op);
  }

  /** `<prefix>.v1.admin.<area>.<op>`. */
  adminSubject(area: string, op: string): string {
    return this.subjects.admin(area, op);
  }

  private admin<T>(area: string, op: string, body: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    return this.request<T>(this.adminSubject(area, op), body, timeoutMs);
  }
}

/**
 * Error replies that are about the request itself (its body), so every copy gets the same one:
 * the first answers at once. Any other error may be one copy's view of what the other copy did.
 */
const DEFINITIVE_ERRORS: ReadonlySet<ErrorCode> = new Set(['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE']);

/** Whether a reply answers a hedged request at once, even while another copy is out. */
function answersAtOnce(reply: unknown): boolean {
  return !isWireError(reply) || DEFINITIVE_ERRORS.has(reply.error.code);
}

/**
 * Runs `attempt`, and once more if it has not answered after `afterMs`. A reply for which
 * `answersAtOnce` holds wins at once; another (an error reply) waits while the other copy is out,
 * because a copy can fail by what the other copy did — a drop's copy finds nothing to drop — and
 * a success must not be reported as that failure. With no copy out, the first such reply
 * answers (an answer beats a timeout); with none, the last failure rejects. An attempt that
 * fails fast (no responders) is not copied.
 */
function hedged<T>(attempt: () => Promise<T>, afterMs: number, answersAtOnce: (reply: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let running = 0;
    let held: { reply: T } | undefined;
    let lastError: unknown;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      if (held) resolve(held.reply);
      else reject(lastError);
    };
    const launch = (): void => {
      running++;
      attempt().then(
        (reply) => {
          running--;
          if (settled) return;
          if (answersAtOnce(reply)) {
            held = { reply };
            finish();
            return;
          }
          held ??= { reply };
          if (running === 0) finish();
        },
        (err: unknown) => {
          running--;
          lastError = err;
          if (settled || running > 0) return;
          // before the copy is sent only a timeout waits for it: a fast failure (no responders) would fail it too
          if (timer === undefined || held || !isRequestTimeout(err)) finish();
        },
      );
    };
    launch();
    timer = setTimeout(() => {
      if (settled) return;
      launch();
      timer = undefined;
    }, afterMs);
  });
}
