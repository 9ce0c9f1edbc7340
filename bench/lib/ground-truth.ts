/** Exact ground truth for the index bench, computed in worker threads and cached under bench/.cache/. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';

const CACHE = new URL('../../../bench/.cache/', import.meta.url);

export interface GroundTruthJob {
  name: string;
  dim: number;
  k: number;
  train: Float32Array;
  test: Float32Array;
  queries: number;
  /**
   * Only base rows `i` with `match(q, i)` are candidates for query `q`; undefined: every row.
   * The bench's own predicate over its own metadata arrays (not Shoal's filter code). It is
   * evaluated here into one bitset per query, which the workers read and whose hash names the
   * cache file, so a changed workload never reads a stale answer.
   */
  match?: ((q: number, i: number) => boolean) | undefined;
  /** Where answers are cached (default bench/.cache/). */
  cacheDir?: URL | undefined;
}

/** One bit per base row, `stride` bytes per query, in shared memory for the workers. */
export function matchMasks(queries: number, n: number, match: (q: number, i: number) => boolean): { masks: Uint8Array; stride: number } {
  const stride = Math.ceil(n / 8);
  const masks = new Uint8Array(new SharedArrayBuffer(queries * stride));
  for (let q = 0; q < queries; q++) {
    const base = q * stride;
    for (let i = 0; i < n; i++) if (match(q, i)) masks[base + (i >> 3)] = (masks[base + (i >> 3)] as number) | (1 << (i & 7));
  }
  return { masks, stride };
}

/**
 * The k exact nearest base labels (row numbers) of each of the first `queries` test vectors,
 * -1 padded where fewer than k rows match; from the cache or computed.
 */
export async function groundTruth(job: GroundTruthJob): Promise<Int32Array> {
  const n = job.train.length / job.dim;
  const mask = job.match ? matchMasks(job.queries, n, job.match) : undefined;
  const tag = mask ? `-m${createHash('sha256').update(mask.masks).digest('hex').slice(0, 16)}` : '';
  const dir = job.cacheDir ?? CACHE;
  const file = new URL(`${job.name}-n${n}-k${job.k}-q${job.queries}${tag}.i32`, dir);
  if (existsSync(file)) {
    const b = readFileSync(file);
    return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  const threads = Math.max(1, Math.min(cpus().length, 4));
  const per = Math.ceil(job.queries / threads);
  const started = performance.now();
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const from = Math.min(job.queries, t * per);
      const to = Math.min(job.queries, from + per);
      return new Promise<Int32Array>((resolve, reject) => {
        const w = new Worker(new URL('./ground-truth-worker.js', import.meta.url), {
          workerData: { dim: job.dim, k: job.k, train: job.train, test: job.test, from, to, masks: mask?.masks, stride: mask?.stride },
        });
        w.once('message', resolve);
        w.once('error', reject);
      });
    }),
  );
  const out = new Int32Array(job.queries * job.k);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, out);
  console.log(`ground truth ${job.name}: ${job.queries} queries in ${((performance.now() - started) / 1000).toFixed(0)} s (cached in ${dir.pathname})`);
  return out;
}

/** recall@k of `found` (labels per query, from query 0) against the ground truth rows. */
export function recallAt(k: number, gt: Int32Array, found: readonly (readonly number[])[]): number {
  let hit = 0;
  let total = 0;
  found.forEach((labels, q) => {
    const truth = new Set<number>();
    for (let j = 0; j < k; j++) {
      const t = gt[q * k + j] as number;
      if (t >= 0) truth.add(t);
    }
    total += truth.size;
    for (const l of labels.slice(0, k)) if (truth.has(l)) hit++;
  });
  return total === 0 ? 1 : hit / total;
}
