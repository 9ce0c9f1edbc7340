/**
 * The shard's index checkpoints (DESIGN.md, Storage): when one is due, writing one, and the
 * journal replay that rebuilds the index on open. The shard state machine (shard-state-machine.ts)
 * decides them in its live apply with {@link IndexCheckpoints.afterEntry}, and a replay decides
 * them again with the same rules, so every replica checkpoints at the same log indexes, live or
 * replaying: the determinism DESIGN.md asks (a checkpoint is written *and read back*).
 *
 * Storage and ordering rules:
 * - The HNSW index is derived. It is checkpointed (written to `dir` and read back) after every
 *   entry whose log index is a multiple of `checkpointEvery`, on every replica alike; the journal
 *   in LMDB holds the index changes of the entries after the newest checkpoint. Reopening loads
 *   the checkpoint and replays the journal: no Raft log is needed.
 * - A checkpoint becomes the newest only once its files and directory are flushed; the journal
 *   before it is dropped in the transaction that records it; older checkpoint files are deleted
 *   only after that transaction is flushed.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HnswIndexOptions, IndexHost, IndexStep, WorkerIndex } from '../index/mod.js';
import type { JournalEntry, ShardMetaStore } from '../storage/shard-meta-store.js';
import type { ShardMeta } from './shard-meta.js';
import type { ShardStateMachineOptions } from './shard-options.js';

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
/** Journal entries sent to the index worker per message while replaying. */
const REPLAY_BATCH = 64;

export function checkpointDirName(index: number): string {
  return `ckpt-${String(index).padStart(16, '0')}`;
}

/** The index worker's steps for one journal entry's index changes. */
export function journalSteps(j: JournalEntry): IndexStep[] {
  const steps: IndexStep[] = [];
  if (j.upserts.length > 0) steps.push({ type: 'upsert', points: j.upserts.map(([id, vector, metadata]) => ({ id, vector, metadata: metadata ?? undefined })) });
  if (j.deletes.length > 0) steps.push({ type: 'delete', ids: j.deletes });
  if (j.hide && j.hide.length > 0) steps.push({ type: 'hide', ids: j.hide });
  if (j.unhide && j.unhide.length > 0) steps.push({ type: 'unhide', ids: j.unhide });
  return steps;
}

/** The state machine's fields that the checkpoints read and replace: its meta record and its index. */
export interface CheckpointedShard {
  meta(): ShardMeta;
  setMeta(meta: ShardMeta): void;
  /** Called as soon as an index is loaded or created, before its replay (a failed replay leaves it to the caller to close). */
  setIndex(index: WorkerIndex): void;
}

export class IndexCheckpoints {
  /** Index checkpoints recorded since the state machine opened (live applies and replays alike), for metrics. */
  recorded = 0;
  /** Journal bytes since the newest checkpoint decided (recomputed from the journal on open). */
  journalSince = 0;
  readonly every: number;
  private readonly journalLimit: number;

  constructor(
    private readonly opts: ShardStateMachineOptions,
    private readonly store: ShardMetaStore<ShardMeta>,
    private readonly host: IndexHost,
    private readonly shard: CheckpointedShard,
  ) {
    this.every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.journalLimit = opts.checkpointJournalBytes ?? DEFAULT_CHECKPOINT_JOURNAL_BYTES;
  }

  private get meta(): ShardMeta {
    return this.shard.meta();
  }

  /**
   * The live apply's rule, after the entry at `index` with its journal (null: none) and the count
   * it left, `since` being the journal bytes before it: the journal bytes after it, and whether
   * the index is checkpointed after it (then the bytes start again from 0).
   */
  afterEntry(index: number, journal: JournalEntry | null, since: number, count: number): { since: number; due: boolean } {
    if (journal) since += journalBytes(journal, this.opts.dim);
    if (index % this.every === 0 || (journal && this.journalDue(since, count))) return { since: 0, due: true };
    return { since, due: false };
  }

  /** The index worker's step that writes (and reads back) the checkpoint of log index `index`. */
  step(index: number): IndexStep {
    return { type: 'checkpoint', dir: join(this.opts.dir, checkpointDirName(index)) };
  }

  /** Whether the journal since the newest checkpoint is big enough for one (see {@link DEFAULT_CHECKPOINT_JOURNAL_BYTES}). */
  private journalDue(since: number, count: number): boolean {
    return since >= Math.max(this.journalLimit, (count * this.opts.dim) / 2);
  }

  /** Loads the newest checkpoint (or starts empty) and replays the journal after it. */
  async rebuild(): Promise<void> {
    const { group, dir } = this.opts;
    const c = this.meta.checkpointIndex;
    this.removeExcept(c);
    this.journalSince = 0;
    const options: HnswIndexOptions = { dim: this.opts.dim, metric: this.opts.metric, hnsw: this.opts.hnsw, indexes: this.opts.indexes, seed: this.opts.seed, exactBudget: this.opts.exactBudget, filteredGraphCost: this.opts.filteredGraphCost };
    const index = c > 0 ? await this.host.load(join(dir, checkpointDirName(c)), options) : await this.host.create('hnsw', options);
    this.shard.setIndex(index);
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
    for (const i of this.store.journalIndexes(group, c)) {
      if (i > this.meta.appliedIndex) break;
      checkpointsThrough(i - 1);
      const j = this.store.getJournal(group, i);
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
        await index.apply(steps);
        steps = [];
        pending = 0;
      }
    }
    checkpointsThrough(this.meta.appliedIndex);
    await index.apply(steps);
    if (last > c) await this.record(last);
  }

  /** Makes checkpoint `index` (already flushed by the worker) the newest, then drops what it replaces. */
  async record(index: number): Promise<void> {
    const meta = { ...this.meta, checkpointIndex: index };
    await this.opts.env.transaction(() => {
      this.store.putMeta(this.opts.group, meta);
      this.store.truncateJournal(this.opts.group, index);
    });
    this.shard.setMeta(meta);
    this.recorded++;
    // Older checkpoint files stay until the record of the new one is on disk.
    await this.opts.env.flushed;
    this.removeExcept(index);
  }

  /** Deletes the checkpoint directories (and unfinished restores) other than checkpoint `keep`'s (0: all). */
  removeExcept(keep: number): void {
    const keepName = keep > 0 ? checkpointDirName(keep) : '';
    for (const name of readdirSync(this.opts.dir)) {
      if (name !== keepName && (name.startsWith('ckpt-') || name.startsWith('restore'))) rmSync(join(this.opts.dir, name), { recursive: true, force: true });
    }
  }
}
