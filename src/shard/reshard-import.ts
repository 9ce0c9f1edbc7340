/**
 * The copy of a reshard (docs/resharding.md, copy and catch-up): a target pulls from each source
 * what moves to it, and proposes it to its own log as `import` entries.
 *
 * - The source answers a pull with cursor 0 with its points that move to the target, read at one
 *   applied index I (≥ its `begin`), and the entries of its request-id table that wrote them
 *   (with those keys only); any later pull, with the entries of
 *   its journal after the cursor (up to its applied index) for keys that move to the target.
 *   Every replica of the source has the same points and journal, so any that has applied its
 *   `begin` may answer.
 * - The import reaches `upTo`: the target has everything of the source up to that index. An import
 *   at or below the target's cursor is skipped when applied, so a pull repeated by a new target
 *   leader, or answered twice, changes nothing.
 *
 * Generic over how a point's value is stored (the simulation's model and the real shard alike).
 */
import type { ShardOwnership } from './reshard-state.js';

/** One write of the journal, filtered to a source's moving keys: `value` null for a delete. */
export interface JournalEntry<V> {
  index: number;
  ops: { key: string; value: V | null }[];
  requestId?: string | undefined;
}

/** What a source offers a pull. */
export interface SourceView<V> {
  appliedIndex: number;
  points(): Iterable<[string, V]>;
  /** Journal entries with index above `after`, in index order. */
  journalAfter(after: number): Iterable<JournalEntry<V>>;
  /** The request-id table: each request id with the keys its write applied here. */
  requestIds(): Iterable<[string, readonly string[]]>;
}

export interface ImportBatch<V> {
  source: number;
  epoch: number;
  upTo: number;
  ops: { key: string; value: V | null }[];
  /** Request ids that wrote keys moving to the target, with those keys: a retry after the switch applies only the keys not listed. */
  requestIds: { id: string; keys: string[] }[];
}

/** Why a source cannot answer a pull now (it has not begun this reshard, or has moved past it). */
export class PullRefused extends Error {}

/**
 * A source's answer to `target`'s pull after `cursor`, for the reshard to `epoch`. `source` is the
 * source's ownership (its reshard state). At most `maxOps` operations: a pull that has more ends
 * early at an entry boundary (a snapshot, which is one index, is never cut).
 */
export function answerPull<V>(source: ShardOwnership, view: SourceView<V>, target: number, epoch: number, cursor: number, maxOps = Infinity): ImportBatch<V> {
  const next = source.state.next;
  if (next === null || next.epoch !== epoch) throw new PullRefused(`shard ${source.shard} runs no reshard to epoch ${epoch}`);
  const movesToTarget = (key: string): boolean => source.moving(key) && source.ownerAt(key, epoch) === target;
  if (cursor === 0) {
    const ops: ImportBatch<V>['ops'] = [];
    for (const [key, value] of view.points()) if (movesToTarget(key)) ops.push({ key, value });
    const requestIds: ImportBatch<V>['requestIds'] = [];
    for (const [id, keys] of view.requestIds()) {
      const moved = keys.filter(movesToTarget);
      if (moved.length > 0) requestIds.push({ id, keys: moved });
    }
    return { source: source.shard, epoch, upTo: view.appliedIndex, ops, requestIds };
  }
  const ops: ImportBatch<V>['ops'] = [];
  const requestIds: ImportBatch<V>['requestIds'] = [];
  let upTo = view.appliedIndex;
  for (const e of view.journalAfter(cursor)) {
    if (e.index > view.appliedIndex) break;
    const mine = e.ops.filter((o) => movesToTarget(o.key));
    if (ops.length > 0 && ops.length + mine.length > maxOps) {
      upTo = e.index - 1;
      break;
    }
    ops.push(...mine);
    if (mine.length > 0 && e.requestId !== undefined) requestIds.push({ id: e.requestId, keys: mine.map((o) => o.key) });
  }
  return { source: source.shard, epoch, upTo: Math.max(upTo, cursor), ops, requestIds };
}
