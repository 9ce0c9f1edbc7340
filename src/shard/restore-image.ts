/**
 * Applying a `restore` entry (docs/backups.md): the shard's state becomes a backup image's, on
 * every replica alike. The image was taken in another Raft group, at its index B; it is installed
 * as it is (checkpoint files, points, dedup table, index journal, all numbered by that group),
 * its index loaded from the checkpoint and the journal replayed up to B, exactly as its own
 * replica would reopen it. Then the index is checkpointed under THIS entry's index R and the
 * meta record says applied index R, checkpoint R, no journal, no reshard state, no change-stream
 * outbox (the old collection's writes are not this one's to publish): from there the
 * shard goes on as any other. Every replica installs the same bytes and replays the same journal,
 * so their graphs are the same (DESIGN.md, Storage: identical checkpoints).
 *
 * Crash safety: the meta record stays `restoring` until the last transaction, so a replica that
 * stops midway reopens empty at applied index 0 and applies the entry again from its log.
 */
import { InvalidArgumentError } from '../runtime/errors.js';
import type { ApplyResult } from './commands.js';
import type { ShardMeta } from './shard-meta.js';

/** Attempts at downloading and installing an image before the replica gives up (the failure is not the image's). */
export const RESTORE_ATTEMPTS = 5;
const RETRY_MS = 1_000;

export interface RestoreSteps {
  /** Installs the image into the group, meta left `restoring`; returns the image's meta (its own indexes). */
  install(): Promise<ShardMeta>;
  /** Loads the checkpoint of the meta now current, replays the journal, and checkpoints under `index`. */
  loadAndCheckpoint(index: number): Promise<void>;
  /** Writes the final meta (one transaction: meta, no journal, no reshard journal) and drops older checkpoints. */
  finish(meta: ShardMeta): Promise<void>;
  /** Empties the group and records it applied at `index` (what every replica does with an image it cannot read). */
  empty(index: number): Promise<void>;
}

export async function restoreImage(index: number, steps: RestoreSteps, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<ApplyResult> {
  let last: unknown;
  for (let attempt = 0; attempt < RESTORE_ATTEMPTS; attempt++) {
    try {
      const image = await steps.install();
      if ((image.hidden ?? 0) > 0) throw new InvalidArgumentError(`the image hides ${image.hidden} points: it was taken in the middle of a reshard`);
      await steps.loadAndCheckpoint(index);
      const from = image.appliedIndex;
      await steps.finish({ ...image, appliedIndex: index, checkpointIndex: index, restoring: false, reshard: null, hidden: 0 });
      return { restored: { points: image.count, from } };
    } catch (err) {
      last = err;
      // the same bytes on every replica: each refuses them alike, and the shard stays empty
      if (err instanceof InvalidArgumentError) {
        await steps.empty(index);
        return { rejected: { code: 'INVALID_ARGUMENT', message: `backup image: ${err.message}` } };
      }
      // else (the bucket did not answer, ...) the group stays marked `restoring`: the next attempt
      // installs anew, and after the last one a reopen starts it empty and applies the entry again
      if (attempt + 1 < RESTORE_ATTEMPTS) await sleep(RETRY_MS * (attempt + 1));
    }
  }
  throw last;
}
