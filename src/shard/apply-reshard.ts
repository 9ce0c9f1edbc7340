/**
 * The reshard side of applying a shard's log (docs/resharding.md), inside the batch's LMDB write
 * transaction like apply-command.ts: which writes a shard admits at a router's map epoch, the
 * journal of its moving keys, imports from sources (hidden until the switch), and the reshard
 * steps (at the switch, what moved in is shown and what moved away is hidden; at the end, what
 * moved away is deleted). Every decision is the pure one of reshard-state.ts and reshard-import.ts.
 */
import { decodePoint, shardKeyOf } from '../storage/points-store.js';
import type { JournalEntry } from '../storage/shard-meta-store.js';
import { encodeValue } from '../storage/store-codec.js';
import type { ApplyContext } from './apply-command.js';
import type { ApplyResult } from './commands.js';
import { afterImport, importApplies, type ImportCommand, type ImportOp } from './reshard-import.js';
import { applyReshard, initialReshardState, ShardOwnership, type OwnerOf, type ReshardCommand, type ReshardState } from './reshard-state.js';
import type { ShardMeta } from './shard-meta.js';

/** What a shard needs to know of its collection to decide ownership. */
export interface ShardPlace {
  shard: number;
  ownerOf: OwnerOf;
}

const owners = new WeakMap<ReshardState, ShardOwnership>();

/** The shard's decisions for its reshard state (built once per state: states are replaced, never changed). */
export function ownershipOf(place: ShardPlace, state: ReshardState): ShardOwnership {
  let own = owners.get(state);
  if (!own) owners.set(state, (own = new ShardOwnership(place.ownerOf, place.shard, state)));
  return own;
}

/**
 * Whether a write of `ids` (placed by `routes`: their shard keys for custom sharding, else the ids)
 * at the router's map `epoch` is applied here; for one that is, the ids that go to the reshard
 * journal (moving keys, before the fence). A shard that never resharded serves epoch 0 and checks
 * nothing else.
 */
export function admit(ctx: ApplyContext, meta: ShardMeta, epoch: number, ids: readonly string[], routes: readonly string[]): { refused: Extract<ApplyResult, { refused: unknown }> } | { journal: { id: string; route: string }[] } {
  const state = meta.reshard ?? null;
  if (state === null) {
    if (epoch === 0) return { journal: [] };
    return { refused: { refused: { code: 'STALE_MAP', message: `shard ${ctx.shard} serves map epoch 0, not ${epoch}` } } };
  }
  const own = ownershipOf(ctx, state);
  const a = own.admitWrite(epoch, routes);
  if (a.ok) {
    const moving = new Set(a.journal);
    return { journal: ids.flatMap((id, i) => (moving.has(routes[i] as string) ? [{ id, route: routes[i] as string }] : [])) };
  }
  const message =
    a.code === 'STALE_MAP'
      ? `shard ${ctx.shard} serves map epoch ${own.serving ?? 'none'} (it knows ${a.epoch}), not ${epoch}`
      : a.code === 'MOVING'
        ? `${a.keys.length} of the points are moving to another shard (e.g. '${a.keys[0]}'); retry`
        : `shard ${ctx.shard} does not own ${a.keys.length} of the points at epoch ${epoch} (e.g. '${a.keys[0]}')`;
  return { refused: { refused: { code: a.code, message } } };
}

/** Writes the reshard journal entry of a write's moving points (their stored values after it, or null for deleted ones, with what places them). */
export function journalMoves(ctx: ApplyContext, index: number, moving: readonly { id: string; route: string }[], requestId: string | undefined): void {
  if (moving.length === 0) return;
  const ops: ImportOp<Uint8Array>[] = moving.map(({ id, route }) => {
    const op: ImportOp<Uint8Array> = { key: id, value: ctx.points.getRaw(ctx.group, id) ?? null };
    if (route !== id) op.route = route;
    return op;
  });
  ctx.meta.putMoves(ctx.group, index, encodeValue({ index, ops, requestId }));
}

/** What places a stored point: its shard key (custom sharding), else its id. */
export function routeOfValue(id: string, value: Uint8Array | null | undefined): string {
  return (value ? shardKeyOf(value) : undefined) ?? id;
}

/** Applies an import (docs/resharding.md, copy and catch-up): its points stored and hidden, its deletes, its request ids. */
export function applyImport(ctx: ApplyContext, meta: ShardMeta, step: ImportCommand<Uint8Array>, at: number): { result: ApplyResult; journal: JournalEntry | null } {
  if (!meta.reshard) return { result: { imported: false, why: 'this shard runs no reshard' }, journal: null };
  const own = ownershipOf(ctx, meta.reshard);
  const d = importApplies(own, step);
  if (!d.ok) return { result: { imported: false, why: d.why }, journal: null };
  const journal: JournalEntry = { upserts: [], deletes: [], hide: [] };
  if (step.type !== 'import-copied') {
    const ok = own.importable(step.ops.map((o) => o.route ?? routeOfValue(o.key, o.value)));
    if (!ok.ok) return { result: { imported: false, why: `the import names ids this shard does not own at the next epoch (e.g. '${ok.keys[0]}')` }, journal: null };
    let hidden = meta.hidden ?? 0;
    // A key's last operation in the import is its state (an import may carry several writes of one key).
    const last = new Map<string, Uint8Array | null>();
    for (const o of step.ops) {
      last.delete(o.key);
      last.set(o.key, o.value);
    }
    for (const [key, value] of last) {
      const o = { key, value };
      if (o.value === null) {
        if (ctx.points.remove(ctx.group, o.key)) {
          meta.count--;
          hidden--;
          journal.deletes.push(o.key);
        }
        continue;
      }
      if (!ctx.points.has(ctx.group, o.key)) {
        meta.count++;
        hidden++;
      }
      ctx.points.putRaw(ctx.group, o.key, o.value);
      const p = decodePoint(o.value);
      journal.upserts.push([o.key, p.vector as Float32Array, p.metadata ?? null]);
      journal.hide?.push(o.key);
    }
    meta.hidden = hidden;
    for (const r of step.requestIds) {
      const prior = ctx.dedup.get<ApplyResult>(ctx.group, r.id);
      const keys = new Set([...(prior?.keys ?? []), ...r.keys]);
      // An entry of the shard's own stays its own; a new one is marked imported (dedup-rule.ts).
      ctx.dedup.put(ctx.group, r.id, prior ? { ...prior, keys: [...keys] } : { result: { upserted: r.keys.length }, at, keys: [...keys], epoch: meta.reshard.active.epoch, imported: true });
    }
  }
  meta.reshard = afterImport(meta.reshard, step);
  return { result: { imported: true }, journal: journal.upserts.length + journal.deletes.length > 0 ? journal : null };
}

/** Applies a reshard step; at the switch and at the end, what it shows, hides and deletes. */
export function applyReshardStep(ctx: ApplyContext, meta: ShardMeta, step: ReshardCommand, index: number): { result: ApplyResult; journal: JournalEntry | null } {
  const base = meta.reshard ?? (step.type === 'reshard-begin' ? initialReshardState(step.from) : null);
  if (base === null) return { result: { reshard: initialReshardState({ epoch: 0, shards: 0, groups: [] }), unchanged: 'this shard has begun no reshard' }, journal: null };
  const r = applyReshard(base, step, index);
  if ('unchanged' in r) return { result: { reshard: base, unchanged: r.unchanged }, journal: null };
  const before = ownershipOf(ctx, base);
  const after = ownershipOf(ctx, r.state);
  let journal: JournalEntry | null = null;
  if (step.type === 'reshard-switch') {
    // What moved in is shown; what moves away is hidden (docs/resharding.md, switch).
    journal = { upserts: [], deletes: [], hide: [], unhide: [] };
    for (const [id, value] of ctx.points.entries(ctx.group)) {
      const route = routeOfValue(id, value);
      const was = before.visible(route);
      const is = after.visible(route);
      if (was && !is) journal.hide?.push(id);
      else if (!was && is) journal.unhide?.push(id);
    }
    meta.hidden = (meta.hidden ?? 0) + (journal.hide?.length ?? 0) - (journal.unhide?.length ?? 0);
  } else if (step.type === 'reshard-end') {
    // What moved away is deleted, with the journal that carried it.
    journal = { upserts: [], deletes: [] };
    for (const [id, value] of Array.from(ctx.points.entries(ctx.group))) {
      if (after.visible(routeOfValue(id, value))) continue;
      ctx.points.remove(ctx.group, id);
      meta.count--;
      journal.deletes.push(id);
    }
    meta.hidden = 0;
    ctx.meta.clearMoves(ctx.group);
  }
  meta.reshard = r.state;
  return { result: { reshard: r.state }, journal };
}
