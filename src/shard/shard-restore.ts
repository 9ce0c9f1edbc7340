/**
 * Replacing a shard's whole state: with a snapshot's (a replica catching up or joining), with a
 * backup image's (a `restore` entry: restore-image.ts drives its steps, and says why they keep
 * every replica alike), or with nothing (a restore that failed, or did not finish before a crash).
 */
import { join } from 'node:path';
import { InternalError, InvalidArgumentError, UnavailableError } from '../runtime/errors.js';
import type { WorkerIndex } from '../index/mod.js';
import type { ApplyContext } from './apply-command.js';
import type { ApplyResult } from './commands.js';
import { checkpointDirName, type CheckpointedShard, type IndexCheckpoints } from './index-checkpoints.js';
import { restoreImage, type RestoreSteps } from './restore-image.js';
import type { ShardFailures } from './shard-failures.js';
import { freshMeta } from './shard-meta.js';
import type { ShardStateMachineOptions } from './shard-options.js';
import { installSnapshot } from './snapshot-install.js';

/** What a restore reads and replaces of the shard state machine (shard-state-machine.ts) it runs in. */
export interface RestoreTarget extends CheckpointedShard {
  opts: ShardStateMachineOptions;
  ctx: ApplyContext;
  checkpoints: IndexCheckpoints;
  failures: ShardFailures;
  index(): WorkerIndex;
  /** While a `restore` entry is applied: the index before it, which the state machine reports as applied (null: its meta's again). */
  setRestoringBefore(index: number | null): void;
  /** Deletes the group's LMDB records, inside a write transaction. */
  clearRecords(): void;
}

export class ShardRestore {
  constructor(private readonly t: RestoreTarget) {}

  /** Replaces all of the group's state with a snapshot's. On failure the group is left empty. */
  async fromSnapshot(appliedIndex: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const t = this.t;
    await t.index().close().catch(() => undefined);
    try {
      t.setMeta(await installSnapshot({ ...t.opts, ctx: t.ctx, appliedIndex, chunks, checkpointDirName }));
      await t.checkpoints.rebuild();
      t.failures.clear();
    } catch (err) {
      await this.wipe();
      throw err;
    }
  }

  /** A `restore` entry at `index`: the group becomes the backup image `object`'s (restore-image.ts). */
  async fromImage(index: number, object: string): Promise<ApplyResult> {
    const t = this.t;
    // while the image is installed `meta` is the image's (the source group's applied index): this
    // group has applied up to the entry before, until the restore finishes (or empties the group)
    t.setRestoringBefore(index - 1);
    await t.index().close().catch(() => undefined);
    try {
      return await restoreImage(index, this.imageSteps(object));
    } catch (err) {
      t.failures.fail(err as Error);
      throw new InternalError(`restoring backup image ${object} failed; reopen the shard state machine to try again: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Empties the group (LMDB records, checkpoints) and starts a fresh index. */
  async wipe(): Promise<void> {
    const t = this.t;
    await t.opts.env.transaction(() => t.clearRecords());
    t.setMeta(freshMeta(t.opts.dim, t.opts.metric));
    t.failures.clear();
    await t.checkpoints.rebuild();
  }

  private imageSteps(object: string): RestoreSteps {
    const t = this.t;
    const { env, group, dir } = t.opts;
    const images = t.opts.images;
    return {
      install: async () => {
        if (typeof object !== 'string' || object === '') throw new InvalidArgumentError('object must be a non-empty string');
        if (!images) throw new UnavailableError(`shard state machine ${group} has no access to the backups bucket`);
        const meta = await installSnapshot({ ...t.opts, ctx: t.ctx, appliedIndex: null, keepRestoring: true, chunks: images(object), checkpointDirName });
        t.setMeta(meta);
        return { ...meta };
      },
      loadAndCheckpoint: async (at) => {
        await t.checkpoints.rebuild();
        await t.index().apply([{ type: 'checkpoint', dir: join(dir, checkpointDirName(at)) }]);
        // the image's journal is in that checkpoint now: a replica that replays from it starts
        // counting at 0, and so must this one, or their size-triggered checkpoints would differ
        t.checkpoints.journalSince = 0;
      },
      finish: async (meta) => {
        await env.transaction(() => {
          t.ctx.meta.putMeta(group, meta);
          t.ctx.meta.truncateJournal(group, Number.MAX_SAFE_INTEGER);
          t.ctx.meta.clearMoves(group);
          // the old collection's change-stream outbox: not this collection's writes to publish (docs/changes.md)
          t.ctx.outbox.prune(group, Number.MAX_SAFE_INTEGER);
        });
        t.setMeta(meta);
        t.setRestoringBefore(null);
        t.checkpoints.recorded++;
        await env.flushed;
        t.checkpoints.removeExcept(meta.checkpointIndex);
      },
      empty: async (at) => {
        await t.index()?.close().catch(() => undefined);
        const meta = { ...freshMeta(t.opts.dim, t.opts.metric), appliedIndex: at };
        await env.transaction(() => {
          t.clearRecords();
          t.ctx.meta.putMeta(group, meta);
        });
        t.setMeta(meta);
        t.setRestoringBefore(null);
        await t.checkpoints.rebuild();
      },
    };
  }
}
