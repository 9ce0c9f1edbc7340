/**
 * The shard state machine: applies ordered log entries (upsert and delete batches) to the points
 * in LMDB and to the in-memory HNSW index, deterministically, so that every replica fed the same
 * entries answers every query identically, hit for hit.
 *
 * Storage and ordering rules:
 * - An entry's points, dedup entries and index journal commit in ONE LMDB transaction with the
 *   applied index (an apply call's entries share transactions of about 512 points), so a crash
 *   leaves exactly a prefix of the applied entries, never part of one.
 * - The HNSW index is derived. It is checkpointed (written to `dir` and read back) after every
 *   entry whose log index is a multiple of `checkpointEvery`, on every replica alike; the journal
 *   in LMDB holds the index changes of the entries after the newest checkpoint. Reopening loads
 *   the checkpoint and replays the journal: no Raft log is needed.
 * - A checkpoint becomes the newest only once its files and directory are flushed; the journal
 *   before it is dropped in the transaction that records it; older checkpoint files are deleted
 *   only after that transaction is flushed.
 *
 * Damaged data (docs/operations.md, Corruption): opening checks the checkpoint's files against
 * their checksums, the meta record and journal against theirs, every point's value, and that the
 * points it reads are as many as the meta record counts; reads, applies, snapshots and reshard
 * pulls check each value they touch. What fails a check is a
 * CorruptDataError: `open` throws it, and a state machine that meets one while open stops
 * serving (every later call is UNAVAILABLE) and tells `onCorrupt` once. Nothing is repaired here:
 * the replica is rebuilt from its peers (replica-factory.ts).
 */
import { closeSync, mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptDataError, InternalError, InvalidArgumentError, UnavailableError } from '../runtime/errors.js';
import { checkSums, GRAPH_FILE, IndexHost, type ExplainedHits, TABLE_FILE, type Hit, type HnswIndexOptions, type HnswParams, type IndexedFields, type IndexStep, type Metric, type SearchQuery, type WorkerIndex } from '../index/mod.js';
import { DedupStore } from '../storage/dedup-store.js';
import { dataFileOf, type NodeEnv } from '../storage/node-env.js';
import { PointsStore } from '../storage/points-store.js';
import { ChangeOutbox, type ChangeRecord } from '../storage/change-outbox.js';
import { ShardMetaStore, type JournalEntry } from '../storage/shard-meta-store.js';
import { decodeValue } from '../storage/store-codec.js';
import { applyCommand, type ApplyContext } from './apply-command.js';
import type { ApplyResult, LogEntry, Point } from './commands.js';
import { freshMeta, type ShardMeta } from './shard-meta.js';
import { installSnapshot } from './snapshot-install.js';
import { ownershipOf, routeOfValue } from './apply-reshard.js';
import { answerPull, type PullAnswer, type PullRequest } from './reshard-import.js';
import type { OwnerOf, ReshardState } from './reshard-state.js';
import { estimateSnapshotBytes, SnapshotStream } from './snapshot-stream.js';
import { restoreImage } from './restore-image.js';
import { ReadsBetweenWrites } from './reads-between-writes.js';

/** Checkpoint the index after every entry whose log index is a multiple of this. */
export const DEFAULT_CHECKPOINT_EVERY = 1024;
/**
 * Checkpoint the index also after an entry that brings the journal since the last checkpoint to
 * at least max(this, an eighth of the live vectors' bytes): the journal holds every vector it
 * changed, so under churn (points replaced again and again) a count of entries alone let it grow
 * to 1,024 batches, several times the points themselves, in LMDB's file (issue 21). The rule
 * reads only the entries and the count each leaves (journal entries record it), so every replica
 * checkpoints at the same log indexes, live or replaying (DESIGN.md, Storage). A replica of a
 * version before this rule checkpoints by index alone: mixed versions build slightly different
 * graphs until the next snapshot. The cost: a checkpoint writes the whole index (about twice
 * the vectors' bytes), so at an eighth the checkpoints write ~16 bytes per byte of vectors
 * upserted; the gain: the journal and the checkpoint's lag behind the points stay within an
 * eighth of the points, in LMDB's file and on disk (bench:churn).
 */
export const DEFAULT_CHECKPOINT_JOURNAL_BYTES = 2 ** 20;
/** The journal bytes an entry's index changes count for: its vectors, and a little per id. */
function journalBytes(j: JournalEntry, dim: number): number {
  return j.upserts.length * (dim * 4 + 64) + (j.deletes.length + (j.hide?.length ?? 0) + (j.unhide?.length ?? 0)) * 64;
}
/** Points per LMDB transaction when one apply carries many entries (an entry is never split). */
const GROUP_POINTS = 512;
/** Journal entries sent to the index worker per message while replaying. */
const REPLAY_BATCH = 64;

export interface ShardStateMachineOptions {
  env: NodeEnv;
  /** The Raft group (shard) this state machine belongs to; keys its LMDB records. */
  group: string;
  /** Directory of this group's index checkpoints (created if missing). */
  dir: string;
  dim: number;
  metric: Metric;
  hnsw: HnswParams;
  /** The collection's declared metadata indexes (PROTOCOL.md, collections.create `indexes`): given to the index at every open. */
  indexes?: IndexedFields | undefined;
  /** hnswlib's level-generator seed; every replica of a group must use the same. */
  seed?: number | undefined;
  checkpointEvery?: number | undefined;
  /** See {@link DEFAULT_CHECKPOINT_JOURNAL_BYTES}. */
  checkpointJournalBytes?: number | undefined;
  /** The worker thread to run the index in; by default the state machine starts its own. */
  host?: IndexHost | undefined;
  /** See `DEFAULT_EXACT_BUDGET` of the index. */
  exactBudget?: number | undefined;
  /** See `DEFAULT_FILTERED_GRAPH_COST` of the index. */
  filteredGraphCost?: number | undefined;
  /** This shard's number, and which shard owns a key under a map: for the shard's reshard decisions (docs/resharding.md). Default shard 0, and no reshard possible. */
  shard?: number | undefined;
  ownerOf?: OwnerOf | undefined;
  /** The reshard state of a group a reshard creates (reshard-state.ts, newShardState), taken when the group has no state yet. */
  initialReshard?: ReshardState | undefined;
  /** Told once when an open state machine finds its stored data damaged (it serves nothing from then on). */
  onCorrupt?: ((err: CorruptDataError) => void) | undefined;
  /** A backup image's bytes, by object name (the backups bucket): what a `restore` entry installs. Absent: such entries fail. */
  images?: ((object: string) => AsyncIterable<Uint8Array>) | undefined;
  /** The collection has a change stream: applied writes leave outbox records (docs/changes.md). Default false. */
  changeStream?: boolean | undefined;
  /** Told after each applied batch of a group with a change stream (its outbox may have grown). */
  onChanges?: (() => void) | undefined;
}

/** A search on a shard: the index's query (`filter` parsed by `parseFilter`). */
export type ShardSearch = SearchQuery;

function pointsIn(e: LogEntry): number {
  const c = e.command;
  if (c.type === 'upsert' && Array.isArray(c.points)) return c.points.length;
  if (c.type === 'delete' && Array.isArray(c.ids)) return c.ids.length;
  return 1;
}

export function checkpointDirName(index: number): string {
  return `ckpt-${String(index).padStart(16, '0')}`;
}

function journalSteps(j: JournalEntry): IndexStep[] {
  const steps: IndexStep[] = [];
  if (j.upserts.length > 0) steps.push({ type: 'upsert', points: j.upserts.map(([id, vector, metadata]) => ({ id, vector, metadata: metadata ?? undefined })) });
  if (j.deletes.length > 0) steps.push({ type: 'delete', ids: j.deletes });
  if (j.hide && j.hide.length > 0) steps.push({ type: 'hide', ids: j.hide });
  if (j.unhide && j.unhide.length > 0) steps.push({ type: 'unhide', ids: j.unhide });
  return steps;
}

export class ShardStateMachine {
  /** Index checkpoints recorded since this state machine opened (live applies and replays alike), for metrics. */
  checkpoints = 0;
  /** Index saves for backups (names their directories). */
  private saves = 0;
  private index!: WorkerIndex;
  private queue: Promise<unknown> = Promise.resolve();
  /** Everything {@link serial} runs is a write of this gate; `withVector` reads of a cosine shard run between (see {@link searchExplained}). */
  private readonly reads = new ReadsBetweenWrites();
  /** While a `restore` entry is applied: the index before it, which {@link appliedIndex} reports. */
  private restoringBefore: number | null = null;
  /** Set while restore/close/drop replace or free the index: searches wait for it. */
  private exclusive: Promise<unknown> = Promise.resolve();
  private closed = false;
  private failure: Error | undefined;
  private damage: CorruptDataError | undefined;
  private readonly ctx: ApplyContext;
  private readonly every: number;
  private readonly journalLimit: number;
  /** Journal bytes since the newest checkpoint decided (recomputed from the journal on open). */
  private journalSince = 0;

  private constructor(
    private readonly opts: ShardStateMachineOptions,
    private meta: ShardMeta,
    private readonly host: IndexHost,
    private readonly ownsHost: boolean,
  ) {
    this.every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.journalLimit = opts.checkpointJournalBytes ?? DEFAULT_CHECKPOINT_JOURNAL_BYTES;
    const noReshard: OwnerOf = () => () => {
      throw new InternalError(`shard state machine ${opts.group} was opened without its collection's sharding: it cannot reshard`);
    };
    this.ctx = {
      group: opts.group, dim: opts.dim, metric: opts.metric, points: new PointsStore(opts.env), dedup: new DedupStore(opts.env), meta: new ShardMetaStore<ShardMeta>(opts.env),
      outbox: new ChangeOutbox(opts.env), changeStream: opts.changeStream === true,
      shard: opts.shard ?? 0, ownerOf: opts.ownerOf ?? noReshard,
    };
  }

  static async open(opts: ShardStateMachineOptions): Promise<ShardStateMachine> {
    if (typeof opts.group !== 'string' || opts.group.length === 0 || opts.group.includes('\u0000')) throw new InvalidArgumentError('group must be a non-empty string without NUL');
    const every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (!Number.isSafeInteger(every) || every < 1) throw new InvalidArgumentError(`checkpointEvery must be a positive integer, got ${every}`);
    const journalLimit = opts.checkpointJournalBytes ?? DEFAULT_CHECKPOINT_JOURNAL_BYTES;
    if (!Number.isSafeInteger(journalLimit) || journalLimit < 1) throw new InvalidArgumentError(`checkpointJournalBytes must be a positive integer, got ${journalLimit}`);
    const metaStore = new ShardMetaStore<ShardMeta>(opts.env);
    const meta = metaStore.getMeta(opts.group);
    if (meta && (meta.dim !== opts.dim || meta.metric !== opts.metric)) {
      throw new InvalidArgumentError(`group ${opts.group} holds dim ${meta.dim} ${meta.metric} points; opened as dim ${opts.dim} ${opts.metric}`);
    }
    mkdirSync(opts.dir, { recursive: true });
    const host = opts.host ?? IndexHost.start();
    const sm = new ShardStateMachine(opts, meta ?? { ...freshMeta(opts.dim, opts.metric), reshard: opts.initialReshard ?? null }, host, !opts.host);
    try {
      if (meta?.restoring) await sm.wipe(); // a restore that did not finish: start empty
      else {
        await sm.rebuildIndex();
        const stored = await sm.ctx.points.verify(opts.group);
        // Measured: a b-tree page overwritten in its middle ends a range scan early, without an error.
        if (stored !== sm.meta.count) {
          const file = dataFileOf(opts.env);
          throw new CorruptDataError(file, `${opts.group} holds ${stored} points in ${file}, its meta record counts ${sm.meta.count}: a page of the file is damaged`);
        }
      }
    } catch (err) {
      await sm.index?.close().catch(() => undefined);
      if (sm.ownsHost) await host.close();
      throw err;
    }
    return sm;
  }

  /** The damage this state machine found while open (it serves nothing since), or undefined. */
  get corruption(): CorruptDataError | undefined {
    return this.damage;
  }

  /** Last log index applied (0 = none). */
  get appliedIndex(): number {
    return this.restoringBefore ?? this.meta.appliedIndex;
  }

  /** Live points, less those hidden by a reshard (docs/resharding.md). */
  count(): number {
    return this.meta.count - (this.meta.hidden ?? 0);
  }

  /** At most `limit` change-stream outbox records after log index `after`, in index order (all applied). */
  changes(after: number, limit: number): [number, ChangeRecord][] {
    this.checkUsable();
    return this.watch(() => this.ctx.outbox.read(this.opts.group, after, limit));
  }

  /** Change-stream outbox records not yet pruned. */
  outboxSize(): number {
    return this.closed ? 0 : this.ctx.outbox.count(this.opts.group);
  }

  /** The shard's reshard state: null for a shard that never took part in one (it serves map epoch 0). */
  get reshard(): ReshardState | null {
    return this.meta.reshard ?? null;
  }

  /** The shard map epoch this shard serves (null: one a reshard dropped it from). */
  get servingEpoch(): number | null {
    const st = this.meta.reshard;
    return st ? ownershipOf(this.ctx, st).serving : 0;
  }

  /**
   * A source's answer to a target's pull (reshard-import.ts), read from one LMDB read
   * transaction: pages of the points that move to the target, or the reshard journal after its cursor.
   */
  pull(req: PullRequest): PullAnswer<Uint8Array> {
    this.checkUsable();
    const txn = this.opts.env.useReadTransaction();
    try {
      return this.watch(() => this.pullIn(txn, req));
    } finally {
      txn.done();
    }
  }

  private pullIn(txn: ReturnType<NodeEnv['useReadTransaction']>, req: PullRequest): PullAnswer<Uint8Array> {
    const meta = this.ctx.meta.getMeta(this.opts.group, txn);
    if (!meta?.reshard) throw new InvalidArgumentError(`shard ${this.ctx.shard} runs no reshard`);
    const { group } = this.opts;
    const { points, dedup } = this.ctx;
    const shardMeta = this.ctx.meta;
    return answerPull(ownershipOf(this.ctx, meta.reshard), {
      appliedIndex: meta.appliedIndex,
      *points(after) {
        for (const [id, value] of points.entries(group, txn, after)) {
          points.check(group, id, value);
          yield [id, value];
        }
      },
      *journalAfter(after) {
        for (const [, value] of shardMeta.movesRaw(group, after, txn)) yield decodeValue(value);
      },
      *requestIds() {
        for (const [id, e] of dedup.entries(group, txn)) yield [id, e.keys ?? []];
      },
      route: (key, value) => (value ? routeOfValue(key, value) : points.routeOf(group, key) ?? (points.has(group, key) ? key : undefined)),
    }, req);
  }

  /**
   * Applies entries in order; entries at or below {@link appliedIndex} are skipped (replay is
   * idempotent). Indexes must increase. Resolves once the batch is committed in LMDB (not yet
   * flushed: the Raft log is what is durable) and visible to searches.
   */
  apply(entries: readonly LogEntry[]): Promise<ApplyResult[]> {
    return this.serial(() => this.applyNow(entries));
  }

  async search(q: ShardSearch): Promise<Hit[]> {
    return (await this.searchExplained(q)).hits;
  }

  /**
   * {@link search}, with what the shard's index chose for it (the search option `explain`).
   *
   * `withVector` on a `cosine` shard: the graph holds unit vectors, not the user's (issue 21: the
   * index keeps no second copy), so the hits' vectors are read from LMDB. The search and that read
   * run between two applies ({@link ReadsBetweenWrites}), so both see the same applied index: an
   * apply commits LMDB before it changes the index, and a read in between would return a vector
   * the search did not score (or none, for a point deleted since). Chosen over checking each read
   * point for a change (points carry no version to check) at the price of such searches waiting
   * for an apply in progress and holding the next one back while they run. `l2` and `ip` read the
   * vectors the graph holds, as given, in the index worker: consistent by the worker's order.
   */
  async searchExplained(q: ShardSearch): Promise<ExplainedHits> {
    await this.exclusive;
    this.checkUsable();
    if (!q.withVector || this.opts.metric !== 'cosine') return this.index.searchExplained(q);
    return this.reads.read(async () => {
      this.checkUsable();
      const answer = await this.index.searchExplained({ ...q, withVector: false });
      for (const hit of answer.hits) {
        const p = this.watch(() => this.ctx.points.get(this.opts.group, hit.id, { withVector: true, withMetadata: false }));
        if (!p?.vector) throw new InternalError(`point ${JSON.stringify(hit.id)} of ${this.opts.group} is in its index but not in LMDB at applied index ${this.meta.appliedIndex}`);
        hit.vector = p.vector;
      }
      return answer;
    });
  }

  /** Points in request order, missing ids left out, a repeated id once at its first position. */
  async get(ids: readonly string[], opts: { withVector: boolean; withMetadata: boolean }): Promise<Point[]> {
    this.checkUsable();
    if (!Array.isArray(ids)) throw new InvalidArgumentError('ids must be an array of strings');
    const seen = new Set<string>();
    const out: Point[] = [];
    // a point a reshard hides (a target's imports before the switch, a source's moved points after it) is not there
    const own = this.meta.reshard ? ownershipOf(this.ctx, this.meta.reshard) : undefined;
    ids.forEach((id, i) => {
      if (typeof id !== 'string') throw new InvalidArgumentError(`ids[${i}] must be a string`);
      if (seen.has(id)) return;
      seen.add(id);
      const p = this.watch(() => this.ctx.points.get(this.opts.group, id, opts));
      if (!p) return;
      const { shardKey, ...point } = p;
      if (own && !own.visible(shardKey ?? id)) return;
      out.push({ id, ...point });
    });
    return out;
  }

  /**
   * A consistent point-in-time snapshot: the LMDB records of this group as of one read
   * transaction, plus the checkpoint files they refer to. Consume `chunks` to the end or break out
   * of the loop: that releases the read transaction and the files. `bytes` estimates the size of
   * the chunks (see estimateSnapshotBytes: an estimate, not exact).
   */
  snapshot(opts: { ownCheckpoint?: boolean } = {}): Promise<{ appliedIndex: number; chunks: AsyncIterable<Uint8Array>; bytes: number; points: number }> {
    return this.serial(async () => {
      this.checkUsable();
      const meta = { ...this.meta };
      // a checkpoint damaged on disk is not sent on (the receiver would refuse it, again and again)
      if (meta.checkpointIndex > 0) this.watch(() => checkSums(join(this.opts.dir, checkpointDirName(meta.checkpointIndex)), [GRAPH_FILE, TABLE_FILE]));
      // A backup's image: the index as it is now, saved (not read back: this replica's index goes on
      // unchanged), in place of the last checkpoint and the journal after it, so a restore loads
      // the whole graph instead of replaying a journal (docs/backups.md).
      let saved: string | undefined;
      if (opts.ownCheckpoint && meta.appliedIndex > meta.checkpointIndex) {
        saved = join(this.opts.dir, `backup-${++this.saves}.tmp`);
        rmSync(saved, { recursive: true, force: true });
        try {
          await this.index.apply([{ type: 'save', dir: saved }]);
        } catch (err) {
          rmSync(saved, { recursive: true, force: true });
          throw new InternalError(`saving the index for a backup at ${meta.appliedIndex} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      const txn = this.opts.env.useReadTransaction();
      const files: { name: string; fd: number }[] = [];
      try {
        const stored = this.ctx.meta.getMeta(this.opts.group, txn);
        if ((stored?.appliedIndex ?? 0) !== meta.appliedIndex || (stored?.checkpointIndex ?? 0) !== meta.checkpointIndex) {
          throw new Error(`the read transaction is at applied index ${stored?.appliedIndex ?? 0}, the state machine at ${meta.appliedIndex}`);
        }
        const image = saved ? { ...meta, checkpointIndex: meta.appliedIndex } : meta;
        const d = saved ?? join(this.opts.dir, checkpointDirName(meta.checkpointIndex));
        if (image.checkpointIndex > 0) {
          for (const name of readdirSync(d).sort()) files.push({ name, fd: openSync(join(d, name), 'r') });
        }
        const source = { group: this.opts.group, meta: image, txn, files, points: this.ctx.points, dedup: this.ctx.dedup, shardMeta: this.ctx.meta, outbox: this.ctx.outbox };
        const bytes = estimateSnapshotBytes(source);
        return { appliedIndex: meta.appliedIndex, chunks: this.watchStream(new SnapshotStream(source)), bytes, points: meta.count - (meta.hidden ?? 0) };
      } catch (err) {
        txn.done();
        for (const f of files) closeSync(f.fd);
        throw new InternalError(`snapshot at ${meta.appliedIndex} failed: ${(err as Error).message}`, { cause: err });
      } finally {
        // the open files stay readable until the stream closes them
        if (saved) rmSync(saved, { recursive: true, force: true });
      }
    });
  }

  /** Replaces all of this group's state with a snapshot's. On failure the group is left empty. */
  restore(appliedIndex: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    return this.serial(() =>
      this.exclusively(async () => {
        this.checkOpen();
        await this.index.close().catch(() => undefined);
        try {
          this.meta = await installSnapshot({ ...this.opts, ctx: this.ctx, appliedIndex, chunks, checkpointDirName });
          await this.rebuildIndex();
          this.failure = undefined;
        } catch (err) {
          await this.wipe();
          throw err;
        }
      }),
    );
  }

  close(): Promise<void> {
    return this.serial(() =>
      this.exclusively(async () => {
        if (this.closed) return;
        this.closed = true;
        await this.index.close().catch(() => undefined);
        if (this.ownsHost) await this.host.close();
      }),
    );
  }

  /**
   * Deletes the data of a group that is not open here (a replica whose collection was dropped
   * while this node was down): its LMDB records and its checkpoint directory, without loading its
   * index. Must not be called for an open group.
   */
  static async destroy(env: NodeEnv, group: string, dir: string): Promise<void> {
    await env.transaction(() => clearGroupRecords({ points: new PointsStore(env), dedup: new DedupStore(env), meta: new ShardMetaStore<ShardMeta>(env) }, group));
    rmSync(dir, { recursive: true, force: true });
  }

  /** Groups with state machine records in this environment. */
  static groups(env: NodeEnv): string[] {
    return new ShardMetaStore<ShardMeta>(env).groups();
  }

  /** Deletes all of this group's data (its collection was dropped) and closes. */
  drop(): Promise<void> {
    return this.serial(() =>
      this.exclusively(async () => {
        this.checkOpen();
        this.closed = true;
        await this.index.close().catch(() => undefined);
        await this.opts.env.transaction(() => this.clearRecords());
        rmSync(this.opts.dir, { recursive: true, force: true });
        if (this.ownsHost) await this.host.close();
      }),
    );
  }

  private async applyNow(entries: readonly LogEntry[]): Promise<ApplyResult[]> {
    this.checkUsable();
    const fresh: LogEntry[] = [];
    let prev = 0;
    for (const e of entries) {
      if (!Number.isSafeInteger(e.index) || e.index < 1 || e.index <= prev) throw new InvalidArgumentError(`entries must have increasing positive integer indexes; got ${e.index} after ${prev}`);
      prev = e.index;
      if (e.index > this.meta.appliedIndex) fresh.push(e);
    }
    const results = new Map<number, ApplyResult>();
    // Commit in groups of about GROUP_POINTS points: each transaction's synchronous work blocks
    // the caller's event loop, and every entry still commits whole (a crash leaves a prefix).
    for (let i = 0; i < fresh.length; ) {
      const first = fresh[i] as LogEntry;
      if (first.command.type === 'restore') {
        results.set(first.index, await this.applyRestore(first.index, first.command.object));
        i++;
        continue;
      }
      let j = i;
      let points = 0;
      while (j < fresh.length && (fresh[j] as LogEntry).command.type !== 'restore' && (j === i || points < GROUP_POINTS)) points += pointsIn(fresh[j++] as LogEntry);
      await this.applyGroup(fresh.slice(i, j), results);
      i = j;
    }
    if (fresh.length > 0 && this.ctx.changeStream) {
      try {
        this.opts.onChanges?.();
      } catch {
        // a listener's failure changes nothing here
      }
    }
    return entries.map((e) => results.get(e.index) ?? { skipped: true });
  }

  /** Commits `group` in one LMDB transaction, then applies its index changes (and checkpoints). */
  private async applyGroup(group: LogEntry[], results: Map<number, ApplyResult>): Promise<void> {
    const done = await this.watchAsync(() => this.opts.env.transaction(() => {
      const meta = { ...this.meta };
      const steps: IndexStep[] = [];
      const out: [number, ApplyResult][] = [];
      let checkpoint = 0;
      // taken over only once the transaction commits: a retried batch counts its entries once
      let since = this.journalSince;
      for (const e of group) {
        const { result, journal } = applyCommand(this.ctx, e, meta);
        out.push([e.index, result]);
        if (journal) steps.push(...journalSteps(journal));
        meta.appliedIndex = e.index;
        if (journal) since += journalBytes(journal, this.opts.dim);
        if (e.index % this.every === 0 || (journal && this.journalDue(since, meta.count))) {
          since = 0;
          steps.push({ type: 'checkpoint', dir: join(this.opts.dir, checkpointDirName(e.index)) });
          checkpoint = e.index;
        }
      }
      this.ctx.meta.putMeta(this.opts.group, meta);
      return { meta, steps, out, checkpoint, since };
    }));
    this.meta = done.meta;
    this.journalSince = done.since;
    for (const [index, result] of done.out) results.set(index, result);
    try {
      await this.index.apply(done.steps);
    } catch (err) {
      // LMDB has the entries, the index does not: only a reopen (checkpoint + journal) repairs that.
      this.failure = err as Error;
      throw new InternalError(`index apply failed; reopen the shard state machine to rebuild its index: ${(err as Error).message}`, { cause: err });
    }
    if (done.checkpoint > 0) await this.recordCheckpoint(done.checkpoint);
  }

  /** A `restore` entry at `index`: the group becomes the backup image `object`'s (restore-image.ts). */
  private applyRestore(index: number, object: string): Promise<ApplyResult> {
    const { env, group, dir } = this.opts;
    const images = this.opts.images;
    return this.exclusively(async () => {
      // while the image is installed `meta` is the image's (the source group's applied index): this
      // group has applied up to the entry before, until the restore finishes (or empties the group)
      this.restoringBefore = index - 1;
      await this.index.close().catch(() => undefined);
      try {
        return await restoreImage(index, {
          install: async () => {
            if (typeof object !== 'string' || object === '') throw new InvalidArgumentError('object must be a non-empty string');
            if (!images) throw new UnavailableError(`shard state machine ${group} has no access to the backups bucket`);
            this.meta = await installSnapshot({ ...this.opts, ctx: this.ctx, appliedIndex: null, keepRestoring: true, chunks: images(object), checkpointDirName });
            return { ...this.meta };
          },
          loadAndCheckpoint: async (at) => {
            await this.rebuildIndex();
            await this.index.apply([{ type: 'checkpoint', dir: join(dir, checkpointDirName(at)) }]);
            // the image's journal is in that checkpoint now: a replica that replays from it starts
            // counting at 0, and so must this one, or their size-triggered checkpoints would differ
            this.journalSince = 0;
          },
          finish: async (meta) => {
            await env.transaction(() => {
              this.ctx.meta.putMeta(group, meta);
              this.ctx.meta.truncateJournal(group, Number.MAX_SAFE_INTEGER);
              this.ctx.meta.clearMoves(group);
              // the old collection's change-stream outbox: not this collection's writes to publish (docs/changes.md)
              this.ctx.outbox.prune(group, Number.MAX_SAFE_INTEGER);
            });
            this.meta = meta;
            this.restoringBefore = null;
            this.checkpoints++;
            await env.flushed;
            this.removeCheckpointsExcept(meta.checkpointIndex);
          },
          empty: async (at) => {
            await this.index?.close().catch(() => undefined);
            const meta = { ...freshMeta(this.opts.dim, this.opts.metric), appliedIndex: at };
            await env.transaction(() => {
              this.clearRecords();
              this.ctx.meta.putMeta(group, meta);
            });
            this.meta = meta;
            this.restoringBefore = null;
            await this.rebuildIndex();
          },
        });
      } catch (err) {
        this.failure = err as Error;
        throw new InternalError(`restoring backup image ${object} failed; reopen the shard state machine to try again: ${(err as Error).message}`, { cause: err });
      }
    });
  }

  /** Whether the journal since the newest checkpoint is big enough for one (see {@link DEFAULT_CHECKPOINT_JOURNAL_BYTES}). */
  private journalDue(since: number, count: number): boolean {
    return since >= Math.max(this.journalLimit, (count * this.opts.dim) / 2);
  }

  /** Loads the newest checkpoint (or starts empty) and replays the journal after it. */
  private async rebuildIndex(): Promise<void> {
    const { group, dir } = this.opts;
    const c = this.meta.checkpointIndex;
    this.removeCheckpointsExcept(c);
    this.journalSince = 0;
    const options: HnswIndexOptions = { dim: this.opts.dim, metric: this.opts.metric, hnsw: this.opts.hnsw, indexes: this.opts.indexes, seed: this.opts.seed, exactBudget: this.opts.exactBudget, filteredGraphCost: this.opts.filteredGraphCost };
    this.index = c > 0 ? await this.host.load(join(dir, checkpointDirName(c)), options) : await this.host.create('hnsw', options);
    // Replay, checkpointing at the same log indexes as a live apply would have.
    let steps: IndexStep[] = [];
    let decided = c;
    let last = 0;
    const checkpointsThrough = (upTo: number): void => {
      for (let m = (Math.floor(decided / this.every) + 1) * this.every; m <= upTo; m += this.every) {
        steps.push({ type: 'checkpoint', dir: join(dir, checkpointDirName(m)) });
        last = m;
        this.journalSince = 0;
      }
      decided = Math.max(decided, upTo);
    };
    let pending = 0;
    for (const i of this.ctx.meta.journalIndexes(group, c)) {
      if (i > this.meta.appliedIndex) break;
      checkpointsThrough(i - 1);
      const j = this.ctx.meta.getJournal(group, i);
      if (j) steps.push(...journalSteps(j));
      if (j) this.journalSince += journalBytes(j, this.opts.dim);
      // the same rule as a live apply, on the count the entry left
      if (j && i % this.every !== 0 && this.journalDue(this.journalSince, j.count ?? 0)) {
        steps.push({ type: 'checkpoint', dir: join(dir, checkpointDirName(i)) });
        last = i;
        decided = i;
        this.journalSince = 0;
      }
      checkpointsThrough(i);
      if (++pending >= REPLAY_BATCH) {
        await this.index.apply(steps);
        steps = [];
        pending = 0;
      }
    }
    checkpointsThrough(this.meta.appliedIndex);
    await this.index.apply(steps);
    if (last > c) await this.recordCheckpoint(last);
  }

  /** Makes checkpoint `index` (already flushed by the worker) the newest, then drops what it replaces. */
  private async recordCheckpoint(index: number): Promise<void> {
    const meta = { ...this.meta, checkpointIndex: index };
    await this.opts.env.transaction(() => {
      this.ctx.meta.putMeta(this.opts.group, meta);
      this.ctx.meta.truncateJournal(this.opts.group, index);
    });
    this.meta = meta;
    this.checkpoints++;
    // Older checkpoint files stay until the record of the new one is on disk.
    await this.opts.env.flushed;
    this.removeCheckpointsExcept(index);
  }

  private removeCheckpointsExcept(keep: number): void {
    const keepName = keep > 0 ? checkpointDirName(keep) : '';
    for (const name of readdirSync(this.opts.dir)) {
      if (name !== keepName && (name.startsWith('ckpt-') || name.startsWith('restore'))) rmSync(join(this.opts.dir, name), { recursive: true, force: true });
    }
  }

  private clearRecords(): void {
    clearGroupRecords(this.ctx, this.opts.group);
  }

  /** Empties the group (LMDB records, checkpoints) and starts a fresh index. */
  private async wipe(): Promise<void> {
    await this.opts.env.transaction(() => this.clearRecords());
    this.meta = freshMeta(this.opts.dim, this.opts.metric);
    this.failure = undefined;
    await this.rebuildIndex();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => this.reads.write(fn));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private exclusively<T>(fn: () => Promise<T>): Promise<T> {
    const run = fn();
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  private checkOpen(): void {
    // UNAVAILABLE: a request that reaches a closed state machine (its replica is being rebuilt or removed) is served elsewhere
    if (this.closed) throw new UnavailableError(`shard state machine ${this.opts.group} is closed`);
  }

  private checkUsable(): void {
    this.checkOpen();
    if (this.damage) throw new UnavailableError(`shard state machine ${this.opts.group} serves nothing: its stored data is damaged (${this.damage.message}); it is being rebuilt from its peers`);
    if (this.failure) throw new UnavailableError(`shard state machine ${this.opts.group} failed and must be reopened: ${this.failure.message}`);
  }

  /** Records damage that `fn` found (see {@link corruption}) and rethrows it. */
  private watch<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.noteDamage(err);
    }
  }

  private async watchAsync<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.noteDamage(err);
    }
  }

  private async *watchStream(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    try {
      yield* chunks;
    } catch (err) {
      throw this.noteDamage(err);
    }
  }

  private noteDamage(err: unknown): unknown {
    if (err instanceof CorruptDataError && !this.damage) {
      this.damage = err;
      this.failure = err;
      try {
        this.opts.onCorrupt?.(err);
      } catch {
        // a listener's failure changes nothing here
      }
    }
    return err;
  }
}

/** Deletes a group's points, dedup records and meta (its index journal and change-stream outbox with it), inside a write transaction. */
function clearGroupRecords(stores: { points: PointsStore; dedup: DedupStore; meta: ShardMetaStore<ShardMeta> }, group: string): void {
  stores.points.clear(group);
  stores.dedup.clear(group);
  stores.meta.clear(group);
}
