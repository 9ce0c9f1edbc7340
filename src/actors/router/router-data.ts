/**
 * The data operations of a router: validate against the collection, split by shard, call each
 * shard (retrying inside the deadline), and merge. Searches fan out to every shard (or to the
 * shards of the given `shardKeys`) and come back partial, with coverage, when some shards miss
 * the deadline.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Consistency, Coverage, Hit, Point, SearchExplainEntry, SearchReply, SearchRequest } from '../../api/types.js';
import { validateCount, validateDelete, validateGet, validateSearch, validateSearchBatch, validateUpsert } from '../../api/validate.js';
import type { CachedCollection } from '../../cluster/collection-cache.js';
import type { Clock } from '../../runtime/clock.js';
import { InternalError, NotFoundError, ShoalError, StaleMapError, TimeoutError, UnavailableError, toPublicError } from '../../runtime/errors.js';
import { withRequestId } from '../../runtime/request-context.js';
import type { Subjects } from '../../runtime/subjects.js';
import { parseFilter } from '../../index/mod.js';
import { mergeHits } from './merge.js';
import { checkChangeMessageSize } from './change-size.js';
import type { RouterMetrics } from '../node/node-metrics.js';
import type { LeaderWatch } from './leader-watch.js';
import { callShard, localReadAttemptMs, RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS, writeAttemptMs, type CallOptions, type Requester } from './shard-client.js';
import {
  anyReplicaSubject,
  leaderSubject,
  type CountResult,
  type GetResult,
  type SearchResult,
  type ShardPoint,
  type ShardQuery,
  type ShardRequest,
  type WriteResult,
} from '../shard-protocol.js';

export interface DataRouterDeps {
  metrics?: RouterMetrics | undefined;
  /**
   * Fault injection for tests, off unless the node's SHOAL_FAULTS names it: `internal` makes
   * every request on a collection named `fault-internal` fail as a bug would (INTERNAL).
   */
  faults?: ReadonlySet<string> | undefined;
  requester: Requester;
  /** The NATS server's max payload: a change-stream message must fit it (change-size.ts). */
  maxPayload?: () => number;
  /** True when this node holds a replica subscribed to `subject` (then a request to it stays in-process). */
  servesLocally?(subject: string): boolean;
  subjects: Subjects;
  /** The system's clock: deadlines, and the waits between a shard call's attempts. */
  clock: Clock;
  /** New leaders' announcements: a call waiting on a shard's leader goes again at the next one. */
  leaders?: LeaderWatch | undefined;
  /** The collection read again from the bucket (after a shard answered STALE_MAP). */
  refresh?(name: string): Promise<CachedCollection | undefined>;
  /** The map epoch the router's cache holds for a collection now (kept current by its watch). */
  cachedEpoch?(name: string): number | undefined;
}

/** The router answers a little before the client's deadline, so that a partial reply arrives in time. */
export function replyDeadline(start: number, timeoutMs: number): number {
  return start + timeoutMs - Math.min(20, timeoutMs * 0.05);
}

export class DataRouter {
  constructor(private readonly deps: DataRouterDeps) {}

  async upsert(c: CachedCollection, raw: unknown): Promise<{ upserted: number }> {
    const start = this.deps.clock.now();
    const req = validateUpsert(raw, c.record);
    // Within one upsert a repeated id: the last one wins.
    const last = new Map<string, (typeof req.points)[number]>();
    for (const p of req.points) {
      last.delete(p.id);
      last.set(p.id, p);
    }
    const requestId = req.requestId ?? `auto-${randomUUID()}`;
    const deadline = replyDeadline(start, req.timeoutMs);
    // Split by the map this router holds; a shard that serves another map sends the whole write
    // again on the new one, with the same requestId: each shard applies each id once. The id
    // is the request's in the logs of every node that handles it.
    return withRequestId(requestId, () => this.onMap(c, deadline, async (c) => {
      const byShard = new Map<number, ShardPoint[]>();
      for (const p of last.values()) {
        const shard = c.sharder.shardOf(p.shardKey ?? p.id);
        const list = byShard.get(shard) ?? [];
        const sp: ShardPoint = { id: p.id, vector: p.vector };
        if (p.metadata) sp.metadata = p.metadata;
        if (p.shardKey !== undefined) sp.shardKey = p.shardKey;
        list.push(sp);
        byShard.set(shard, list);
      }
      if (c.record.changeStream && this.deps.maxPayload) checkChangeMessageSize(c.record.name, byShard, this.deps.maxPayload());
      const results = await Promise.all(
        [...byShard].map(([shard, points]) =>
          this.write(c, shard, { type: 'write', write: { op: 'upsert', points }, requestId, concern: req.writeConcern, timeoutMs: req.timeoutMs, mapEpoch: c.epoch }, deadline),
        ),
      );
      return { upserted: results.reduce((n, r) => n + ('upserted' in r ? r.upserted : 0), 0) };
    }));
  }

  async delete(c: CachedCollection, raw: unknown): Promise<{ deleted: number }> {
    const start = this.deps.clock.now();
    const req = validateDelete(raw);
    const ids = [...new Set(req.ids)];
    if (ids.length === 0) return { deleted: 0 };
    const requestId = req.requestId ?? `auto-${randomUUID()}`;
    const deadline = replyDeadline(start, req.timeoutMs);
    return withRequestId(requestId, () => this.onMap(c, deadline, async (c) => {
      // With custom sharding an id alone does not name its shard: every shard is asked.
      const byShard = this.groupIds(c, ids);
      const results = await Promise.all(
        [...byShard].map(([shard, shardIds]) =>
          this.write(c, shard, { type: 'write', write: { op: 'delete', ids: shardIds }, requestId, concern: req.writeConcern, timeoutMs: req.timeoutMs, mapEpoch: c.epoch }, deadline),
        ),
      );
      return { deleted: results.reduce((n, r) => n + ('deleted' in r ? r.deleted : 0), 0) };
    }));
  }

  async get(c: CachedCollection, raw: unknown): Promise<{ points: Point[] }> {
    const start = this.deps.clock.now();
    const req = validateGet(raw);
    if (req.ids.length === 0) return { points: [] };
    const deadline = replyDeadline(start, req.timeoutMs);
    const parts = await this.onMap(c, deadline, (c) =>
      Promise.all(
        [...this.groupIds(c, req.ids)].map(([shard, ids]) =>
          this.read<GetResult>(c, shard, req.consistency, { type: 'get', ids, withVector: req.withVector, withMetadata: req.withMetadata, consistency: req.consistency, timeoutMs: req.timeoutMs, mapEpoch: c.epoch }, deadline),
        ),
      ),
    );
    const found = new Map<string, Point>();
    for (const part of parts) for (const p of part.points) found.set(p.id, p);
    return { points: req.ids.flatMap((id) => found.get(id) ?? []) };
  }

  async count(c: CachedCollection, raw: unknown): Promise<{ count: number }> {
    const start = this.deps.clock.now();
    const req = validateCount(raw);
    const deadline = replyDeadline(start, req.timeoutMs);
    // every shard of one map: a count is never summed over two
    const parts = await this.onMap(c, deadline, (c) =>
      Promise.all(
        Array.from({ length: c.record.shards }, (_, shard) =>
          this.read<CountResult>(c, shard, req.consistency, { type: 'count', consistency: req.consistency, timeoutMs: req.timeoutMs, mapEpoch: c.epoch }, deadline),
        ),
      ),
    );
    return { count: parts.reduce((n, p) => n + p.count, 0) };
  }

  async search(c: CachedCollection, raw: unknown): Promise<SearchReply> {
    const start = this.deps.clock.now();
    const req = validateSearch(raw, c.record);
    if (this.deps.faults?.has('internal') && c.record.name === 'fault-internal') throw new Error('injected fault (SHOAL_FAULTS=internal)');
    const [reply] = await this.onMap(c, replyDeadline(start, req.timeoutMs), (c) => this.fanOutSearch(c, [req], req.timeoutMs, start));
    return reply as SearchReply;
  }

  async searchBatch(c: CachedCollection, raw: unknown): Promise<{ results: SearchReply[] }> {
    const start = this.deps.clock.now();
    const req = validateSearchBatch(raw, c.record);
    if (req.queries.length === 0) return { results: [] };
    return { results: await this.onMap(c, replyDeadline(start, req.timeoutMs), (c) => this.fanOutSearch(c, req.queries, req.timeoutMs, start)) };
  }

  /**
   * One request per shard carrying every query; queries with `shardKeys` only go to their shards.
   * All queries of a batch share one consistency per shard request, so mixed consistencies are
   * sent as separate requests.
   */
  private async fanOutSearch(c: CachedCollection, queries: SearchRequest[], timeoutMs: number, start: number): Promise<SearchReply[]> {
    // A bad filter fails here, once, naming its path, before any shard is asked.
    queries.forEach((q, i) => q.filter !== undefined && parseFilter(q.filter, queries.length > 1 ? `queries[${i}].filter` : 'filter'));
    const deadline = replyDeadline(start, timeoutMs);
    const targets = queries.map((q) => this.shardsFor(c, q));
    // group (shard, consistency) -> indexes of queries
    const plan = new Map<string, { shard: number; consistency: Consistency; queries: number[] }>();
    queries.forEach((q, qi) => {
      for (const shard of targets[qi] as number[]) {
        const key = `${shard}/${q.consistency}`;
        const entry = plan.get(key) ?? { shard, consistency: q.consistency, queries: [] };
        entry.queries.push(qi);
        plan.set(key, entry);
      }
    });
    for (const t of targets) this.deps.metrics?.fanout(t.length);
    const hits: Hit[][][] = queries.map(() => []);
    const explains: SearchExplainEntry[][] = queries.map(() => []);
    const failed: Map<number, Coverage['failed'][number]>[] = queries.map(() => new Map());
    let fatal: ShoalError | undefined;
    let stale: ShoalError | undefined;
    let why: string | undefined;
    await Promise.all(
      [...plan.values()].map(async ({ shard, consistency, queries: qis }) => {
        const shardQueries: ShardQuery[] = qis.map((qi) => toShardQuery(queries[qi] as SearchRequest));
        try {
          const r = await this.read<SearchResult>(c, shard, consistency, { type: 'search', queries: shardQueries, consistency, timeoutMs, mapEpoch: c.epoch }, deadline);
          qis.forEach((qi, j) => {
            (hits[qi] as Hit[][]).push(r.results[j] ?? []);
            const e = r.explain?.[j];
            if (e) (explains[qi] as SearchExplainEntry[]).push({ shard, plan: e.plan, matches: e.matches, points: e.points, indexed: e.indexed, ...(e.fellBack === true ? { fellBack: true as const } : {}) });
          });
        } catch (err) {
          // A bug on a shard (ACTOR_FAILED, INTERNAL) or a request it refuses fails the whole
          // search; a shard that cannot serve it now (unreachable, no leader, not hosted here
          // yet, out of time) makes the result partial (PROTOCOL.md).
          // A shard on another map: the whole search again on the new one (answers of two maps never mix).
          if (err instanceof StaleMapError) {
            stale ??= err;
            return;
          }
          const e = toPublicError(err);
          if (e.code === 'INTERNAL' || e.code === 'INVALID_ARGUMENT') {
            fatal ??= e.code === 'INTERNAL' ? new InternalError(`search of shard ${shard} of '${c.record.name}' failed: ${e.message}`, { cause: err }) : e;
            return;
          }
          const reason = e.code === 'TIMEOUT' ? 'TIMEOUT' : 'UNAVAILABLE';
          why ??= `shard ${shard}: ${e.message}`;
          for (const qi of qis) (failed[qi] as Map<number, Coverage['failed'][number]>).set(shard, { shard, reason });
        }
      }),
    );
    if (fatal) throw fatal;
    if (stale) throw stale;
    return queries.map((q, qi) => {
      const shards = (targets[qi] as number[]).length;
      const fails = [...(failed[qi] as Map<number, Coverage['failed'][number]>).values()].sort((a, b) => a.shard - b.shard);
      if (fails.length === shards && shards > 0) {
        const allTimeouts = fails.every((f) => f.reason === 'TIMEOUT');
        const msg = `search of '${c.record.name}': none of its ${shards} shards answered before the deadline`;
        // Say why when a shard refused (a node over a limit answers at once, not at the deadline).
        throw allTimeouts ? new TimeoutError(msg) : new UnavailableError(`search of '${c.record.name}': none of its ${shards} shards answered (${why ?? 'unavailable'})`);
      }
      const m0 = performance.now();
      const merged = mergeHits(hits[qi] as Hit[][], q.k);
      this.deps.metrics?.merge(performance.now() - m0);
      const reply: SearchReply = {
        hits: merged,
        coverage: { shards, answered: shards - fails.length, failed: fails },
        partial: fails.length > 0,
      };
      if (q.explain) reply.explain = (explains[qi] as SearchExplainEntry[]).sort((a, b) => a.shard - b.shard);
      return reply;
    });
  }

  /**
   * Runs `op` with the collection's map, and again with a fresh one each time a shard answers
   * STALE_MAP (docs/resharding.md), inside `deadline`: read from the bucket at once rather than
   * waiting for the watch; while the bucket still has the same map (a switch in progress), after
   * a backoff.
   */
  private async onMap<T>(c: CachedCollection, deadline: number, op: (c: CachedCollection) => Promise<T>): Promise<T> {
    let cur = c;
    let backoff = RETRY_BACKOFF_MIN_MS;
    for (;;) {
      try {
        return await op(cur);
      } catch (err) {
        if (!(err instanceof StaleMapError) || !this.deps.refresh || this.deps.clock.now() >= deadline) throw err;
        const fresh = await this.deps.refresh(cur.record.name);
        if (!fresh) throw new NotFoundError(`collection '${cur.record.name}' does not exist`);
        if (fresh.epoch === cur.epoch) {
          await new Promise<void>((r) => this.deps.clock.setTimer(r, Math.min(backoff, Math.max(0, deadline - this.deps.clock.now()))));
          backoff = Math.min(backoff * 2, RETRY_BACKOFF_MAX_MS);
        }
        cur = fresh;
      }
    }
  }

  private shardsFor(c: CachedCollection, q: SearchRequest): number[] {
    if (!q.shardKeys) return Array.from({ length: c.record.shards }, (_, i) => i);
    return [...new Set(q.shardKeys.map((k) => c.sharder.shardOf(k)))].sort((a, b) => a - b);
  }

  private groupIds(c: CachedCollection, ids: string[]): Map<number, string[]> {
    const out = new Map<number, string[]>();
    if (c.record.sharding.strategy === 'custom') {
      for (let s = 0; s < c.record.shards; s++) out.set(s, ids);
      return out;
    }
    for (const id of ids) {
      const s = c.sharder.shardOf(id);
      const list = out.get(s) ?? [];
      list.push(id);
      out.set(s, list);
    }
    return out;
  }

  /**
   * While a shard call retries (no leader, no responders), the collection's map may change: a
   * shard of the old map may even be gone (a reshard dropped it). The call then gives up with
   * STALE_MAP, and {@link onMap} sends the request again on the new map.
   */
  private staleMap(c: CachedCollection): () => StaleMapError | undefined {
    return () => {
      const now = this.deps.cachedEpoch?.(c.record.name);
      return now !== undefined && now !== c.epoch ? new StaleMapError(`the map of '${c.record.name}' changed (epoch ${c.epoch} -> ${now}) while a request waited`) : undefined;
    };
  }

  private write(c: CachedCollection, shard: number, req: ShardRequest, deadline: number): Promise<WriteResult> {
    const subject = leaderSubject(this.deps.subjects, c.record.uid, shard);
    return callShard<WriteResult>(this.deps.requester, subject, req, deadline, `shard ${shard} of '${c.record.name}'`, this.deps.clock, {
      abandon: this.staleMap(c),
      attemptMs: writeAttemptMs,
      ...this.onNewLeader(c, shard),
    });
  }

  /**
   * `eventual` reads go to any replica (this node's when it holds one). `strong` and `leased`
   * reads go to this node's replica when it holds one — a follower there asks the leader for a
   * read index, which costs less than carrying the read to the leader — and otherwise, and on
   * every retry, to the leader. The local try is cut short ({@link localReadAttemptMs}) so that a
   * follower still catching up does not hold the read.
   */
  private read<R>(c: CachedCollection, shard: number, consistency: Consistency, req: ShardRequest, deadline: number): Promise<R> {
    const any = anyReplicaSubject(this.deps.subjects, c.record.uid, shard);
    const what = `shard ${shard} of '${c.record.name}'`;
    const abandon = this.staleMap(c);
    if (consistency === 'eventual') return callShard<R>(this.deps.requester, any, req, deadline, what, this.deps.clock, { abandon });
    const leader = leaderSubject(this.deps.subjects, c.record.uid, shard);
    const local = this.deps.servesLocally?.(any) ?? false;
    if (!local) return callShard<R>(this.deps.requester, leader, req, deadline, what, this.deps.clock, { ...this.onNewLeader(c, shard), abandon });
    return callShard<R>(this.deps.requester, (attempt) => (attempt === 0 ? any : leader), req, deadline, what, this.deps.clock, {
      ...this.onNewLeader(c, shard),
      attemptMs: localReadAttemptMs,
      abandon,
    });
  }

  private onNewLeader(c: CachedCollection, shard: number): CallOptions {
    const leaders = this.deps.leaders;
    return leaders ? { interrupt: () => leaders.next(c.record.uid, shard) } : {};
  }
}

function toShardQuery(q: SearchRequest): ShardQuery {
  const out: ShardQuery = { vector: q.vector, k: q.k, withVector: q.withVector, withMetadata: q.withMetadata };
  if (q.ef !== undefined) out.ef = q.ef;
  if (q.filter !== undefined) out.filter = q.filter;
  if (q.explain) out.explain = true;
  return out;
}
