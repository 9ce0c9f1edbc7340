/**
 * The data operations of one collection. Each fits every request and reply in one NATS message:
 * an operation too large for the server's max payload is split into several requests whose
 * replies are merged (PROTOCOL.md's byte limits; docs/protocol.md, "Sizes").
 */
import { randomUUID } from 'node:crypto';
import { DEFAULTS, LIMITS } from '../api/limits.js';
import type { Hit, Point, SearchReply } from '../api/types.js';
import { errorFromCode, PayloadTooLargeError, ShoalError } from '../runtime/errors.js';
import type { ReadOptions, SearchOptions, ShoalClient, UpsertPoint, WriteOptions } from './client.js';
import {
  chunkBySize,
  encodedBytes,
  firstOfEach,
  lastOfEach,
  partRequestId,
  payloadBudget,
  pointOverheadBytes,
  pointRequestBound,
  SPLIT_CONCURRENCY,
  vectorReplyBytes,
} from './payload-split.js';

/** A hit's bytes besides its vector and metadata, for a search's estimate (ids are not known before the reply). */
const HIT_OVERHEAD_BYTES = 128;

export interface GetOptions extends ReadOptions {
  withVector?: boolean;
  withMetadata?: boolean;
}

export class CollectionClient {
  /** The collection's dimension, asked once when a get's reply size depends on it. */
  private dim: Promise<number> | undefined;

  constructor(
    private readonly client: ShoalClient,
    readonly name: string,
  ) {}

  /**
   * Upserts points; without a `requestId` one is made, so the client's hedged copy can never apply
   * twice. Points that do not fit in one request are sent in several (a repeated id kept once, the
   * last one), part i with the requestId `<requestId>/part-i-of-n`: a retry of the same call with
   * the same requestId and points applies each part at most once. The parts are not atomic
   * together: on an error, the message says how many were applied.
   */
  async upsert(points: UpsertPoint[], opts: WriteOptions = {}): Promise<number> {
    const requestId = opts.requestId ?? randomUUID();
    const encoding = this.client.encoding;
    const budget = payloadBudget(this.client.maxPayload);
    let total = 0;
    for (const p of points) total += pointRequestBound(p, encoding);
    if (total <= budget && points.length <= LIMITS.pointsPerUpsert) {
      return (await this.call<{ upserted: number }>('upsert', { points, ...opts, requestId })).upserted;
    }
    const parts = chunkBySize(lastOfEach(points, (p) => p.id), (p) => encodedBytes(p, encoding), budget, LIMITS.pointsPerUpsert);
    const deadline = this.deadline(opts.timeoutMs);
    const counts = await this.writeParts(parts.length, requestId, (i) =>
      this.call<{ upserted: number }>('upsert', { points: parts[i], ...opts, requestId: partRequestId(requestId, i, parts.length), timeoutMs: remaining(deadline) }).then((r) => r.upserted),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Deletes points by id; split like {@link upsert} (a repeated id kept once) when the ids do not fit in one request. */
  async delete(ids: string[], opts: WriteOptions = {}): Promise<number> {
    const requestId = opts.requestId ?? randomUUID();
    const encoding = this.client.encoding;
    const budget = payloadBudget(this.client.maxPayload);
    let total = 0;
    for (const id of ids) total += encodedBytes(id, encoding);
    if (total <= budget && ids.length <= LIMITS.idsPerRequest) {
      return (await this.call<{ deleted: number }>('delete', { ids, ...opts, requestId })).deleted;
    }
    const parts = chunkBySize(firstOfEach(ids, (id) => id), (id) => encodedBytes(id, encoding), budget, LIMITS.idsPerRequest);
    const deadline = this.deadline(opts.timeoutMs);
    const counts = await this.writeParts(parts.length, requestId, (i) =>
      this.call<{ deleted: number }>('delete', { ids: parts[i], ...opts, requestId: partRequestId(requestId, i, parts.length), timeoutMs: remaining(deadline) }).then((r) => r.deleted),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Points by id, in request order (a repeated id once, at its first position). Ids whose reply
   * would not fit in one message are asked in several requests, by the collection's dimension
   * (asked once) and, for metadata the client cannot foresee, by halving a request that is
   * answered PAYLOAD_TOO_LARGE. Each request is read at `consistency` on its own.
   */
  async get(ids: string[], opts: GetOptions = {}): Promise<Point[]> {
    const encoding = this.client.encoding;
    const budget = payloadBudget(this.client.maxPayload);
    const withVector = opts.withVector !== false;
    const worst = withVector ? vectorReplyBytes(LIMITS.dimMax, encoding) : 0;
    let vectorBytes = worst;
    let perId = (id: string): number => pointOverheadBytes(id) + vectorBytes;
    let total = 0;
    for (const id of ids) total += perId(id);
    if (total <= budget && ids.length <= LIMITS.idsPerRequest) return this.getOnce(ids, opts);
    if (withVector) {
      vectorBytes = vectorReplyBytes(await this.dimension(), encoding);
      perId = (id) => pointOverheadBytes(id) + vectorBytes;
    }
    const chunks = chunkBySize(firstOfEach(ids, (id) => id), perId, budget, LIMITS.idsPerRequest);
    if (chunks.length === 1) return this.getHalving(chunks[0] as string[], opts);
    const deadline = this.deadline(opts.timeoutMs);
    const parts = await inBatches(chunks.length, (i) => this.getHalving(chunks[i] as string[], { ...opts, timeoutMs: remaining(deadline) }));
    return parts.flat();
  }

  /**
   * The k nearest neighbours of `vector`. When the hits' vectors (or metadata) would not fit in one
   * reply, the client searches for ids and distances only, then reads the vectors and metadata of
   * the hits with {@link get}: a point written between the two reads shows its newer vector, and a
   * point deleted between them keeps its hit without vector or metadata.
   */
  async search(vector: number[] | Float32Array, opts: SearchOptions = {}): Promise<SearchReply> {
    const k = opts.k ?? DEFAULTS.k;
    const estimate = k * (HIT_OVERHEAD_BYTES + (opts.withVector ? vectorReplyBytes(vector.length, this.client.encoding) : 0));
    const thin = (): Promise<SearchReply> => this.searchThenGet(vector, opts);
    if (opts.withVector && estimate > payloadBudget(this.client.maxPayload)) return thin();
    try {
      return await this.call<SearchReply>('search', { vector, ...opts });
    } catch (err) {
      if (err instanceof PayloadTooLargeError && (opts.withVector || opts.withMetadata !== false)) return thin();
      throw err;
    }
  }

  async searchBatch(queries: (SearchOptions & { vector: number[] | Float32Array })[], timeoutMs?: number): Promise<SearchReply[]> {
    const r = await this.call<{ results: SearchReply[] }>('search-batch', { queries, ...(timeoutMs ? { timeoutMs } : {}) });
    return r.results;
  }

  async count(opts: ReadOptions = {}): Promise<number> {
    const r = await this.call<{ count: number }>('count', { ...opts });
    return r.count;
  }

  private async searchThenGet(vector: number[] | Float32Array, opts: SearchOptions): Promise<SearchReply> {
    const deadline = this.deadline(opts.timeoutMs);
    const r = await this.call<SearchReply>('search', { vector, ...opts, withVector: false, withMetadata: false });
    const withVector = opts.withVector ?? false;
    const withMetadata = opts.withMetadata ?? true;
    if (r.hits.length === 0 || (!withVector && !withMetadata)) return r;
    const got = await this.get(
      r.hits.map((h) => h.id),
      { withVector, withMetadata, timeoutMs: remaining(deadline), ...(opts.consistency ? { consistency: opts.consistency } : {}) },
    );
    const byId = new Map(got.map((p) => [p.id, p]));
    const hits = r.hits.map((h): Hit => {
      const p = byId.get(h.id);
      return { ...h, ...(p?.vector !== undefined ? { vector: p.vector } : {}), ...(p?.metadata !== undefined ? { metadata: p.metadata } : {}) };
    });
    return { ...r, hits };
  }

  private async getOnce(ids: string[], opts: GetOptions): Promise<Point[]> {
    return (await this.call<{ points: Point[] }>('get', { ids, ...opts })).points;
  }

  /** One get; answered PAYLOAD_TOO_LARGE (metadata larger than foreseen), its halves instead. */
  private async getHalving(ids: string[], opts: GetOptions): Promise<Point[]> {
    try {
      return await this.getOnce(ids, opts);
    } catch (err) {
      if (!(err instanceof PayloadTooLargeError) || ids.length < 2) throw err;
      const mid = Math.ceil(ids.length / 2);
      const [a, b] = await Promise.all([this.getHalving(ids.slice(0, mid), opts), this.getHalving(ids.slice(mid), opts)]);
      return [...a, ...b];
    }
  }

  private dimension(): Promise<number> {
    // Without it (the collection is missing, the cluster is slow), the largest dimension allowed:
    // the gets that follow report the real error, or succeed in smaller pieces.
    this.dim ??= this.client.describeCollection(this.name).then(
      (c) => c.dim,
      () => {
        this.dim = undefined;
        return LIMITS.dimMax;
      },
    );
    return this.dim;
  }

  /** Runs the parts of a split write; a failure names how many parts were applied. */
  private async writeParts(n: number, requestId: string, send: (i: number) => Promise<number>): Promise<number[]> {
    let applied = 0;
    try {
      return await inBatches(n, (i) => send(i).then((r) => (applied++, r)));
    } catch (err) {
      if (!(err instanceof ShoalError)) throw err;
      const how = `${applied} of its ${n} parts were applied; the same call with the same points and requestId ('${requestId}') applies each part at most once`;
      throw errorFromCode(err.code, `${err.message} (this write was split in ${n} requests to fit the NATS server's max payload: ${how})`, { cause: err });
    }
  }

  private deadline(timeoutMs: number | undefined): number {
    return Date.now() + (timeoutMs ?? this.client.timeoutMs);
  }

  private call<T>(op: string, body: Record<string, unknown>): Promise<T> {
    const clean = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    return this.client.request<T>(this.client.apiSubject(this.name, op), clean, body['timeoutMs'] as number | undefined);
  }
}

/** What is left until `deadline`, at least 1 ms. */
function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

/**
 * `run(0) … run(n-1)`, at most {@link SPLIT_CONCURRENCY} at a time; the results in order. After a
 * failure no new one starts, and the first failure rejects once those in flight have settled (so
 * that a split write's count of applied parts is final).
 */
async function inBatches<T>(n: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(n);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < n && !failure) {
      const i = next++;
      try {
        results[i] = await run(i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, SPLIT_CONCURRENCY) }, worker));
  if (failure) throw failure.err;
  return results;
}
