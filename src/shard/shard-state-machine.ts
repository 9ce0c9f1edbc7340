/**
 * The shard state machine: applies ordered log entries (upsert and delete batches) to the points
 * in LMDB and to the in-memory HNSW index, deterministically, so that every replica fed the same
 * entries answers every query identically, hit for hit.
 *
 * Storage and ordering rules:
 * - An entry's points, dedup entries and index journal commit in ONE LMDB transaction with the
 *   applied index (an apply call's entries share transactions of about 512 points), so a crash
 *   leaves exactly a prefix of the applied entries, never part of one.
 * - The HNSW index is derived: checkpointed at the same log indexes on every replica, rebuilt on
 *   open from the newest checkpoint and the journal after it (index-checkpoints.ts has the rules).
 *
 * Damaged data (docs/operations.md, Corruption): opening checks the checkpoint's files against
 * their checksums, the meta record and journal against theirs, every point's value, and that the
 * points it reads are as many as the meta record counts; reads, applies, snapshots and reshard
 * pulls check each value they touch. What fails a check is a
 * CorruptDataError: `open` throws it, and a state machine that meets one while open stops
 * serving (every later call is UNAVAILABLE) and tells `onCorrupt` once. Nothing is repaired here:
 * the replica is rebuilt from its peers (replica-factory.ts).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptDataError, InternalError, InvalidArgumentError, UnavailableError } from '../runtime/errors.js';
import { checkSums, GRAPH_FILE, IndexHost, type ExplainedHits, TABLE_FILE, type Hit, type IndexStep, type SearchQuery, type WorkerIndex } from '../index/mod.js';
import { DedupStore } from '../storage/dedup-store.js';
import { dataFileOf, type NodeEnv } from '../storage/node-env.js';
import { PointsStore } from '../storage/points-store.js';
import { ChangeOutbox, type ChangeRecord } from '../storage/change-outbox.js';
import { ShardMetaStore } from '../storage/shard-meta-store.js';
import { applyCommand, type ApplyContext } from './apply-command.js';
import type { ApplyResult, LogEntry, Point } from './commands.js';
import { freshMeta, type ShardMeta } from './shard-meta.js';
import { ownershipOf } from './apply-reshard.js';
import type { PullAnswer, PullRequest } from './reshard-import.js';
import { pullFrom } from './reshard-source.js';
import type { OwnerOf, ReshardState } from './reshard-state.js';
import { openSnapshot } from './snapshot-stream.js';
import { ShardRestore } from './shard-restore.js';
import { ShardFailures } from './shard-failures.js';
import { checkpointDirName, IndexCheckpoints, journalSteps } from './index-checkpoints.js';
import { checkOptions, type ShardStateMachineOptions } from './shard-options.js';
import { ReadsBetweenWrites } from './reads-between-writes.js';

/** Points per LMDB transaction when one apply carries many entries (an entry is never split). */
const GROUP_POINTS = 512;

/** A search on a shard: the index's query (`filter` parsed by `parseFilter`). */
export type ShardSearch = SearchQuery;

function pointsIn(e: LogEntry): number {
  const c = e.command;
  if (c.type === 'upsert' && Array.isArray(c.points)) return c.points.length;
  if (c.type === 'delete' && Array.isArray(c.ids)) return c.ids.length;
  return 1;
}

export class ShardStateMachine {
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
  /** Damage found and failures: what stops this state machine from serving (shard-failures.ts). */
  private readonly failures: ShardFailures;
  private readonly ctx: ApplyContext;
  /** When the index is checkpointed, and its rebuild on open (index-checkpoints.ts). */
  private readonly ckpt: IndexCheckpoints;
  /** Replacing the group's whole state: from a snapshot, a backup image, or with nothing (shard-restore.ts). */
  private readonly restores: ShardRestore;

  private constructor(
    private readonly opts: ShardStateMachineOptions,
    private meta: ShardMeta,
    private readonly host: IndexHost,
    private readonly ownsHost: boolean,
  ) {
    const noReshard: OwnerOf = () => () => {
      throw new InternalError(`shard state machine ${opts.group} was opened without its collection's sharding: it cannot reshard`);
    };
    this.ctx = {
      group: opts.group, dim: opts.dim, metric: opts.metric, points: new PointsStore(opts.env), dedup: new DedupStore(opts.env), meta: new ShardMetaStore<ShardMeta>(opts.env),
      outbox: new ChangeOutbox(opts.env), changeStream: opts.changeStream === true,
      shard: opts.shard ?? 0, ownerOf: opts.ownerOf ?? noReshard,
    };
    this.failures = new ShardFailures(opts);
    const fields = {
      meta: () => this.meta,
      setMeta: (meta: ShardMeta) => {
        this.meta = meta;
      },
      index: () => this.index,
      setIndex: (index: WorkerIndex) => {
        this.index = index;
      },
    };
    this.ckpt = new IndexCheckpoints(opts, this.ctx.meta, host, fields);
    this.restores = new ShardRestore({
      ...fields, opts, ctx: this.ctx, checkpoints: this.ckpt, failures: this.failures,
      setRestoringBefore: (index) => {
        this.restoringBefore = index;
      },
      clearRecords: () => this.clearRecords(),
    });
  }

  static async open(opts: ShardStateMachineOptions): Promise<ShardStateMachine> {
    checkOptions(opts);
    const metaStore = new ShardMetaStore<ShardMeta>(opts.env);
    const meta = metaStore.getMeta(opts.group);
    if (meta && (meta.dim !== opts.dim || meta.metric !== opts.metric)) {
      throw new InvalidArgumentError(`group ${opts.group} holds dim ${meta.dim} ${meta.metric} points; opened as dim ${opts.dim} ${opts.metric}`);
    }
    mkdirSync(opts.dir, { recursive: true });
    const host = opts.host ?? IndexHost.start();
    const sm = new ShardStateMachine(opts, meta ?? { ...freshMeta(opts.dim, opts.metric), reshard: opts.initialReshard ?? null }, host, !opts.host);
    try {
      if (meta?.restoring) await sm.restores.wipe(); // a restore that did not finish: start empty
      else {
        await sm.ckpt.rebuild();
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

  /** Index checkpoints recorded since this state machine opened (live applies and replays alike), for metrics. */
  get checkpoints(): number {
    return this.ckpt.recorded;
  }

  /** The damage this state machine found while open (it serves nothing since), or undefined. */
  get corruption(): CorruptDataError | undefined {
    return this.failures.corruption;
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
    return this.failures.watch(() => this.ctx.outbox.read(this.opts.group, after, limit));
  }

  /** How many change-stream outbox records wait (not yet pruned), and the oldest one's index and `time`. */
  outboxHead(): { count: number; oldest: { index: number; time: number } | null } {
    this.checkUsable();
    return this.failures.watch(() => this.ctx.outbox.head(this.opts.group));
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
      return this.failures.watch(() => pullFrom(this.ctx, this.opts.group, txn, req));
    } finally {
      txn.done();
    }
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
        const p = this.failures.watch(() => this.ctx.points.get(this.opts.group, hit.id, { withVector: true, withMetadata: false }));
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
      const p = this.failures.watch(() => this.ctx.points.get(this.opts.group, id, opts));
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
      if (meta.checkpointIndex > 0) this.failures.watch(() => checkSums(join(this.opts.dir, checkpointDirName(meta.checkpointIndex)), [GRAPH_FILE, TABLE_FILE]));
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
      try {
        const { stream, bytes } = openSnapshot({ env: this.opts.env, dir: this.opts.dir, ctx: this.ctx, meta, saved });
        return { appliedIndex: meta.appliedIndex, chunks: this.failures.watchStream(stream), bytes, points: meta.count - (meta.hidden ?? 0) };
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
        await this.restores.fromSnapshot(appliedIndex, chunks);
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
    const done = await this.failures.watchAsync(() => this.opts.env.transaction(() => {
      const meta = { ...this.meta };
      const steps: IndexStep[] = [];
      const out: [number, ApplyResult][] = [];
      let checkpoint = 0;
      // taken over only once the transaction commits: a retried batch counts its entries once
      let since = this.ckpt.journalSince;
      for (const e of group) {
        const { result, journal } = applyCommand(this.ctx, e, meta);
        out.push([e.index, result]);
        if (journal) steps.push(...journalSteps(journal));
        meta.appliedIndex = e.index;
        const rule = this.ckpt.afterEntry(e.index, journal, since, meta.count);
        since = rule.since;
        if (rule.due) {
          steps.push(this.ckpt.step(e.index));
          checkpoint = e.index;
        }
      }
      this.ctx.meta.putMeta(this.opts.group, meta);
      return { meta, steps, out, checkpoint, since };
    }));
    this.meta = done.meta;
    this.ckpt.journalSince = done.since;
    for (const [index, result] of done.out) results.set(index, result);
    try {
      await this.index.apply(done.steps);
    } catch (err) {
      // LMDB has the entries, the index does not: only a reopen (checkpoint + journal) repairs that.
      this.failures.fail(err as Error);
      throw new InternalError(`index apply failed; reopen the shard state machine to rebuild its index: ${(err as Error).message}`, { cause: err });
    }
    if (done.checkpoint > 0) await this.ckpt.record(done.checkpoint);
  }

  /** A `restore` entry at `index`: the group becomes the backup image `object`'s (shard-restore.ts). */
  private applyRestore(index: number, object: string): Promise<ApplyResult> {
    return this.exclusively(() => this.restores.fromImage(index, object));
  }

  private clearRecords(): void {
    clearGroupRecords(this.ctx, this.opts.group);
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
    this.failures.check();
  }
}

/** Deletes a group's points, dedup records and meta (its index journal and change-stream outbox with it), inside a write transaction. */
function clearGroupRecords(stores: { points: PointsStore; dedup: DedupStore; meta: ShardMetaStore<ShardMeta> }, group: string): void {
  stores.points.clear(group);
  stores.dedup.clear(group);
  stores.meta.clear(group);
}
