/** Messages between {@link IndexHost} (the caller's thread) and the index worker thread. */
import type { HnswIndexOptions } from './hnsw-index.js';
import type { Hit, IndexPoint, SearchExplain, SearchPlan, SearchQuery } from './types.js';

/** One change to an index, applied in order by {@link WorkerIndex.apply}. */
export type IndexStep =
  | { type: 'upsert'; points: IndexPoint[] }
  | { type: 'delete'; ids: string[] }
  /** Hide stored points from searches, gets and counts (see {@link VectorIndex.hide}); resolves to how many were hidden. */
  | { type: 'hide'; ids: string[] }
  /** Show hidden points again (see {@link VectorIndex.unhide}); resolves to how many were unhidden. */
  | { type: 'unhide'; ids: string[] }
  /** Write the index to the directory `dir` (atomically, durably) and read it back: see {@link HnswIndex.checkpoint}. */
  | { type: 'checkpoint'; dir: string }
  /** Write the index's files into the new directory `dir` WITHOUT reading them back: the index goes on unchanged (a backup's copy of the graph, docs/backups.md). */
  | { type: 'save'; dir: string };

/** Upserts travel packed: ids, one Float32Array of all vectors (transferred), metadata. */
export type WireStep =
  | { type: 'upsert'; ids: string[]; vectors: Float32Array; metadata: (IndexPoint['metadata'] | null)[] }
  | { type: 'delete'; ids: string[] }
  | { type: 'hide'; ids: string[] }
  | { type: 'unhide'; ids: string[] }
  | { type: 'checkpoint'; dir: string }
  | { type: 'save'; dir: string };

export type IndexKind = 'hnsw' | 'flat';

export type WorkerRequest =
  | { op: 'create'; handle: number; kind: IndexKind; options: HnswIndexOptions }
  | { op: 'load'; handle: number; dir: string; options: HnswIndexOptions }
  | { op: 'drop'; handle: number }
  | { op: 'apply'; handle: number; steps: WireStep[] }
  /** Searches of any of the worker's indexes, answered in order. */
  | { op: 'search'; searches: { handle: number; query: SearchQuery }[] }
  | { op: 'get'; handle: number; ids: string[] }
  | { op: 'count'; handle: number }
  | { op: 'plan'; handle: number; query: SearchQuery }
  | { op: 'memory' };

/** A search's hits, and the plan the index chose for it. */
export interface ExplainedHits {
  hits: Hit[];
  explain: SearchExplain;
}

export interface WireErrorBody {
  name: string;
  code?: string;
  message: string;
  /** A CorruptDataError's damaged file. */
  file?: string;
}

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireErrorBody };

export type ReplyValue = {
  create: null;
  load: null;
  drop: null;
  apply: (number | null)[];
  /** Per search: its hits and what the index chose, or the error it failed with (one bad search does not fail its batch). */
  search: (ExplainedHits | { error: WireErrorBody })[];
  get: (IndexPoint | null)[];
  count: number;
  plan: SearchPlan;
  memory: WorkerMemory;
};

/** The worker's memory (after a collection, when the process runs with --expose-gc). */
export interface WorkerMemory {
  /** The whole process's resident set. */
  rss: number;
  /** The worker's JavaScript heap. */
  heapUsed: number;
  /** Memory outside the heap held by the worker's objects (typed arrays included). */
  external: number;
}
