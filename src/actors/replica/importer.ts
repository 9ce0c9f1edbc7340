/**
 * The importer of a reshard's target (docs/resharding.md, copy and catch-up): while this replica
 * leads a shard that a reshard is filling, it pulls from each source what moves here — the copy
 * in pages, then the source's journal after the cursor — and proposes each answer as an import
 * entry of its own log. It keeps nothing of its own: the cursors are in the shard's state, so a
 * new leader goes on where the last one stopped. It stops when this replica stops leading, the
 * shard switches, or the actor stops.
 */
import type { ShardingConfig } from '../../api/types.js';
import { movePairs } from '../../cluster/shard-map.js';
import { describeError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import { encodeCommand } from '../../shard/commands.js';
import type { ImportCommand, PullAnswer, PullRequest } from '../../shard/reshard-import.js';
import type { ReshardState } from '../../shard/reshard-state.js';

/** Bytes of points one pull asks for at most (a page or a stretch of journal). */
export const PULL_BYTES = 256 * 1024;
/** How long the importer waits when every source is caught up, or after a failure. */
export const IMPORT_IDLE_MS = 200;

export interface ImporterPorts {
  shard: number;
  dim: number;
  sharding: ShardingConfig;
  /** The shard's reshard state now (null: never resharded). */
  state(): ReshardState | null;
  /** Whether this replica still leads (and the actor runs). */
  leading(): boolean;
  /** A pull from source shard `source`'s leader. */
  pull(source: number, req: PullRequest): Promise<PullAnswer<Uint8Array>>;
  /** Proposes one entry to this shard's log; resolves with its result once applied. */
  propose(data: Uint8Array): Promise<unknown>;
  sleep(ms: number): Promise<void>;
  log: Logger;
}

/** Runs until this replica stops leading or the shard needs no more imports. */
export async function runImporter(p: ImporterPorts): Promise<void> {
  const maxOps = Math.max(1, Math.floor(PULL_BYTES / (p.dim * 4 + 64)));
  const propose = (step: ImportCommand<Uint8Array>) => p.propose(encodeCommand({ type: 'import', step, at: Date.now() }));
  while (p.leading()) {
    const st = p.state();
    if (st === null || st.next === null || st.switched) return;
    const next = st.next;
    let busy = false;
    for (const { source } of movePairs(p.sharding, st.active, next).filter((x) => x.target === p.shard)) {
      if (!p.leading()) return;
      try {
        const cursor = p.state()?.cursors[source] ?? 0;
        if (cursor === 0) {
          // the copy, page by page; then the cursor is set at the oldest page (reshard-import.ts)
          let after: string | undefined;
          for (;;) {
            const page = await p.pull(source, { target: p.shard, epoch: next.epoch, cursor: 0, after, maxOps });
            if (page.type !== 'import-page' || !p.leading()) return;
            const { next: more, ...step } = page;
            await propose(step);
            if (more === null) break;
            after = more;
          }
          await propose({ type: 'import-copied', source, epoch: next.epoch });
          busy = true;
          continue;
        }
        const a = await p.pull(source, { target: p.shard, epoch: next.epoch, cursor, maxOps });
        if (a.type === 'import' && a.upTo > cursor) {
          await propose(a);
          busy = true;
        }
      } catch (err) {
        p.log.debug('reshard import from a source failed; again', { shard: p.shard, source, error: describeError(err) });
      }
    }
    if (!busy) await p.sleep(IMPORT_IDLE_MS);
  }
}
