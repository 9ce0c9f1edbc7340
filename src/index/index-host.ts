/**
 * Keeps index work off the caller's event loop: an {@link IndexHost} is one worker thread that
 * holds any number of indexes; a {@link WorkerIndex} is the caller's async handle on one of them.
 *
 * Ordering rule: requests to one host are handled one at a time in the order they were made, so
 * a search made after `apply()` resolved sees every change of that apply, and a search made while
 * an apply is being sent waits until all of it has been sent (it never sees half an apply).
 */
import { Worker } from 'node:worker_threads';
import { CorruptDataError, errorFromCode, InternalError, InvalidArgumentError, isErrorCode, type ShoalError } from '../runtime/errors.js';
import type { HnswIndexOptions } from './hnsw-index.js';
import type { ExplainedHits, IndexKind, IndexStep, ReplyValue, WireErrorBody, WireStep, WorkerMemory, WorkerReply, WorkerRequest } from './index-protocol.js';
import type { Hit, IndexPoint, SearchPlan, SearchQuery } from './types.js';

/** Points per message to the worker: bounds the copy the caller's thread does in one go. */
export const POINTS_PER_MESSAGE = 256;
/**
 * Searches per message to the worker (of any of its indexes: a search over a collection's shards
 * sends one search per local shard, and they travel together). Small enough that with many
 * searches in flight the worker has the next message queued while the caller handles a reply.
 */
export const SEARCHES_PER_MESSAGE = 16;
/** Messages of searches in flight to one worker; more searches wait and go together in the next one. */
export const SEARCH_MESSAGES_IN_FLIGHT = 1;

/**
 * The index worker thread's nice value by default: index work yields the CPU to the caller's
 * thread. On Linux it applies to that thread alone.
 */
export const DEFAULT_WORKER_NICE = 10;

export interface IndexHostOptions {
  /** Nice value of the worker thread (0 = the caller's priority); default {@link DEFAULT_WORKER_NICE}. */
  nice?: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: ShoalError) => void;
}

interface PendingSearch {
  handle: number;
  query: SearchQuery;
  resolve: (answer: ExplainedHits) => void;
  reject: (err: unknown) => void;
}

export class IndexHost {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private nextHandle = 1;
  private dead: ShoalError | undefined;
  private searches: PendingSearch[] = [];
  private searchMessagesInFlight = 0;
  private searchScheduled = false;
  /** Searches sent to the worker, and the messages that carried them. */
  readonly searchStats = { searches: 0, messages: 0 };
  /** Searches the worker answered, by the plan its index chose (since the host started). */
  readonly plans: Record<SearchPlan, number> = { exact: 0, hnsw: 0, 'hnsw-filtered': 0, 'hnsw-postfilter': 0 };
  /** Of those, searches that tried `hnsw-postfilter` first and planned again (SearchExplain.fellBack). */
  postfilterFallbacks = 0;

  private constructor(opts: IndexHostOptions) {
    this.worker = new Worker(new URL('./index-worker.js', import.meta.url), { workerData: { nice: opts.nice ?? DEFAULT_WORKER_NICE } });
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    this.worker.on('error', (err) => this.fail(new InternalError(`index worker failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => this.fail(new InternalError(`index worker exited with code ${code}`)));
  }

  /** Starts a worker thread. It keeps the process alive only while a request is outstanding. */
  static start(opts: IndexHostOptions = {}): IndexHost {
    return new IndexHost(opts);
  }

  /** A new empty index in this host's worker. */
  async create(kind: IndexKind, options: HnswIndexOptions): Promise<WorkerIndex> {
    const handle = this.nextHandle++;
    await this.request<'create'>({ op: 'create', handle, kind, options });
    return new WorkerIndex(this, handle, options.dim);
  }

  /** An HNSW index loaded from a directory written by a checkpoint step. */
  async load(dir: string, options: HnswIndexOptions): Promise<WorkerIndex> {
    const handle = this.nextHandle++;
    await this.request<'load'>({ op: 'load', handle, dir, options });
    return new WorkerIndex(this, handle, options.dim);
  }

  /** The worker's memory, after a garbage collection there when the process runs with --expose-gc. */
  memory(): Promise<WorkerMemory> {
    return this.request<'memory'>({ op: 'memory' });
  }

  /** Stops the worker; outstanding requests fail. */
  async close(): Promise<void> {
    this.fail(new InternalError('index host closed'));
    await this.worker.terminate();
  }

  /** @internal */
  request<K extends keyof ReplyValue>(req: WorkerRequest & { op: K }, transfer: ArrayBuffer[] = []): Promise<ReplyValue[K]> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<ReplyValue[K]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ id, req }, transfer);
    });
  }

  /**
   * @internal One search of index `handle`. Searches travel to the worker in batches, across all
   * of its indexes: those made in the same turn of the event loop go together, and those made
   * while {@link SEARCH_MESSAGES_IN_FLIGHT} batches are being answered go together in the next
   * message as soon as one returns. The per-message cost (a structured clone each way, waking two
   * threads) is then paid once per batch, batches grow with the load, and the hits of every shard
   * of one collection search come back in the same message. Each search fails or succeeds on its own.
   */
  search(handle: number, query: SearchQuery): Promise<ExplainedHits> {
    return new Promise<ExplainedHits>((resolve, reject) => {
      this.searches.push({ handle, query, resolve, reject });
      if (this.searches.length >= SEARCHES_PER_MESSAGE) this.sendSearches();
      else if (this.searchMessagesInFlight < SEARCH_MESSAGES_IN_FLIGHT && !this.searchScheduled) {
        this.searchScheduled = true;
        queueMicrotask(() => {
          this.searchScheduled = false;
          if (this.searchMessagesInFlight < SEARCH_MESSAGES_IN_FLIGHT) this.sendSearches();
        });
      }
    });
  }

  private sendSearches(): void {
    const batch = this.searches;
    if (batch.length === 0) return;
    this.searches = [];
    this.searchMessagesInFlight++;
    this.searchStats.searches += batch.length;
    this.searchStats.messages++;
    this.request<'search'>({ op: 'search', searches: batch.map((b) => ({ handle: b.handle, query: b.query })) })
      .then(
        (results) =>
          results.forEach((r, i) => {
            const b = batch[i] as PendingSearch;
            if ('error' in r) b.reject(this.revive(r.error));
            else {
              this.plans[r.explain.plan]++;
              if (r.explain.fellBack) this.postfilterFallbacks++;
              b.resolve(r);
            }
          }),
        (err: unknown) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => {
        this.searchMessagesInFlight--;
        if (this.searches.length > 0 && this.searchMessagesInFlight < SEARCH_MESSAGES_IN_FLIGHT) this.sendSearches();
      });
  }

  /** @internal */
  revive(error: WireErrorBody): ShoalError {
    const { code, message, name } = error;
    if (name === 'CorruptDataError' && error.file !== undefined) return new CorruptDataError(error.file, message);
    return code !== undefined && isErrorCode(code) ? errorFromCode(code, message) : new InternalError(`index worker: ${name}: ${message}`);
  }

  private onReply(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) p.resolve(reply.value);
    else p.reject(this.revive(reply.error));
  }

  private fail(err: ShoalError): void {
    if (this.dead) return;
    this.dead = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

function toWire(step: IndexStep, dim: number): { wire: WireStep; transfer: ArrayBuffer[] } {
  if (step.type !== 'upsert') return { wire: step, transfer: [] };
  const vectors = new Float32Array(step.points.length * dim);
  step.points.forEach((p, i) => vectors.set(p.vector, i * dim));
  return {
    wire: { type: 'upsert', ids: step.points.map((p) => p.id), vectors, metadata: step.points.map((p) => p.metadata ?? null) },
    transfer: [vectors.buffer as ArrayBuffer],
  };
}

/** Splits upserts into messages of at most {@link POINTS_PER_MESSAGE} points; other steps go one per message. */
function messages(steps: readonly IndexStep[]): IndexStep[][] {
  const out: IndexStep[][] = [];
  let cur: IndexStep[] = [];
  let points = 0;
  const flush = (): void => {
    if (cur.length > 0) out.push(cur);
    cur = [];
    points = 0;
  };
  for (const step of steps) {
    if (step.type !== 'upsert') {
      cur.push(step);
      continue;
    }
    for (let i = 0; i < step.points.length || i === 0; i += POINTS_PER_MESSAGE) {
      const part = step.points.slice(i, i + POINTS_PER_MESSAGE);
      if (points + part.length > POINTS_PER_MESSAGE) flush();
      cur.push({ type: 'upsert', points: part });
      points += part.length;
    }
  }
  flush();
  return out;
}

/** An index living in an {@link IndexHost}'s worker. Methods mirror {@link VectorIndex}, async. */
export class WorkerIndex {
  private sending: Promise<unknown> = Promise.resolve();
  /** Applies whose messages are not all posted yet: a search waits for them (see {@link search}). */
  private applying = 0;

  /** @internal */
  constructor(
    private readonly host: IndexHost,
    private readonly handle: number,
    readonly dim: number,
  ) {}

  /**
   * Applies steps in order. Large upserts go in several messages, yielding the caller's event loop
   * between them; requests made meanwhile queue behind the whole apply. Resolves with one entry
   * per step: the number deleted, hidden or unhidden for a delete, hide or unhide, null otherwise.
   */
  apply(steps: readonly IndexStep[]): Promise<(number | null)[]> {
    for (const s of steps) {
      if (s.type !== 'upsert') continue;
      // The worker validates fully; the length must be right here already, to pack the vectors.
      s.points.forEach((p, i) => {
        if (p.vector.length !== this.dim) throw new InvalidArgumentError(`points[${i}].vector has ${p.vector.length} dimensions; the index has ${this.dim}`);
      });
    }
    const run = this.sending.then(async () => {
      const replies: Promise<(number | null)[]>[] = [];
      const batches = messages(steps);
      for (let i = 0; i < batches.length; i++) {
        if (i > 0) await new Promise((r) => setImmediate(r));
        const wires = (batches[i] as IndexStep[]).map((s) => toWire(s, this.dim));
        replies.push(this.host.request<'apply'>({ op: 'apply', handle: this.handle, steps: wires.map((w) => w.wire) }, wires.flatMap((w) => w.transfer)));
      }
      return replies;
    });
    this.applying++;
    this.sending = run.catch(() => undefined).finally(() => this.applying--);
    return run.then(async (replies) => {
      const results = (await Promise.all(replies)).flat();
      // Upserts were split into several steps on the wire: map results back to the caller's steps.
      const out: (number | null)[] = [];
      let j = 0;
      for (const s of steps) {
        if (s.type === 'upsert') {
          j += Math.max(1, Math.ceil(s.points.length / POINTS_PER_MESSAGE));
          out.push(null);
        } else out.push(results[j++] ?? null);
      }
      return out;
    });
  }

  upsert(points: IndexPoint[]): Promise<void> {
    return this.apply([{ type: 'upsert', points }]).then(() => undefined);
  }

  async delete(ids: string[]): Promise<number> {
    const [n] = await this.apply([{ type: 'delete', ids }]);
    return n ?? 0;
  }

  /** Hides points (see {@link VectorIndex.hide}); resolves to how many were hidden. */
  async hide(ids: string[]): Promise<number> {
    const [n] = await this.apply([{ type: 'hide', ids }]);
    return n ?? 0;
  }

  /** Unhides points (see {@link VectorIndex.unhide}); resolves to how many were unhidden. */
  async unhide(ids: string[]): Promise<number> {
    const [n] = await this.apply([{ type: 'unhide', ids }]);
    return n ?? 0;
  }

  /** Writes the index to `dir` and reads it back (see {@link HnswIndex.checkpoint}). */
  async checkpoint(dir: string): Promise<void> {
    await this.apply([{ type: 'checkpoint', dir }]);
  }

  /**
   * One search, batched with the other searches of this index's host (see {@link IndexHost.search}).
   * A search made while an apply is still being sent waits until all of it has been sent.
   */
  search(query: SearchQuery): Promise<Hit[]> {
    return this.searchExplained(query).then((r) => r.hits);
  }

  /** {@link search}, with what the index chose for it (the plan, and how many points matched). */
  searchExplained(query: SearchQuery): Promise<ExplainedHits> {
    if (this.applying === 0) return this.host.search(this.handle, query);
    return this.sending.then(() => this.host.search(this.handle, query));
  }

  /** Several searches, batched together; fails if any of them fails. */
  searchMany(queries: SearchQuery[]): Promise<Hit[][]> {
    return Promise.all(queries.map((q) => this.search(q)));
  }

  get(ids: string[]): Promise<(IndexPoint | null)[]> {
    return this.after(() => this.host.request<'get'>({ op: 'get', handle: this.handle, ids }));
  }

  count(): Promise<number> {
    return this.after(() => this.host.request<'count'>({ op: 'count', handle: this.handle }));
  }

  plan(query: SearchQuery): Promise<SearchPlan> {
    return this.after(() => this.host.request<'plan'>({ op: 'plan', handle: this.handle, query }));
  }

  /** Frees the index in the worker. */
  close(): Promise<void> {
    return this.after(() => this.host.request<'drop'>({ op: 'drop', handle: this.handle })).then(() => undefined);
  }

  private after<T>(fn: () => Promise<T>): Promise<T> {
    return this.sending.then(fn);
  }
}
