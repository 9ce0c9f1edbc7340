/**
 * A seeded workload of shard log entries (upsert batches with repeated ids, deletes, no-ops,
 * retried requestIds) and an independent model of what applying a prefix of it must leave.
 */
import type { LogEntry } from '../../src/shard/mod.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

export function randomVector(rand: () => number, dim: number): number[] {
  return Array.from({ length: dim }, () => Math.round((rand() * 2 - 1) * 1000) / 1000);
}

export interface WorkloadOptions {
  seed: number;
  entries: number;
  dim: number;
  /** Size of the id space: smaller means more replaces and deletes of existing points. */
  ids: number;
  batch?: number;
}

export function workload(o: WorkloadOptions): LogEntry[] {
  const rand = rng(o.seed);
  const out: LogEntry[] = [];
  let at = 1_700_000_000_000;
  for (let index = 1; index <= o.entries; index++) {
    at += Math.floor(rand() * 5_000);
    const r = rand();
    const requestId = rand() < 0.3 ? `req-${Math.floor(rand() * 40)}` : undefined;
    if (r < 0.05) {
      out.push({ index, command: { type: 'noop', at } });
    } else if (r < 0.25) {
      const ids = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => `p${Math.floor(rand() * o.ids)}`);
      out.push({ index, command: { type: 'delete', ids, requestId, at } });
    } else {
      const n = 1 + Math.floor(rand() * (o.batch ?? 12));
      const points = Array.from({ length: n }, () => {
        const id = `p${Math.floor(rand() * o.ids)}`;
        const c = Math.floor(rand() * 5);
        return { id, vector: randomVector(rand, o.dim), metadata: rand() < 0.9 ? { c, tag: c % 2 === 0 ? 'even' : 'odd', n: Math.floor(rand() * 100) } : undefined };
      });
      out.push({ index, command: { type: 'upsert', points, requestId, at } });
    }
  }
  return out;
}

export interface ModelPoint {
  vector: number[];
  metadata: Record<string, unknown> | undefined;
}

/** What the points must be after applying `entries` (a prefix of a workload), computed without the state machine. */
export function model(entries: readonly LogEntry[], windowMs = 10 * 60_000): Map<string, ModelPoint> {
  const points = new Map<string, ModelPoint>();
  const seen = new Map<string, number>();
  let maxAt = -Infinity;
  for (const { command: c } of entries) {
    if (c.type !== 'upsert' && c.type !== 'delete') continue;
    maxAt = Math.max(maxAt, c.at);
    for (const [rid, at] of seen) if (at < maxAt - windowMs) seen.delete(rid);
    if (c.requestId !== undefined) {
      if (seen.has(c.requestId)) continue;
      seen.set(c.requestId, c.at);
    }
    if (c.type === 'upsert') for (const p of c.points) points.set(p.id, { vector: Array.from(p.vector), metadata: p.metadata });
    else for (const id of c.ids) points.delete(id);
  }
  return points;
}
