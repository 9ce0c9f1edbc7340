/**
 * Applying one command inside the batch's LMDB write transaction: points, dedup entries and the
 * index journal are written; what the in-memory index must do is returned. Pure of I/O other
 * than those synchronous writes, so a throw aborts the whole batch.
 */
import type { JournalEntry } from '../storage/shard-meta-store.js';
import type { DedupStore } from '../storage/dedup-store.js';
import { DEDUP_WINDOW_MS } from '../storage/dedup-store.js';
import type { PointsStore } from '../storage/points-store.js';
import type { ShardMetaStore } from '../storage/shard-meta-store.js';
import { checkVector, type Metric } from '../index/mod.js';
import type { ApplyResult, LogEntry } from './commands.js';
import { MAX_ID_BYTES, MAX_REQUEST_ID_BYTES } from './commands.js';
import type { ShardMeta } from './shard-meta.js';

export interface ApplyContext {
  group: string;
  dim: number;
  metric: Metric;
  points: PointsStore;
  dedup: DedupStore;
  meta: ShardMetaStore<ShardMeta>;
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

function upsert(ctx: ApplyContext, points: unknown, meta: ShardMeta): { result: ApplyResult; journal: JournalEntry } {
  if (!Array.isArray(points)) reject('points must be an array');
  // Within one upsert a repeated id: the last one wins (its position is the first one's).
  const byId = new Map<string, { vector: Float32Array; metadata: Record<string, unknown> | undefined }>();
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
    const vector = v instanceof Float32Array ? v : Float32Array.from(v as number[]);
    byId.set(id, { vector, metadata: (p.metadata as Record<string, unknown> | null | undefined) ?? undefined });
  });
  const journal: JournalEntry = { upserts: [], deletes: [] };
  for (const [id, p] of byId) {
    if (!ctx.points.has(ctx.group, id)) meta.count++;
    ctx.points.put(ctx.group, id, p.vector, p.metadata);
    journal.upserts.push([id, p.vector, p.metadata ?? null]);
  }
  return { result: { upserted: byId.size }, journal };
}

function remove(ctx: ApplyContext, ids: unknown, meta: ShardMeta): { result: ApplyResult; journal: JournalEntry } {
  if (!Array.isArray(ids)) reject('ids must be an array');
  // Every id is checked before anything is removed: a refused command writes nothing.
  const distinct = new Set<string>(ids.map((raw: unknown, i) => checkId(raw, `ids[${i}]`)));
  const journal: JournalEntry = { upserts: [], deletes: [] };
  for (const id of distinct) {
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
  if (cmd.type !== 'upsert' && cmd.type !== 'delete') {
    return { result: { rejected: { code: 'INVALID_ARGUMENT', message: `unknown command type ${JSON.stringify((cmd as { type: unknown }).type)}` } }, journal: null };
  }
  if (typeof cmd.at === 'number' && Number.isFinite(cmd.at) && cmd.at > meta.maxAt) {
    meta.maxAt = cmd.at;
    ctx.dedup.expire(ctx.group, meta.maxAt - DEDUP_WINDOW_MS);
  }
  const requestId = cmd.requestId;
  const validId = typeof requestId === 'string' && requestId.length > 0 && Buffer.byteLength(requestId) <= MAX_REQUEST_ID_BYTES;
  if (validId) {
    const prior = ctx.dedup.get<ApplyResult>(ctx.group, requestId);
    if (prior) return { result: prior.result, journal: null };
  }
  let out: { result: ApplyResult; journal: JournalEntry | null };
  try {
    if (requestId !== undefined && !validId) reject(`requestId must be a non-empty string of at most ${MAX_REQUEST_ID_BYTES} bytes`);
    if (typeof cmd.at !== 'number' || !Number.isFinite(cmd.at)) reject('at must be a finite number (the leader-assigned timestamp)');
    out = cmd.type === 'upsert' ? upsert(ctx, cmd.points, meta) : remove(ctx, cmd.ids, meta);
  } catch (err) {
    if (!(err instanceof Rejected)) throw err;
    // Validation happens before any write of this command, so nothing of it was written.
    out = { result: { rejected: { code: 'INVALID_ARGUMENT', message: err.message } }, journal: null };
  }
  if (validId) ctx.dedup.put(ctx.group, requestId, { result: out.result, at: cmd.at });
  if (out.journal && out.journal.upserts.length + out.journal.deletes.length === 0) out.journal = null;
  if (out.journal) ctx.meta.putJournal(ctx.group, entry.index, out.journal);
  return out;
}
