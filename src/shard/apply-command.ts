/**
 * Applying one command inside the batch's LMDB write transaction: points, dedup entries and the
 * index journal are written; what the in-memory index must do is returned. Pure of I/O other
 * than those synchronous writes, so a throw aborts the whole batch.
 */
import type { JournalEntry } from '../storage/shard-meta-store.js';
import type { DedupStore } from '../storage/dedup-store.js';
import { DEDUP_WINDOW_MS } from '../storage/dedup-store.js';
import type { PointsStore } from '../storage/points-store.js';
import type { ChangeOutbox, ChangePoint } from '../storage/change-outbox.js';
import type { ShardMetaStore } from '../storage/shard-meta-store.js';
import { checkVector, type Metric } from '../index/mod.js';
import type { ApplyResult, LogEntry } from './commands.js';
import { MAX_ID_BYTES, MAX_REQUEST_ID_BYTES } from './commands.js';
import type { ShardMeta } from './shard-meta.js';
import { admit, applyImport, applyReshardStep, journalMoves, routeOfValue, type ShardPlace } from './apply-reshard.js';
import { idsToApply } from './dedup-rule.js';

export interface ApplyContext extends ShardPlace {
  group: string;
  dim: number;
  metric: Metric;
  points: PointsStore;
  dedup: DedupStore;
  meta: ShardMetaStore<ShardMeta>;
  /** The change-stream outbox (docs/changes.md). */
  outbox: ChangeOutbox;
  /** Whether the collection has a change stream: an applied write that changed something then leaves an outbox record. */
  changeStream: boolean;
}

class Rejected extends Error {}

function reject(message: string): never {
  throw new Rejected(message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function checkId(id: unknown, path: string): string {
  if (typeof id !== 'string' || id.length === 0 || Buffer.byteLength(id) > MAX_ID_BYTES) {
    reject(`${path} must be a non-empty string of at most ${MAX_ID_BYTES} bytes`);
  }
  return id;
}

type ParsedPoint = { vector: Float32Array; metadata: Record<string, unknown> | undefined; shardKey: string | undefined };

/** An upsert's points by id, checked (a repeated id: the last one wins, at the first one's position). */
function parsePoints(ctx: ApplyContext, points: unknown): Map<string, ParsedPoint> {
  if (!Array.isArray(points)) reject('points must be an array');
  const byId = new Map<string, ParsedPoint>();
  points.forEach((p: unknown, i) => {
    if (!isPlainObject(p)) reject(`points[${i}] must be an object`);
    const id = checkId(p.id, `points[${i}].id`);
    const v = p.vector;
    if (!(v instanceof Float32Array) && !Array.isArray(v)) reject(`points[${i}].vector must be an array of numbers`);
    try {
      checkVector(v as ArrayLike<number>, ctx.dim, ctx.metric, `points[${i}].vector`);
    } catch (err) {
      reject((err as Error).message);
    }
    if (p.metadata !== undefined && p.metadata !== null && !isPlainObject(p.metadata)) reject(`points[${i}].metadata must be an object`);
    if (p.shardKey !== undefined && (typeof p.shardKey !== 'string' || Buffer.byteLength(p.shardKey) > MAX_ID_BYTES)) reject(`points[${i}].shardKey must be a string of at most ${MAX_ID_BYTES} bytes`);
    const vector = v instanceof Float32Array ? v : Float32Array.from(v as number[]);
    byId.set(id, { vector, metadata: (p.metadata as Record<string, unknown> | null | undefined) ?? undefined, shardKey: p.shardKey as string | undefined });
  });
  return byId;
}

/** A delete's ids, checked before anything is removed: a refused command writes nothing. */
function parseIds(ids: unknown): Set<string> {
  if (!Array.isArray(ids)) reject('ids must be an array');
  return new Set<string>(ids.map((raw: unknown, i) => checkId(raw, `ids[${i}]`)));
}

function upsert(ctx: ApplyContext, byId: Map<string, ParsedPoint>, skip: ReadonlySet<string>, meta: ShardMeta): { result: ApplyResult; journal: JournalEntry } {
  const journal: JournalEntry = { upserts: [], deletes: [] };
  for (const [id, p] of byId) {
    if (skip.has(id)) continue;
    if (!ctx.points.has(ctx.group, id)) meta.count++;
    ctx.points.put(ctx.group, id, p.vector, p.metadata, p.shardKey);
    journal.upserts.push([id, p.vector, p.metadata ?? null]);
  }
  return { result: { upserted: byId.size }, journal };
}

function remove(ctx: ApplyContext, ids: Set<string>, skip: ReadonlySet<string>, meta: ShardMeta): { result: ApplyResult; journal: JournalEntry } {
  const journal: JournalEntry = { upserts: [], deletes: [] };
  for (const id of ids) {
    if (skip.has(id)) continue;
    if (ctx.points.remove(ctx.group, id)) {
      meta.count--;
      journal.deletes.push(id);
    }
  }
  return { result: { deleted: journal.deletes.length }, journal };
}

/**
 * Applies `entry` inside the current write transaction, updating `meta` (a working copy).
 * Returns the entry's result and the index changes it made (null when none).
 *
 * Exactly-once: a command whose requestId is in the dedup table returns the stored result and
 * changes nothing. Entries expire when the highest `at` applied passes theirs by
 * {@link DEDUP_WINDOW_MS}: by the commands' own timestamps, so every replica agrees.
 */
export function applyCommand(ctx: ApplyContext, entry: LogEntry, meta: ShardMeta): { result: ApplyResult; journal: JournalEntry | null } {
  const cmd = entry.command;
  if (cmd.type === 'noop') return { result: { noop: true }, journal: null };
  if (cmd.type === 'changes-published') {
    // published records are dropped on every replica alike (a bad upTo drops nothing)
    if (typeof cmd.upTo === 'number' && Number.isSafeInteger(cmd.upTo)) ctx.outbox.prune(ctx.group, cmd.upTo);
    return { result: { noop: true }, journal: null };
  }
  // Reshard moves and imports are not user writes: they never reach the change stream.
  if (cmd.type === 'reshard' || cmd.type === 'import') {
    const r = cmd.type === 'reshard' ? applyReshardStep(ctx, meta, cmd.step, entry.index) : applyImport(ctx, meta, cmd.step, cmd.at);
    if (r.journal) ctx.meta.putJournal(ctx.group, entry.index, { ...r.journal, count: meta.count });
    return r;
  }
  if (cmd.type !== 'upsert' && cmd.type !== 'delete') {
    return { result: { rejected: { code: 'INVALID_ARGUMENT', message: `unknown command type ${JSON.stringify((cmd as { type: unknown }).type)}` } }, journal: null };
  }
  if (typeof cmd.at === 'number' && Number.isFinite(cmd.at) && cmd.at > meta.maxAt) {
    meta.maxAt = cmd.at;
    ctx.dedup.expire(ctx.group, meta.maxAt - DEDUP_WINDOW_MS);
  }
  const epoch = typeof cmd.mapEpoch === 'number' ? cmd.mapEpoch : 0;
  const requestId = cmd.requestId;
  const validId = typeof requestId === 'string' && requestId.length > 0 && Buffer.byteLength(requestId) <= MAX_REQUEST_ID_BYTES;
  const prior = validId ? ctx.dedup.get<ApplyResult>(ctx.group, requestId) : undefined;
  // The same request again: nothing is applied, the first result returned (dedup-rule.ts).
  if (prior && 'none' in idsToApply(prior, epoch, [])) return { result: prior.result, journal: null };
  let parsed: { points: Map<string, ParsedPoint> } | { ids: Set<string> };
  try {
    if (requestId !== undefined && !validId) reject(`requestId must be a non-empty string of at most ${MAX_REQUEST_ID_BYTES} bytes`);
    if (typeof cmd.at !== 'number' || !Number.isFinite(cmd.at)) reject('at must be a finite number (the leader-assigned timestamp)');
    parsed = cmd.type === 'upsert' ? { points: parsePoints(ctx, cmd.points) } : { ids: parseIds(cmd.ids) };
  } catch (err) {
    if (!(err instanceof Rejected)) throw err;
    // Checked before any write of this command, so nothing of it was written.
    const result: ApplyResult = { rejected: { code: 'INVALID_ARGUMENT', message: err.message } };
    if (validId && !prior) ctx.dedup.put(ctx.group, requestId, { result, at: cmd.at, keys: [], epoch });
    return { result, journal: null };
  }
  const ids = 'points' in parsed ? [...parsed.points.keys()] : [...parsed.ids];
  // What places each point: its shard key (custom sharding), else its id. A delete is checked for
  // the points this shard holds (with custom sharding every shard is asked to delete every id).
  const checked =
    'points' in parsed
      ? ids.map((id) => ({ id, route: parsed.points.get(id)?.shardKey ?? id }))
      : ids.flatMap((id) => {
          const v = ctx.points.getRaw(ctx.group, id);
          return v ? [{ id, route: routeOfValue(id, v) }] : [];
        });
  // The shard map (docs/resharding.md): refused writes are not remembered, so their retry is applied.
  const admitted = admit(ctx, meta, epoch, checked.map((c) => c.id), checked.map((c) => c.route));
  if ('refused' in admitted) return { result: admitted.refused, journal: null };
  // Retried across a reshard, or known only from an import: the ids not applied here yet.
  const skip = new Set(prior?.keys ?? []);
  const out = 'points' in parsed ? upsert(ctx, parsed.points, skip, meta) : remove(ctx, parsed.ids, skip, meta);
  const applied = ids.filter((id) => !skip.has(id));
  const result = prior && !prior.imported ? prior.result : out.result;
  if (validId) ctx.dedup.put(ctx.group, requestId, { result, at: prior?.at ?? cmd.at, keys: [...skip, ...applied], epoch });
  journalMoves(ctx, entry.index, admitted.journal.filter((m) => !skip.has(m.id)), validId ? requestId : undefined);
  const journal = out.journal.upserts.length + out.journal.deletes.length === 0 ? null : out.journal;
  if (journal) ctx.meta.putJournal(ctx.group, entry.index, { ...journal, count: meta.count });
  // What this entry changed, for the change stream: the points as stored, or the ids that existed.
  if (journal && ctx.changeStream) {
    const time = meta.maxAt;
    if ('points' in parsed) {
      const points = journal.upserts.map(([id, vector, metadata]): ChangePoint => {
        const shardKey = parsed.points.get(id)?.shardKey;
        return { id, vector, ...(metadata ? { metadata } : {}), ...(shardKey !== undefined ? { shardKey } : {}) };
      });
      if (points.length > 0) ctx.outbox.put(ctx.group, entry.index, { op: 'upsert', time, points });
    } else if (journal.deletes.length > 0) {
      ctx.outbox.put(ctx.group, entry.index, { op: 'delete', time, ids: journal.deletes });
    }
  }
  return { result, journal };
}
