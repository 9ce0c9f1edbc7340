/** Exact ground truth for the index bench, computed in worker threads and cached under bench/.cache/. */
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
  filter?: { label: Uint8Array; bucket: Uint8Array; wantLabel: Int16Array; wantBucket: Int16Array };
}

/** The k exact nearest base labels of each of the first `queries` test vectors, from the cache or computed. */
export async function groundTruth(job: GroundTruthJob): Promise<Int32Array> {
  const file = new URL(`${job.name}-k${job.k}-q${job.queries}.i32`, CACHE);
  if (existsSync(file)) {
    const b = readFileSync(file);
    return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  const threads = Math.max(1, Math.min(cpus().length, 4));
  const per = Math.ceil(job.queries / threads);
  const started = performance.now();
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const from = t * per;
      const to = Math.min(job.queries, from + per);
      return new Promise<Int32Array>((resolve, reject) => {
        const w = new Worker(new URL('./ground-truth-worker.js', import.meta.url), { workerData: { ...job, from, to } });
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
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(file, out);
  console.log(`ground truth ${job.name}: ${job.queries} queries in ${((performance.now() - started) / 1000).toFixed(0)} s (cached in bench/.cache/)`);
  return out;
}

/** recall@k of `found` (labels per query) against the ground truth rows. */
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
