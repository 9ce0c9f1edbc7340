/**
 * The importer of a reshard's target (docs/resharding.md, copy and catch-up): while this replica
 * leads a shard that a reshard is filling, it pulls from each source what moves here — the copy
 * in pages, then the source's journal after the cursor — and proposes each answer as an import
 * entry of its own log. It keeps nothing of its own: the cursors are in the shard's state, so a
 * new leader goes on where the last one stopped. It stops when this replica stops leading, the
 * shard switches, or the actor stops.
 *
 * The copy's pages are paced to the rate the node's share of `maxBytesPerSec` gives this shard
 * (copy-rates.ts): after each page the importer waits until a token bucket covers the page's bytes
 * (the bytes of its keys and encoded values), before it pulls the next one, and pulls pages of
 * about a quarter second's worth at that rate. Journal imports (catch-up) are not paced, as a
 * move's log replay is not. Every proposed import's bytes and points are counted (`counted`), for
 * `rebalance.status`.
 */
import type { ShardingConfig } from '../../api/types.js';
import { movePairs } from '../../cluster/shard-map.js';
import { describeError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import { encodeCommand } from '../../shard/commands.js';
import type { ImportCommand, ImportOp, PullAnswer, PullRequest } from '../../shard/reshard-import.js';
import type { ReshardState } from '../../shard/reshard-state.js';

/** Bytes of points one pull asks for at most (a page or a stretch of journal). */
export const PULL_BYTES = 256 * 1024;
/** How long the importer waits when every source is caught up, or after a failure. */
export const IMPORT_IDLE_MS = 200;
/** Paced pages hold about this many milliseconds of bytes at the rate (so that the rate is smooth at a second's scale)... */
export const PACED_PAGE_MS = 250;
/** ...but no less than this many bytes. */
export const MIN_PAGE_BYTES = 16 * 1024;
/** A pacer after a pause lets at most this many milliseconds of bytes, or one page, through at once. */
const BURST_MS = 100;

/** The bytes of import operations: each key's UTF-8 bytes and its encoded value's (a delete has none). */
export function opsBytes(ops: readonly ImportOp<Uint8Array>[]): number {
  let n = 0;
  for (const o of ops) n += Buffer.byteLength(o.key, 'utf8') + (o.value?.byteLength ?? 0);
  return n;
}

/** The bytes a page asks for at `bytesPerSec` (0: unlimited). */
export function pageBytes(bytesPerSec: number): number {
  if (bytesPerSec <= 0) return PULL_BYTES;
  return Math.min(PULL_BYTES, Math.max(MIN_PAGE_BYTES, Math.floor((bytesPerSec * PACED_PAGE_MS) / 1000)));
}

/**
 * A token bucket for the importer's pages, on time passed in: `take` counts bytes that arrived and
 * says how long to wait before the next pull. Debt is never forgiven, so over any stretch of pages
 * the bytes stay within the rate plus one burst; a change of rate applies from the next page.
 */
export class ImportPacer {
  /** Bytes that may arrive without waiting; negative: bytes that arrived ahead of the rate. */
  private tokens = 0;
  private last: number | null = null;

  /** Counts `bytes` arrived at `now` under `bytesPerSec` (0: unlimited); returns the milliseconds to wait. */
  take(bytes: number, now: number, bytesPerSec: number): number {
    if (bytesPerSec <= 0) {
      this.tokens = 0;
      this.last = now;
      return 0;
    }
    const elapsed = this.last === null ? 0 : Math.max(0, now - this.last);
    this.last = now;
    // The bucket holds at least the page: the time a page takes to pull and propose counts
    // towards the next one's wait, however long (capping it lower would lose it and run slow).
    this.tokens = Math.min(this.tokens + (elapsed * bytesPerSec) / 1000, Math.max((BURST_MS * bytesPerSec) / 1000, bytes)) - bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / bytesPerSec);
  }
}

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
  /** The rate this shard's copy pages may arrive at now, in bytes per second (0: unlimited; absent: unlimited). */
  rate?(): number;
  /** Told of every import proposed: its source, the reshard's epoch, its bytes and points. */
  counted?(source: number, epoch: number, bytes: number, points: number): void;
  now(): number;
  sleep(ms: number): Promise<void>;
  log: Logger;
}

/** An empty stretch of a source's journal is imported only once this many entries have gone by (or to reach the source's fence). */
export const EMPTY_IMPORT_ENTRIES = 32;

/**
 * Whether a journal answer is worth an entry of this shard's log: it carries writes, or request
 * ids, or the cursor is behind the source's fence (it must reach it to switch), or it has fallen
 * EMPTY_IMPORT_ENTRIES behind. Without the last rules two shards that import from each other (a
 * `hash` reshard) would bump each other's applied index with empty imports for as long as the
 * reshard lasts, neither ever idle.
 */
export function worthImporting(a: { upTo: number; ops: unknown[]; requestIds: unknown[]; fencedAt?: number | null | undefined }, cursor: number): boolean {
  if (a.ops.length > 0 || a.requestIds.length > 0) return true;
  if (a.fencedAt !== undefined && a.fencedAt !== null && cursor < a.fencedAt) return true;
  return a.upTo - cursor >= EMPTY_IMPORT_ENTRIES;
}

/** Runs until this replica stops leading or the shard needs no more imports. */
export async function runImporter(p: ImporterPorts): Promise<void> {
  const opsIn = (bytes: number): number => Math.max(1, Math.floor(bytes / (p.dim * 4 + 64)));
  const maxOps = opsIn(PULL_BYTES);
  const pacer = new ImportPacer();
  const propose = async (step: ImportCommand<Uint8Array>): Promise<number> => {
    await p.propose(encodeCommand({ type: 'import', step, at: Date.now() }));
    if (step.type === 'import-copied') return 0;
    const bytes = opsBytes(step.ops);
    p.counted?.(step.source, step.epoch, bytes, step.ops.length);
    return bytes;
  };
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
            const rate = p.rate?.() ?? 0;
            const page = await p.pull(source, { target: p.shard, epoch: next.epoch, cursor: 0, after, maxOps: opsIn(pageBytes(rate)) });
            if (page.type !== 'import-page' || !p.leading()) return;
            const { next: more, ...step } = page;
            const bytes = await propose(step);
            const wait = pacer.take(bytes, p.now(), rate);
            if (wait > 0) await p.sleep(wait);
            if (more === null) break;
            after = more;
          }
          await propose({ type: 'import-copied', source, epoch: next.epoch });
          busy = true;
          continue;
        }
        const a = await p.pull(source, { target: p.shard, epoch: next.epoch, cursor, maxOps });
        if (a.type === 'import' && a.upTo > cursor && worthImporting(a, cursor)) {
          const { fencedAt: _f, ...step } = a;
          await propose(step);
          busy = true;
        }
      } catch (err) {
        p.log.debug('reshard import from a source failed; again', { shard: p.shard, source, error: describeError(err) });
      }
    }
    if (!busy) await p.sleep(IMPORT_IDLE_MS);
  }
}
