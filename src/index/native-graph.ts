/**
 * Shoal's own HNSW addon (native/hnsw-graph.cc, built by node-gyp from the root binding.gyp on
 * `npm ci` or `npm run build:native`), typed.
 *
 * It is hnswlib's HierarchicalNSW from the headers of the installed hnswlib-node, compiled with
 * hnswlib-node's flags, so the two compute bit-identical distances, build identical graphs from the
 * same inserts and seed, and read each other's files. What it adds: vectors in and results out as
 * typed arrays (no per-element reads through N-API), a search filtered by a bitset (no JavaScript
 * call per candidate), and an exact scan of chosen labels with hnswlib's own distance over the
 * vectors the graph holds.
 *
 * Synchronous: every call blocks its thread (Shoal calls it from the index worker thread).
 * Bad arguments throw a TypeError or RangeError that names the method and the argument.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Metric } from './types.js';

/** Nearest first. */
export interface GraphHits {
  labels: Uint32Array;
  distances: Float32Array;
}

/** The addon's class; method semantics are hnswlib-node's HierarchicalNSW's unless said. */
export interface HnswGraph {
  /** A new empty graph (hnswlib's allowReplaceDeleted off). */
  initIndex(maxElements: number, m: number, efConstruction: number, randomSeed: number): void;
  /** Replaces the graph by the file's; when the read fails, the graph is unchanged. */
  readIndex(path: string): void;
  /** hnswlib's file format; an error (not a short file) when the written size is not the graph's. */
  writeIndex(path: string): void;
  resizeIndex(maxElements: number): void;
  getMaxElements(): number;
  getCurrentCount(): number;
  /**
   * Inserts a new label; an existing one (deleted or not: it is undeleted) is moved to the vector:
   * unlinked from its old place (the nodes that link to it, found by a search there, get their
   * lists rebuilt) and linked again as an insert is, keeping one link back (native/hnsw-move.h).
   * Not hnswlib's updatePoint, whose stale links cost recall under churn (bench:drift).
   * Deterministic. Cosine vectors are normalized in a copy.
   */
  addPoint(vector: Float32Array, label: number): void;
  markDelete(label: number): void;
  unmarkDelete(label: number): void;
  setEf(ef: number): void;
  getEf(): number;
  /** The vector the graph holds (normalized for cosine), a copy. */
  getPoint(label: number): Float32Array;
  /**
   * The k nearest by graph search. `allowed` is a bitset over labels (label l is bit l & 7 of
   * byte l >> 3; labels past its end are not allowed); without it, every point not marked deleted.
   */
  searchKnn(query: Float32Array, k: number, allowed?: Uint8Array): GraphHits;
  /**
   * Scores every label of `labels` (points of the graph, not marked deleted) with hnswlib's distance
   * and returns the k nearest plus any others at exactly the k-th distance, by (distance, label).
   */
  exactKnn(query: Float32Array, k: number, labels: Uint32Array): GraphHits;
}

interface Addon {
  HnswGraph: new (metric: Metric, dim: number) => HnswGraph;
}

const ADDON_FILE = join('build', 'Release', 'shoal_hnsw.node');

/** The package root: the first directory above this file with the built addon (src/index and dist/src/index both work). */
function addonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, ADDON_FILE);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) throw new Error(`Shoal's HNSW addon (${ADDON_FILE}) is not built: run \`npm run build:native\` in the package root (it needs g++, make and python3)`);
    dir = up;
  }
}

let addon: Addon | undefined;

/** A new graph object (call initIndex or readIndex on it). */
export function newHnswGraph(metric: Metric, dim: number): HnswGraph {
  addon ??= createRequire(import.meta.url)(addonPath()) as Addon;
  return new addon.HnswGraph(metric, dim);
}

/** A bitset over labels `0 .. span` with the bits of `labels` set. */
export function bitsetOf(labels: ArrayLike<number>, span: number): Uint8Array {
  const bits = new Uint8Array((span + 7) >>> 3);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    bits[l >>> 3] = (bits[l >>> 3] as number) | (1 << (l & 7));
  }
  return bits;
}
