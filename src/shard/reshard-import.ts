/**
 * The copy of a reshard (docs/resharding.md, copy and catch-up): a target pulls from each source
 * what moves to it, and proposes it to its own log as import commands.
 *
 * - **Copy**, while the target's cursor for the source is 0: pages of the source's points that
 *   move to the target, in key order, each read at the source's applied index then (`index`),
 *   the first with the entries of the source's request-id table that wrote such keys (with those
 *   keys only). Pages may be read at different indexes, repeated, or arrive late: the target
 *   keeps the lowest index of the pages it applied (`copyLows`), and `import-copied` sets the
 *   cursor to it, so the journal is replayed from before every page. Replaying a write a page
 *   already showed is harmless: the journal ends at the newest value. A page that arrives after
 *   `import-copied` is refused (it could hold a value older than the journal replayed since).
 * - **Catch-up**, once the cursor is set: the source's journal entries after the cursor, for keys
 *   that move to the target, up to its applied index (`upTo`). One at or below the cursor is skipped.
 *
 * Every replica of the source has the same points and journal, so any that has applied its
 * `begin` may answer. Generic over how a point's value is carried (the model's strings, the
 * shard's vectors and metadata).
 */
import type { ReshardState, ShardOwnership } from './reshard-state.js';

/** One write of the journal, filtered to a source's moving keys: `value` null for a delete. */
export interface JournalEntry<V> {
  index: number;
  ops: ImportOp<V>[];
  requestId?: string | undefined;
}

export interface ImportOp<V> {
  key: string;
  value: V | null;
  /** What places the point when it is not `key` (a custom-sharded point's shard key; a delete carries it since its value is gone). */
  route?: string | undefined;
}

/** What a source offers a pull. */
export interface SourceView<V> {
  appliedIndex: number;
  /** Points with key above `after` (all without it), in key order. */
  points(after: string | undefined): Iterable<[string, V]>;
  /** Journal entries with index above `after`, in index order. */
  journalAfter(after: number): Iterable<JournalEntry<V>>;
  /** The request-id table: each request id with the keys its write applied here. */
  requestIds(): Iterable<[string, readonly string[]]>;
  /** What places a point: its shard key for custom sharding (from `value`, or the stored point; undefined when unknown), else its key. Default: the key. */
  route?(key: string, value?: V): string | undefined;
}

export type ImportCommand<V> =
  /** A page of the copy, read at the source's applied index `index`; `requestIds` only on the first page. */
  | { type: 'import-page'; source: number; epoch: number; index: number; ops: ImportOp<V>[]; requestIds: { id: string; keys: string[] }[] }
  /** The copy from `source` is complete: the cursor becomes the lowest index of its pages. */
  | { type: 'import-copied'; source: number; epoch: number }
  /** Journal entries of `source` after the cursor, up to `upTo`. */
  | { type: 'import'; source: number; epoch: number; upTo: number; ops: ImportOp<V>[]; requestIds: { id: string; keys: string[] }[] };

/** The answer to a pull: a page of the copy (`next` the key to go on after, null when it was the last), or journal entries. */
export type PullAnswer<V> =
  | { type: 'import-page'; source: number; epoch: number; index: number; ops: ImportOp<V>[]; requestIds: { id: string; keys: string[] }[]; next: string | null }
  | { type: 'import'; source: number; epoch: number; upTo: number; ops: ImportOp<V>[]; requestIds: { id: string; keys: string[] }[]; fencedAt?: number | null };

/** Why a source cannot answer a pull now (it has not begun this reshard, or has ended it). */
export class PullRefused extends Error {}

export interface PullRequest {
  target: number;
  epoch: number;
  /** The target's cursor for this source (0 while copying). */
  cursor: number;
  /** While copying: the key the previous page ended at (none for the first page). */
  after?: string | undefined;
  /** At most this many operations in the answer (a journal entry is never cut; a page may scan further and return fewer). */
  maxOps: number;
}

export function answerPull<V>(source: ShardOwnership, view: SourceView<V>, req: PullRequest): PullAnswer<V> {
  const next = source.state.next;
  const { target, epoch } = req;
  if (next === null || next.epoch !== epoch) throw new PullRefused(`shard ${source.shard} runs no reshard to epoch ${epoch}`);
  const movesToTarget = (route: string): boolean => source.moving(route) && source.ownerAt(route, epoch) === target;
  const routeOf = (key: string, value?: V): string | undefined => (view.route ? view.route(key, value) : key);
  if (req.cursor === 0) {
    const ops: ImportOp<V>[] = [];
    // Keys that stay are skipped without counting against maxOps, up to ten times as many.
    let scanned = 0;
    let last: string | undefined;
    let more = false;
    for (const [key, value] of view.points(req.after)) {
      if (ops.length >= req.maxOps || scanned >= req.maxOps * 10) {
        more = true;
        break;
      }
      scanned++;
      last = key;
      const route = routeOf(key, value) ?? key;
      if (movesToTarget(route)) ops.push(route === key ? { key, value } : { key, value, route });
    }
    const requestIds: { id: string; keys: string[] }[] = [];
    if (req.after === undefined) {
      for (const [id, keys] of view.requestIds()) {
        // an id whose place is unknown (a deleted custom point) is kept: it was applied, which is all the entry says
        const moved = keys.filter((k) => {
          const route = routeOf(k);
          return route === undefined || movesToTarget(route);
        });
        if (moved.length > 0) requestIds.push({ id, keys: moved });
      }
    }
    return { type: 'import-page', source: source.shard, epoch, index: view.appliedIndex, ops, requestIds, next: more ? (last ?? req.after ?? null) : null };
  }
  const ops: ImportOp<V>[] = [];
  const requestIds: { id: string; keys: string[] }[] = [];
  let upTo = view.appliedIndex;
  for (const e of view.journalAfter(req.cursor)) {
    if (e.index > view.appliedIndex) break;
    const mine = e.ops.filter((o) => movesToTarget(o.route ?? o.key));
    if (ops.length > 0 && ops.length + mine.length > req.maxOps) {
      upTo = e.index - 1;
      break;
    }
    ops.push(...mine);
    if (mine.length > 0 && e.requestId !== undefined) requestIds.push({ id: e.requestId, keys: mine.map((o) => o.key) });
  }
  // the fence's index too: a target whose cursor is behind it imports even an empty stretch (it must reach it to switch)
  return { type: 'import', source: source.shard, epoch, upTo: Math.max(upTo, req.cursor), ops, requestIds, fencedAt: source.state.fencedAt };
}

/**
 * Whether a target applies an import command: it must run the reshard the command is for and not
 * have switched yet; a page only while the copy from its source is not complete; `import-copied`
 * once (after at least one page); a journal import only past the cursor. The reasons are for logs.
 */
export function importApplies(own: ShardOwnership, cmd: ImportCommand<unknown>): { ok: true } | { ok: false; why: string } {
  const st = own.state;
  if (st.next === null || st.next.epoch !== cmd.epoch) return { ok: false, why: `no reshard to epoch ${cmd.epoch} runs` };
  if (st.switched) return { ok: false, why: 'switched already' };
  const cursor = st.cursors[cmd.source] ?? 0;
  switch (cmd.type) {
    case 'import-page':
      return cursor === 0 ? { ok: true } : { ok: false, why: `the copy from shard ${cmd.source} is complete (cursor ${cursor})` };
    case 'import-copied':
      if (cursor !== 0) return { ok: false, why: `the copy from shard ${cmd.source} was complete already` };
      return st.copyLows[cmd.source] === undefined ? { ok: false, why: `no page from shard ${cmd.source} was applied` } : { ok: true };
    case 'import':
      return cmd.upTo > cursor && cursor > 0 ? { ok: true } : { ok: false, why: `shard ${cmd.source}'s entries up to ${cmd.upTo} are in (cursor ${cursor})` };
  }
}

/** The target's reshard state after an import command it applies. */
export function afterImport(state: ReshardState, cmd: ImportCommand<unknown>): ReshardState {
  switch (cmd.type) {
    case 'import-page':
      return { ...state, copyLows: { ...state.copyLows, [cmd.source]: Math.min(cmd.index, state.copyLows[cmd.source] ?? Infinity) } };
    case 'import-copied':
      return { ...state, cursors: { ...state.cursors, [cmd.source]: state.copyLows[cmd.source] as number } };
    case 'import':
      return { ...state, cursors: { ...state.cursors, [cmd.source]: cmd.upTo } };
  }
}
